//! Self-supervised pretraining from raw text: masked LM (BERT) or causal LM, on packed
//! sequences of a tokenised corpus, through the shared [`Trainer`].

use crate::data::corpus::{CorpusFormat, CorpusSpec, Layout};
use crate::data::dataset::{self, PackIndex, PackOptions, Sequences};
use crate::data::tokenizer::{train_wordpiece, Tokenizer, TrainOptions};
use crate::model::config::{Arch, ModelConfig, NormPosition, PositionKind};
use crate::model::encoder::Batch;
use crate::model::heads::LanguageModel;
use crate::rng::Rng;
use crate::runtime::{self, DeviceKind};
use crate::train::config::{RunSettings, TrainConfig};
use crate::train::masking::{
    lm_targets, mask_tokens, next_token_targets, MaskingConfig, SpecialTokens,
};
use crate::train::sampler::Sampling;
use crate::train::trainer::{BatchLoss, Metrics, Outcome, Summary, Task, Trainer};
use crate::{hf, Error, Result};
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the text comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Files or glob patterns.
    pub corpus: Vec<String>,
    /// A packed corpus (`positio corpus pack`), instead of `corpus`: read as a stream of
    /// sequences, with its tokenizer and its validation split.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub packed: String,
    /// lines (a document per line), paragraphs (blank-line separated) or jsonl.
    pub format: CorpusFormat,
    /// JSON Lines: the text fields of a record, joined by newlines.
    pub fields: Vec<String>,
    pub skip_bad_lines: bool,
    /// Tokens per packed sequence, \[CLS\] and \[SEP\] included.
    pub max_len: usize,
    /// Share of documents held out for validation.
    pub val_fraction: f64,
    /// Validation sequences evaluated (0: all).
    pub eval_sequences: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            corpus: Vec::new(),
            packed: String::new(),
            format: CorpusFormat::Lines,
            fields: vec!["text".into()],
            skip_bad_lines: false,
            max_len: 128,
            val_fraction: 0.01,
            eval_sequences: 512,
        }
    }
}

impl DataConfig {
    /// Ok when the text comes from exactly one place: `corpus` files or a `packed` corpus.
    pub fn require_source(&self) -> Result<()> {
        if self.corpus.is_empty() && self.packed.is_empty() {
            return Err(Error::config(
                "--corpus",
                "required: give it (repeatable, globs allowed), --packed DIR, or a --config with [data] corpus or packed",
            ));
        }
        if !self.corpus.is_empty() && !self.packed.is_empty() {
            return Err(Error::config("[data]", "give corpus or packed, not both"));
        }
        Ok(())
    }

    pub(crate) fn spec(&self) -> CorpusSpec {
        let layout = match self.format {
            CorpusFormat::Lines => Layout::Lines,
            CorpusFormat::Paragraphs => Layout::Paragraphs,
            CorpusFormat::Jsonl => Layout::Jsonl {
                fields: self.fields.clone(),
            },
        };
        CorpusSpec {
            inputs: self.corpus.clone(),
            layout,
            skip_bad: self.skip_bad_lines,
        }
    }
}

/// The tokenizer: an existing `tokenizer.json`, or one trained on the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizerConfig {
    /// An existing tokenizer.json (empty: train one).
    pub path: String,
    pub vocab_size: usize,
    pub cased: bool,
    pub min_frequency: u64,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig {
            path: String::new(),
            vocab_size: 8000,
            cased: true,
            min_frequency: 2,
        }
    }
}

/// The architecture of a fresh model (pretraining from scratch, `positio init`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    /// Continue from this model directory instead of a fresh model (its architecture is kept).
    pub init_from: String,
    /// Transformer blocks, or recurrent layers (LSTM / GRU, one or two directions).
    pub arch: Arch,
    /// Positional encoding [default: absolute for a Transformer, none for a recurrent encoder].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<PositionKind>,
    pub norm: NormPosition,
    /// Transformer blocks or recurrent layers.
    pub layers: usize,
    /// Width of the token states (a bidirectional layer has half of it per direction).
    pub hidden: usize,
    pub heads: usize,
    pub ffn: usize,
    pub dropout: f64,
    pub attention_dropout: f64,
    /// Learned position table size (absolute); at least `max_len`.
    pub max_positions: usize,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            init_from: String::new(),
            arch: Arch::Transformer,
            position: None,
            norm: NormPosition::Post,
            layers: 4,
            hidden: 256,
            heads: 4,
            ffn: 1024,
            dropout: 0.1,
            attention_dropout: 0.1,
            max_positions: 512,
        }
    }
}

impl ModelSpec {
    /// The validated configuration of a fresh model with this architecture.
    pub fn config(
        &self,
        vocab_size: usize,
        max_len: usize,
        causal: bool,
        architecture: &str,
    ) -> Result<ModelConfig> {
        let recurrent = self.arch.recurrence().is_some();
        let config = ModelConfig {
            architectures: vec![architecture.into()],
            arch: self.arch,
            vocab_size,
            hidden_size: self.hidden,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            intermediate_size: self.ffn,
            hidden_dropout_prob: self.dropout,
            attention_probs_dropout_prob: self.attention_dropout,
            max_position_embeddings: self.max_positions.max(max_len),
            position_embedding_type: self.position.unwrap_or(if recurrent {
                PositionKind::None
            } else {
                PositionKind::Absolute
            }),
            norm_position: self.norm,
            causal,
            ..Default::default()
        };
        config.validate()?;
        Ok(config)
    }
}

/// What a language model learns to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Masked LM: bidirectional attention, predict masked tokens (BERT).
    Mlm,
    /// Causal LM: causal attention, predict the next token.
    Clm,
}

/// The self-supervised objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectiveConfig {
    pub kind: Objective,
    pub mask_probability: f64,
    pub whole_word: bool,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        ObjectiveConfig {
            kind: Objective::Mlm,
            mask_probability: 0.15,
            whole_word: false,
        }
    }
}

/// Everything `positio pretrain` needs; read from TOML, overridden by flags, saved with the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainConfig {
    pub data: DataConfig,
    pub tokenizer: TokenizerConfig,
    pub model: ModelSpec,
    pub objective: ObjectiveConfig,
    pub train: TrainConfig,
}

impl RunSettings for PretrainConfig {
    /// BERT-style pretraining: lr 5e-4, 6 % warm-up, linear decay, one epoch.
    fn recipe() -> Self {
        PretrainConfig::default()
    }
    fn train(&self) -> &TrainConfig {
        &self.train
    }
    fn train_mut(&mut self) -> &mut TrainConfig {
        &mut self.train
    }
}

/// Pretraining as a [`Task`]: packed sequences in a seeded order, masked or shifted targets.
pub(crate) struct PretrainTask {
    config: ModelConfig,
    tokenizer_path: PathBuf,
    causal: bool,
    masking: MaskingConfig,
    special: SpecialTokens,
    train: Sequences,
    val: Sequences,
    eval_sequences: usize,
    seed: u64,
    /// Training batches drawn so far (saved with each checkpoint): with the example index, it
    /// keys each sequence's masks, so they do not depend on which rank masks it.
    draws: u64,
    device: Device,
}

/// The task's resumable state.
#[derive(Serialize, Deserialize)]
struct MaskingState {
    draws: u64,
}

impl PretrainTask {
    /// The model's inputs and targets for sequences `seqs` of examples `examples`; masks are
    /// drawn per sequence from `key` and the example index. Returns the tokens covered too.
    fn batch_of(
        &self,
        examples: &[usize],
        seqs: &[Vec<u32>],
        key: u64,
    ) -> (Batch, crate::model::heads::LmTargets, usize) {
        let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let tokens = seqs.iter().map(Vec::len).sum();
        if self.causal {
            let (positions, targets) = next_token_targets(seqs, len);
            return (
                Batch::new(seqs, 0, &self.device),
                lm_targets(&positions, &targets, &self.device),
                tokens,
            );
        }
        let (mut inputs, mut positions, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for (row, (example, seq)) in examples.iter().zip(seqs).enumerate() {
            let mut rng = Rng::new(key ^ (*example as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
            let m = mask_tokens(
                std::slice::from_ref(seq),
                len,
                &self.masking,
                &self.special,
                &mut rng,
            );
            inputs.extend(m.inputs);
            positions.extend(m.positions.iter().map(|p| row * len + p));
            targets.extend(m.targets);
        }
        (
            Batch::new(&inputs, 0, &self.device),
            lm_targets(&positions, &targets, &self.device),
            tokens,
        )
    }

    fn draw_key(&self) -> u64 {
        Rng::new(self.seed ^ self.draws.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
    }
}

impl Task for PretrainTask {
    type Model = LanguageModel;

    /// Packed sequences of one length: a new permutation each epoch, full batches only, no
    /// memory per sequence (a packed corpus may be larger than memory).
    fn sampling(&self) -> Sampling {
        Sampling::stream(self.train.len())
    }

    /// The loss is a mean over the predicted tokens, which weight the batch.
    fn loss(&mut self, model: &LanguageModel, batch: &[usize]) -> Result<BatchLoss> {
        let seqs = batch
            .iter()
            .map(|&i| self.train.get(i))
            .collect::<Result<Vec<_>>>()?;
        let (batch, targets, tokens) = self.batch_of(batch, &seqs, self.draw_key());
        self.draws += 1;
        Ok(BatchLoss {
            weight: targets.targets.dims()[0],
            loss: model.loss(&batch, &targets),
            tokens,
        })
    }

    fn evaluate(&mut self, model: &LanguageModel) -> Result<Metrics> {
        let n = if self.eval_sequences == 0 {
            self.val.len()
        } else {
            self.eval_sequences.min(self.val.len())
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        // The same masking every evaluation, so curves compare like with like.
        let key = self.seed ^ 0xE7A1;
        let (mut loss_sum, mut correct, mut count) = (0.0, 0i64, 0usize);
        for start in (0..n).step_by(32) {
            let examples: Vec<usize> = (start..(start + 32).min(n)).collect();
            let seqs = examples
                .iter()
                .map(|&i| self.val.get(i))
                .collect::<Result<Vec<_>>>()?;
            let (batch, targets, _) = self.batch_of(&examples, &seqs, key);
            let logits = model.logits(&batch, targets.positions.clone());
            let k = targets.targets.dims()[0];
            loss_sum += crate::kernels::cross_entropy(logits.clone(), targets.targets.clone())
                .into_scalar::<f64>()
                * k as f64;
            correct += logits
                .argmax(1)
                .reshape([-1])
                .equal(targets.targets)
                .int()
                .sum()
                .into_scalar::<i64>();
            count += k;
        }
        let loss = loss_sum / count as f64;
        let accuracy_name = if self.causal {
            "next_token_accuracy"
        } else {
            "masked_accuracy"
        };
        Ok(vec![
            ("loss".into(), loss),
            ("perplexity".into(), loss.exp()),
            (accuracy_name.into(), correct as f64 / count as f64),
        ])
    }

    fn selection(&self) -> Option<(&'static str, bool)> {
        None
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(MaskingState { draws: self.draws }).expect("state serialises")
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        let s: MaskingState = serde_json::from_value(state).map_err(|e| {
            Error::invalid(format!(
                "checkpoint masking state: {e} (checkpoints of positio before per-example masking \
                 cannot be resumed; start a new run from the checkpoint's model with --init-from)"
            ))
        })?;
        self.draws = s.draws;
        Ok(())
    }

    fn save_model(&self, model: &LanguageModel, dir: &Path) -> Result<()> {
        hf::save(model, &self.config, dir, Some(&self.tokenizer_path))
    }

    fn load_model(&self, dir: &Path) -> Result<LanguageModel> {
        hf::load_language_model(dir, &self.device)
    }
}

/// Builds the tokenizer, data and model a configuration describes, in `run_dir`.
fn prepare(
    cfg: &PretrainConfig,
    run_dir: &Path,
    verbose: bool,
    device: DeviceKind,
) -> Result<(PretrainTask, LanguageModel)> {
    let causal = cfg.objective.kind == Objective::Clm;
    if cfg.model.init_from.is_empty() {
        // The architecture is checked before any tokenizing (the vocabulary comes later).
        cfg.model.config(
            cfg.tokenizer.vocab_size.max(1),
            cfg.data.max_len,
            causal,
            "",
        )?;
    }
    let spec = cfg.data.spec();
    let packed = (!cfg.data.packed.is_empty()).then(|| PathBuf::from(&cfg.data.packed));
    let pack_index = packed.as_deref().map(PackIndex::read).transpose()?;
    let tokenizer_path = run_dir.join(hf::TOKENIZER);
    let writer = crate::distributed::group().is_writer();
    let tokenizer = if !writer {
        // Rank 0 wrote it before the others start.
        Tokenizer::load(&tokenizer_path)?
    } else if let (Some(dir), true, true) = (
        &packed,
        cfg.tokenizer.path.is_empty(),
        cfg.model.init_from.is_empty(),
    ) {
        let t = Tokenizer::load(&dir.join(hf::TOKENIZER))?;
        t.save(&tokenizer_path)?;
        t
    } else if !cfg.tokenizer.path.is_empty() {
        let t = Tokenizer::load(Path::new(&cfg.tokenizer.path))?;
        t.save(&tokenizer_path)?;
        t
    } else if !cfg.model.init_from.is_empty() {
        let t = Tokenizer::load(&Path::new(&cfg.model.init_from).join(hf::TOKENIZER))?;
        t.save(&tokenizer_path)?;
        t
    } else if tokenizer_path.exists() {
        Tokenizer::load(&tokenizer_path)?
    } else {
        if verbose {
            tracing::info!(
                "training a WordPiece tokenizer (vocabulary {}) on {}",
                cfg.tokenizer.vocab_size,
                cfg.data.corpus.join(", ")
            );
        }
        let t = train_tokenizer(&spec, &cfg.tokenizer)?;
        t.save(&tokenizer_path)?;
        Tokenizer::load(&tokenizer_path)?
    };
    let special = special_tokens(&tokenizer)?;
    let (data_dir, index) = match (packed, pack_index) {
        (Some(dir), Some(index)) => {
            if index.tokenizer != dataset::tokenizer_fingerprint(&tokenizer) {
                return Err(Error::file(
                    dir.join(dataset::INDEX),
                    format!(
                        "packed with another tokenizer than {}'s: pack the corpus with the model's tokenizer",
                        tokenizer.path.display()
                    ),
                ));
            }
            (dir, index)
        }
        _ => {
            let dir = run_dir.join("data");
            if verbose {
                tracing::info!("tokenising the corpus into {}", dir.display());
            }
            let options = PackOptions {
                shard_bytes: 1 << 30,
                val_fraction: cfg.data.val_fraction,
                seed: cfg.train.seed,
            };
            let index = dataset::pack(&spec, &tokenizer, &options, &dir, verbose)?;
            (dir, index)
        }
    };
    let train = Sequences::open(&data_dir, &index, "train", cfg.data.max_len)?;
    let val = Sequences::open(&data_dir, &index, "val", cfg.data.max_len)?;
    if train.len() == 0 {
        return Err(Error::invalid(format!(
            "the corpus has only {} training tokens: not one sequence of {}",
            index.train.tokens, cfg.data.max_len
        )));
    }
    if verbose {
        tracing::info!(
            "data: {} documents ({} lines skipped), {} training sequences of {} tokens, {} validation sequences",
            index.documents,
            index.skipped_lines,
            train.len(),
            cfg.data.max_len,
            val.len()
        );
    }
    let device = runtime::training_device(device)?;
    device.seed(cfg.train.seed);
    let model = if cfg.model.init_from.is_empty() {
        let architecture = if causal {
            "BertLMHeadModel"
        } else {
            "BertForMaskedLM"
        };
        let config = cfg.model.config(
            tokenizer.vocab_size(),
            cfg.data.max_len,
            causal,
            architecture,
        )?;
        LanguageModel::new(&config, &device)
    } else {
        let mut m = hf::load_language_model(Path::new(&cfg.model.init_from), &device)?;
        if m.bert.max_len().is_some_and(|n| n < cfg.data.max_len) {
            return Err(Error::config(
                "max_len",
                format!(
                    "{} exceeds the model's {} positions ({})",
                    cfg.data.max_len, m.bert.config.max_position_embeddings, cfg.model.init_from
                ),
            ));
        }
        m.bert.config.causal = causal;
        m.bert.config.validate()?;
        m
    };
    let seed = cfg.train.seed;
    let task = PretrainTask {
        config: model.bert.config.clone(),
        tokenizer_path,
        causal,
        masking: MaskingConfig {
            probability: cfg.objective.mask_probability,
            whole_word: cfg.objective.whole_word,
            ..Default::default()
        },
        special,
        train,
        val,
        eval_sequences: cfg.data.eval_sequences,
        seed,
        draws: 0,
        device,
    };
    Ok((task, model))
}

/// The special token ids masking needs, from the tokenizer.
pub(crate) fn special_tokens(tokenizer: &Tokenizer) -> Result<SpecialTokens> {
    let id = |t: &str| {
        tokenizer
            .token_to_id(t)
            .ok_or_else(|| Error::file(&tokenizer.path, format!("the tokenizer has no {t} token")))
    };
    Ok(SpecialTokens {
        mask_id: id("[MASK]")?,
        never: vec![id("[CLS]")?, id("[SEP]")?, id("[PAD]")?],
        vocab_size: tokenizer.vocab_size(),
        continuation: tokenizer.continuation_flags(),
    })
}

/// Trains a WordPiece tokenizer on a corpus (streamed).
pub(crate) fn train_tokenizer(spec: &CorpusSpec, cfg: &TokenizerConfig) -> Result<Tokenizer> {
    // A reader thread streams documents into the trainer's word counts: the corpus is never
    // held in memory.
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(4096);
    let reader_spec = spec.clone();
    let reader = std::thread::spawn(move || {
        reader_spec.for_each_document(|d| {
            tx.send(d)
                .map_err(|_| Error::invalid("tokenizer training stopped"))
        })
    });
    let trained = train_wordpiece(
        rx.into_iter(),
        TrainOptions {
            vocab_size: cfg.vocab_size,
            cased: cfg.cased,
            min_frequency: cfg.min_frequency,
        },
    );
    let stats = reader
        .join()
        .map_err(|_| Error::invalid("the corpus reader panicked"))??;
    if stats.documents == 0 {
        let files = spec.files()?;
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        return Err(Error::file(
            &files[0],
            format!(
                "no text to train a tokenizer on (documents read from {})",
                names.join(", ")
            ),
        ));
    }
    trained
}

/// Logs how a pretraining run ended (interrupted with a checkpoint, or done) and returns the
/// command's outcome.
pub fn report(summary: &Summary, out: &Path) -> Outcome {
    if summary.interrupted {
        tracing::info!(
            "interrupted at step {}: checkpoint saved; continue with --resume --out {}",
            summary.steps,
            out.display()
        );
        return Outcome::Interrupted;
    }
    tracing::info!(
        "done: {} steps, {} tokens in {:.0} s; model in {}",
        summary.steps,
        summary.tokens,
        summary.elapsed_s,
        out.display()
    );
    Outcome::Done
}

/// Runs (or, with `resume`, continues) a pretraining run in `run_dir`.
pub fn run(
    cfg: &PretrainConfig,
    run_dir: &Path,
    resume: bool,
    verbose: bool,
    device: DeviceKind,
) -> Result<crate::train::trainer::Summary> {
    // The corpus must exist before the run directory is made.
    if cfg.data.packed.is_empty() {
        cfg.data.spec().files()?;
    } else {
        PackIndex::read(Path::new(&cfg.data.packed))?;
    }
    // Rank 0 alone makes the run directory, trains the tokenizer and tokenises the corpus; the
    // other ranks then read what it wrote.
    let group = crate::distributed::group();
    let verbose = verbose && group.is_writer();
    let prepared = if group.is_writer() {
        crate::train::run_dir::prepare(run_dir, cfg, resume)?;
        Some(prepare(cfg, run_dir, verbose, device)?)
    } else {
        None
    };
    group.barrier();
    let (mut task, model) = match prepared {
        Some(p) => p,
        None => prepare(cfg, run_dir, false, device)?,
    };
    if verbose {
        tracing::info!(
            "model: {} layers, hidden {}, {} heads, {} positions, {:?}-LN, {}: {} parameters",
            task.config.num_hidden_layers,
            task.config.hidden_size,
            task.config.num_attention_heads,
            task.config.position_embedding_type.name(),
            task.config.norm_position,
            if task.causal {
                "causal LM"
            } else {
                "masked LM"
            },
            model.num_params()
        );
    }
    let trainer = Trainer {
        config: cfg.train.clone(),
        run_dir: run_dir.to_path_buf(),
        progress: verbose,
    };
    let (_, summary) = trainer.run(&mut task, model, resume)?;
    Ok(summary)
}
