//! `positio pretrain` and `positio tokenizer train`. Each pretraining flag overrides the same
//! setting of `--config` (a TOML file; see `PretrainConfig`); the defaults are those of
//! `PretrainConfig::default()`, shown in each flag's help.

use super::{DeviceArg, TrainingArgs};
use crate::data::corpus::CorpusFormat;
use crate::data::dataset::{parse_size, PackOptions};
use crate::model::config::{Arch, NormPosition, PositionKind};
use crate::tasks::pretrain::{
    self, DataConfig, ModelSpec, Objective, PretrainConfig, TokenizerConfig,
};
use crate::train::trainer::Outcome;
use crate::{Error, Result};
use clap::Subcommand;
use std::path::PathBuf;

/// The architecture of a fresh model: each flag overrides the same setting of a `ModelSpec`.
#[derive(clap::Args)]
pub(crate) struct ArchitectureArgs {
    /// Transformer blocks, or recurrent layers: lstm / gru (left to right, for a causal LM),
    /// bilstm / bigru (both directions) [default: transformer].
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// Positional encoding of a fresh model [default: absolute; none for a recurrent encoder].
    #[arg(long, value_enum)]
    position: Option<PositionKind>,
    /// LayerNorm after each sub-layer (post, BERT) or before (pre) [default: post].
    #[arg(long, value_enum)]
    norm: Option<NormPosition>,
    /// Transformer blocks or recurrent layers [default: 4].
    #[arg(long)]
    layers: Option<usize>,
    /// Hidden size: the width of the token states (bilstm / bigru: half per direction)
    /// [default: 256].
    #[arg(long)]
    hidden: Option<usize>,
    /// Attention heads (must divide --hidden) [default: 4].
    #[arg(long)]
    heads: Option<usize>,
    /// Feed-forward inner size [default: 1024].
    #[arg(long)]
    ffn: Option<usize>,
    /// Dropout on hidden states, attention probabilities and between recurrent layers
    /// [default: 0.1].
    #[arg(long)]
    dropout: Option<f64>,
}

impl ArchitectureArgs {
    pub(crate) fn apply(&self, spec: &mut ModelSpec) {
        if let Some(a) = self.arch {
            spec.arch = a;
        }
        if self.position.is_some() {
            spec.position = self.position;
        }
        if let Some(n) = self.norm {
            spec.norm = n;
        }
        for (field, value) in [
            (&mut spec.layers, self.layers),
            (&mut spec.hidden, self.hidden),
            (&mut spec.heads, self.heads),
            (&mut spec.ffn, self.ffn),
        ] {
            if let Some(v) = value {
                *field = v;
            }
        }
        if let Some(d) = self.dropout {
            (spec.dropout, spec.attention_dropout) = (d, d);
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct PretrainArgs {
    /// Corpus files or glob patterns (repeatable).
    #[arg(long)]
    corpus: Vec<String>,
    /// A packed corpus (`positio corpus pack`) instead of --corpus: read as a stream in
    /// constant memory, with its tokenizer and validation split.
    #[arg(long, conflicts_with = "corpus")]
    packed: Option<String>,
    /// How documents are laid out in the corpus files [default: lines].
    #[arg(long, value_enum)]
    format: Option<CorpusFormat>,
    /// JSON Lines text field (repeatable; joined by newlines) [default: text].
    #[arg(long = "field")]
    fields: Vec<String>,
    /// Skip and count invalid UTF-8 / malformed JSON lines instead of stopping.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Tokens per packed sequence, [CLS] and [SEP] included [default: 128].
    #[arg(long)]
    max_len: Option<usize>,
    /// Share of documents held out for validation [default: 0.01].
    #[arg(long)]
    val_fraction: Option<f64>,
    /// An existing tokenizer.json [default: train a WordPiece tokenizer on the corpus].
    #[arg(long)]
    tokenizer: Option<String>,
    /// Word pieces of the trained tokenizer [default: 8000].
    #[arg(long)]
    vocab_size: Option<usize>,
    /// Lowercase the text [default: keep case].
    #[arg(long)]
    uncased: bool,
    /// Continue pretraining this model directory instead of a fresh model (its architecture
    /// and tokenizer are kept).
    #[arg(long)]
    init_from: Option<String>,
    #[command(flatten)]
    architecture: ArchitectureArgs,
    /// What the model learns to predict [default: mlm].
    #[arg(long, value_enum)]
    objective: Option<Objective>,
    /// Masked LM: share of tokens selected for prediction (80 % become [MASK], 10 % a random
    /// token, 10 % stay) [default: 0.15].
    #[arg(long)]
    mask_probability: Option<f64>,
    /// Masked LM: select whole words (all pieces of a word together). Each word is selected
    /// with --mask-probability, so on average that share of the words and of the tokens is
    /// masked (BERT's script instead picks words until exactly that share of tokens is covered).
    #[arg(long)]
    whole_word: bool,
    #[command(flatten)]
    pub run: TrainingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl PretrainArgs {
    /// The configuration: the saved one (resume), --config, or the defaults, then the flags.
    fn resolve(&self) -> Result<PretrainConfig> {
        let c = self.run.resolve(|c: &mut PretrainConfig| {
            fn set<T: Clone>(field: &mut T, flag: &Option<T>) {
                if let Some(v) = flag {
                    *field = v.clone();
                }
            }
            if !self.corpus.is_empty() {
                c.data.corpus = self.corpus.clone();
                c.data.packed.clear();
            }
            if let Some(p) = &self.packed {
                c.data.packed = p.clone();
                c.data.corpus.clear();
            }
            if !self.fields.is_empty() {
                c.data.fields = self.fields.clone();
            }
            set(&mut c.data.format, &self.format);
            c.data.skip_bad_lines |= self.skip_bad_lines;
            set(&mut c.data.max_len, &self.max_len);
            set(&mut c.data.val_fraction, &self.val_fraction);
            set(&mut c.tokenizer.path, &self.tokenizer);
            set(&mut c.tokenizer.vocab_size, &self.vocab_size);
            if self.uncased {
                c.tokenizer.cased = false;
            }
            set(&mut c.model.init_from, &self.init_from);
            self.architecture.apply(&mut c.model);
            set(&mut c.objective.kind, &self.objective);
            set(&mut c.objective.mask_probability, &self.mask_probability);
            c.objective.whole_word |= self.whole_word;
        })?;
        c.data.require_source()?;
        Ok(c)
    }

    pub fn run(&self) -> Result<Outcome> {
        let cfg = self.resolve()?;
        let out = &self.run.out;
        let summary = pretrain::run(&cfg, out, self.run.resume, true, self.device.device)?;
        Ok(pretrain::report(&summary, out))
    }
}

#[derive(Subcommand)]
pub(crate) enum TokenizerCommand {
    /// Train a BERT-style WordPiece tokenizer ([PAD] [UNK] [CLS] [SEP] [MASK]) on a corpus and
    /// write tokenizer.json (loads unchanged in Python's tokenizers / transformers).
    Train {
        #[command(flatten)]
        input: CorpusArgs,
        /// Word pieces in the vocabulary (special tokens and characters included).
        #[arg(long, default_value_t = 8000)]
        vocab_size: usize,
        /// Lowercase everything (default: cased).
        #[arg(long)]
        uncased: bool,
        /// Pieces seen fewer times than this are not learned.
        #[arg(long, default_value_t = 2)]
        min_frequency: u64,
        /// Output tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum CorpusCommand {
    /// Tokenise a corpus once into packed shards for `pretrain --packed DIR`: token ids
    /// (little-endian u16, or u32 for vocabularies over 65,536) in `train-NNNNN.bin` and
    /// `val-NNNNN.bin`, indexed by `corpus.json`, with the tokenizer. Pretraining reads them as
    /// a stream in constant memory whatever the corpus size.
    Pack(PackArgs),
}

/// The text a corpus command reads.
#[derive(clap::Args)]
pub(crate) struct CorpusArgs {
    /// Corpus files or glob patterns (repeatable).
    #[arg(long, required = true)]
    corpus: Vec<String>,
    /// How documents are laid out in the corpus files.
    #[arg(long, value_enum, default_value = "lines")]
    format: CorpusFormat,
    /// JSON Lines text field (repeatable; joined by newlines) [default: text].
    #[arg(long = "field")]
    fields: Vec<String>,
    /// Skip and count invalid UTF-8 / malformed JSON lines instead of stopping.
    #[arg(long)]
    skip_bad_lines: bool,
}

impl CorpusArgs {
    fn config(&self) -> DataConfig {
        corpus_config(&self.corpus, self.format, &self.fields, self.skip_bad_lines)
    }
}

#[derive(clap::Args)]
pub(crate) struct PackArgs {
    #[command(flatten)]
    input: CorpusArgs,
    /// The tokenizer.json to tokenise with (a model's, or `positio tokenizer train`'s).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Output directory (written under DIR.tmp, renamed when complete).
    #[arg(long)]
    out: PathBuf,
    /// Bytes per shard: 1GB, 512MB, 64KB, or a number of bytes.
    #[arg(long, default_value = "1GB")]
    shard_size: String,
    /// Share of documents held out for validation.
    #[arg(long, default_value_t = 0.01)]
    val_fraction: f64,
    /// Seed of the validation split.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl CorpusCommand {
    pub fn run(&self) -> Result<()> {
        let CorpusCommand::Pack(a) = self;
        if !(0.0..1.0).contains(&a.val_fraction) {
            return Err(Error::config(
                "--val-fraction",
                format!("{} is not in [0, 1)", a.val_fraction),
            ));
        }
        let options = PackOptions {
            shard_bytes: parse_size(&a.shard_size)?,
            val_fraction: a.val_fraction,
            seed: a.seed,
        };
        let spec = a.input.config().spec();
        spec.files()?;
        let tokenizer = crate::data::tokenizer::Tokenizer::load(&a.tokenizer)?;
        let index = crate::data::dataset::pack(&spec, &tokenizer, &options, &a.out, true)?;
        println!(
            "packed {} documents ({} lines skipped) into {}: {} training tokens in {} shards, {} validation tokens",
            index.documents,
            index.skipped_lines,
            a.out.display(),
            index.train.tokens,
            index.train.shards.len(),
            index.val.tokens
        );
        Ok(())
    }
}

/// The corpus settings of a command that reads text files (JSON Lines field `text` unless
/// `--field` says otherwise).
fn corpus_config(
    corpus: &[String],
    format: CorpusFormat,
    fields: &[String],
    skip_bad_lines: bool,
) -> DataConfig {
    let mut data = DataConfig {
        corpus: corpus.to_vec(),
        format,
        skip_bad_lines,
        ..Default::default()
    };
    if !fields.is_empty() {
        data.fields = fields.to_vec();
    }
    data
}

impl TokenizerCommand {
    pub fn run(&self) -> Result<()> {
        let TokenizerCommand::Train {
            input,
            vocab_size,
            uncased,
            min_frequency,
            out,
        } = self;
        let data = input.config();
        let cfg = TokenizerConfig {
            path: String::new(),
            vocab_size: *vocab_size,
            cased: !uncased,
            min_frequency: *min_frequency,
        };
        let tokenizer = pretrain::train_tokenizer(&data.spec(), &cfg)?;
        tokenizer.save(out)?;
        println!(
            "wrote {} ({} word pieces)",
            out.display(),
            tokenizer.vocab_size()
        );
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct EvalLmArgs {
    /// A causal LM (a run of `pretrain --objective clm`).
    #[arg(long)]
    model: PathBuf,
    /// Held-out text files or glob patterns (repeatable).
    #[arg(long = "data", required = true)]
    data: Vec<String>,
    /// How documents are laid out in the files.
    #[arg(long, value_enum, default_value = "lines")]
    format: CorpusFormat,
    /// JSON Lines text field (repeatable; joined by newlines) [default: text].
    #[arg(long = "field")]
    fields: Vec<String>,
    /// Tokens per sequence, [CLS] and [SEP] included.
    #[arg(long)]
    len: usize,
    /// Text tokens to read (the same at every length, so that lengths compare).
    #[arg(long, default_value_t = 65536)]
    tokens: usize,
    /// Scale RoPE beyond its training length: linear position interpolation or NTK-aware.
    #[arg(long, value_enum, requires = "factor")]
    rope_scaling: Option<crate::model::config::RopeScalingKind>,
    /// The scaling factor (e.g. 4 for 4× the training length).
    #[arg(long, requires = "rope_scaling")]
    factor: Option<f64>,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl EvalLmArgs {
    pub fn run(&self) -> Result<()> {
        let data = corpus_config(&self.data, self.format, &self.fields, false);
        let rope_scaling = match (self.rope_scaling, self.factor) {
            (Some(kind), Some(factor)) if factor >= 1.0 => {
                Some(crate::model::config::RopeScaling { kind, factor })
            }
            (Some(_), Some(f)) => {
                return Err(Error::config("--factor", format!("must be >= 1, got {f}")))
            }
            _ => None,
        };
        let report = crate::tasks::perplexity::evaluate(
            &self.model,
            &data.spec(),
            &crate::tasks::perplexity::LmEvalOptions {
                len: self.len,
                tokens: self.tokens,
                rope_scaling,
            },
            &crate::runtime::device(self.device.device)?,
        )?;
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| Error::invalid(e.to_string()))?
        );
        Ok(())
    }
}
