//! The `positio` command line: a thin layer over the library.

use clap::{Parser, Subcommand};
use positio::runtime::{self, DeviceKind};
use positio::{embed::Embedder, hf, tokenizer::Tokenizer, Result};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "positio", version, args_override_self = true, about = "Pretrain, fine-tune, evaluate and serve Transformer encoders \
with every mainstream positional encoding (absolute, sinusoidal, RoPE, ALiBi, T5 bias, none).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Pooling {
    Mean,
    Cls,
    None,
}

/// `positio pretrain` flags: each overrides the same setting of --config (see `PretrainConfig`).
#[derive(clap::Args)]
struct PretrainArgs {
    /// Output run directory: becomes a Hugging Face-style model directory (config.json,
    /// model.safetensors, tokenizer.json) plus run.toml, metrics.jsonl and checkpoints/.
    #[arg(long)]
    out: PathBuf,
    /// A TOML file with [data], [tokenizer], [model], [objective] and [train] sections.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint (with its saved run.toml).
    #[arg(long)]
    resume: bool,
    /// Corpus files or glob patterns (repeatable).
    #[arg(long)]
    corpus: Vec<String>,
    /// lines (a document per line), paragraphs (blank-line separated) or jsonl.
    #[arg(long)]
    format: Option<String>,
    /// JSON Lines text field (repeatable; joined by newlines). Default: text.
    #[arg(long = "field")]
    fields: Vec<String>,
    /// Skip and count invalid UTF-8 / malformed JSON lines instead of stopping.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Tokens per packed sequence.
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long)]
    val_fraction: Option<f64>,
    /// An existing tokenizer.json (default: train one on the corpus).
    #[arg(long)]
    tokenizer: Option<String>,
    #[arg(long)]
    vocab_size: Option<usize>,
    /// Lowercase the text (default: keep case).
    #[arg(long)]
    uncased: bool,
    /// Continue pretraining this model directory instead of a fresh model.
    #[arg(long)]
    init_from: Option<String>,
    #[arg(long, value_enum)]
    position: Option<positio::config::PositionKind>,
    #[arg(long, value_enum)]
    norm: Option<positio::config::NormPosition>,
    #[arg(long)]
    layers: Option<usize>,
    #[arg(long)]
    hidden: Option<usize>,
    #[arg(long)]
    heads: Option<usize>,
    #[arg(long)]
    ffn: Option<usize>,
    #[arg(long)]
    dropout: Option<f64>,
    /// mlm (masked LM) or clm (causal LM).
    #[arg(long)]
    objective: Option<String>,
    #[arg(long)]
    mask_probability: Option<f64>,
    /// Mask whole words (all pieces of a word together).
    #[arg(long)]
    whole_word: bool,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    grad_accum: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    /// Warm-up: a fraction of the steps (< 1) or a number of steps.
    #[arg(long)]
    warmup: Option<f64>,
    /// linear or cosine.
    #[arg(long)]
    schedule: Option<String>,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Global gradient-norm clipping (0: off).
    #[arg(long)]
    max_grad_norm: Option<f64>,
    /// Optimizer steps (overrides --epochs).
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    epochs: Option<f64>,
    #[arg(long)]
    eval_every: Option<usize>,
    #[arg(long)]
    save_every: Option<usize>,
    #[arg(long)]
    log_every: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
}

impl PretrainArgs {
    fn resolve(&self) -> Result<positio::pretrain::PretrainConfig> {
        use positio::pretrain::PretrainConfig;
        let mut c = if self.resume {
            PretrainConfig::load(&self.out.join("run.toml"))?
        } else if let Some(path) = &self.config {
            PretrainConfig::load(path)?
        } else {
            PretrainConfig::default()
        };
        macro_rules! set {
            ($field:expr, $value:expr) => {
                if let Some(v) = $value.clone() {
                    $field = v;
                }
            };
        }
        if !self.corpus.is_empty() {
            c.data.corpus = self.corpus.clone();
        }
        if !self.fields.is_empty() {
            c.data.fields = self.fields.clone();
        }
        set!(c.data.format, self.format);
        c.data.skip_bad_lines |= self.skip_bad_lines;
        set!(c.data.max_len, self.max_len);
        set!(c.data.val_fraction, self.val_fraction);
        set!(c.tokenizer.path, self.tokenizer);
        set!(c.tokenizer.vocab_size, self.vocab_size);
        if self.uncased {
            c.tokenizer.cased = false;
        }
        set!(c.model.init_from, self.init_from);
        set!(c.model.position, self.position);
        set!(c.model.norm, self.norm);
        set!(c.model.layers, self.layers);
        set!(c.model.hidden, self.hidden);
        set!(c.model.heads, self.heads);
        set!(c.model.ffn, self.ffn);
        if let Some(d) = self.dropout {
            (c.model.dropout, c.model.attention_dropout) = (d, d);
        }
        set!(c.objective.kind, self.objective);
        set!(c.objective.mask_probability, self.mask_probability);
        c.objective.whole_word |= self.whole_word;
        set!(c.train.batch_size, self.batch_size);
        set!(c.train.grad_accum, self.grad_accum);
        set!(c.train.lr, self.lr);
        set!(c.train.warmup, self.warmup);
        set!(c.train.schedule, self.schedule);
        set!(c.train.weight_decay, self.weight_decay);
        set!(c.train.max_grad_norm, self.max_grad_norm);
        if let Some(s) = self.steps {
            c.train.steps = s;
        }
        set!(c.train.epochs, self.epochs);
        set!(c.train.eval_every, self.eval_every);
        set!(c.train.save_every, self.save_every);
        set!(c.train.log_every, self.log_every);
        set!(c.train.seed, self.seed);
        if c.data.corpus.is_empty() {
            return Err(positio::Error::invalid("no corpus: give --corpus FILE (repeatable, globs allowed) or a --config with [data] corpus"));
        }
        Ok(c)
    }
}

#[derive(Subcommand)]
enum TokenizerCommand {
    /// Train a BERT-style WordPiece tokenizer ([PAD] [UNK] [CLS] [SEP] [MASK]) on a corpus and
    /// write tokenizer.json (loads unchanged in Python's tokenizers / transformers).
    Train {
        /// Corpus files or glob patterns (repeatable).
        #[arg(long, required = true)]
        corpus: Vec<String>,
        /// lines, paragraphs or jsonl.
        #[arg(long, default_value = "lines")]
        format: String,
        /// JSON Lines text field (repeatable).
        #[arg(long = "field")]
        fields: Vec<String>,
        #[arg(long)]
        skip_bad_lines: bool,
        #[arg(long, default_value_t = 8000)]
        vocab_size: usize,
        /// Lowercase everything (default: cased).
        #[arg(long)]
        uncased: bool,
        #[arg(long, default_value_t = 2)]
        min_frequency: u64,
        /// Output tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
}

/// The data and scheme flags shared by the NER commands.
#[derive(clap::Args, Clone)]
struct ConllArgs {
    /// 0-based column holding the tag (default: the last one; the word is column 0).
    #[arg(long)]
    tag_column: Option<usize>,
    /// Tag scheme of the files: iob1, iob2 or iobes (default: detected).
    #[arg(long)]
    scheme: Option<String>,
}

#[derive(Subcommand)]
enum FinetuneCommand {
    /// Fine-tune for named-entity recognition on CoNLL files; keeps the epoch with the best
    /// development entity F1 and writes a Hugging Face BertForTokenClassification directory.
    Ner {
        /// The model to start from: any BERT directory (positio's or Hugging Face's).
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        train: PathBuf,
        /// Development file, for model selection.
        #[arg(long)]
        dev: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Add a CRF layer (Viterbi decoding restricted to valid IOB2 transitions).
        #[arg(long)]
        crf: bool,
        /// (5 epochs at 1e-4 beat transformers' usual 3 at 5e-5 on CoNLL-2003; see docs/RESULTS.md.)
        #[arg(long, default_value_t = 5.0)]
        epochs: f64,
        #[arg(long, default_value_t = 1e-4)]
        lr: f64,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Warm-up: a fraction of the steps (< 1) or a number of steps.
        #[arg(long, default_value_t = 0.1)]
        warmup: f64,
        #[arg(long, default_value_t = 0.01)]
        weight_decay: f64,
        /// Word pieces per window ([CLS] and [SEP] included); longer sentences are split.
        #[arg(long, default_value_t = 128)]
        max_len: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Checkpoint every this many steps (0: at the end only).
        #[arg(long, default_value_t = 500)]
        save_every: usize,
        /// Evaluate every this many steps (0: at the end of each epoch).
        #[arg(long, default_value_t = 0)]
        eval_every: usize,
        /// Continue the run in --out from its latest checkpoint.
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        conll: ConllArgs,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Entity-level (seqeval) and token-level (per IOB2 tag) reports of a NER model on a CoNLL file.
    Ner {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// Write `word gold predicted` lines (conlleval's input) here.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Write both reports as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[command(flatten)]
        conll: ConllArgs,
    },
}

#[derive(Subcommand)]
enum PredictCommand {
    /// Entities in raw text (one JSON line per input line: {text, type, start, end, score}),
    /// or tags for a CoNLL file.
    Ner {
        #[arg(long)]
        model: PathBuf,
        /// Text to tag (repeatable).
        #[arg(long)]
        text: Vec<String>,
        /// A text file: each line is tagged.
        #[arg(long)]
        file: Option<PathBuf>,
        /// A CoNLL file: writes its lines with the predicted tag appended.
        #[arg(long)]
        conll: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Fine-tune a model on a task.
    #[command(subcommand)]
    Finetune(FinetuneCommand),
    /// Evaluate a fine-tuned model.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Predict with a fine-tuned model.
    #[command(subcommand)]
    Predict(PredictCommand),
    /// Pretrain an encoder (masked LM) or decoder-style model (causal LM) from raw text.
    Pretrain(Box<PretrainArgs>),
    /// Tokenizer tools.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// Draw a run's loss / perplexity curves (from metrics.jsonl) to a PNG.
    Plot {
        run_dir: PathBuf,
        /// Output PNG (default RUN_DIR/curves.png).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the whole pipeline on a small built-in corpus in seconds: train a tokenizer, pretrain
    /// a small encoder with masked-LM, save it as a Hugging Face directory, reload it, embed.
    Demo {
        /// Where to write the model directory.
        #[arg(long, default_value = "runs/demo")]
        out: PathBuf,
        /// Positional encoding of the model.
        #[arg(long, value_enum, default_value = "rope")]
        position: positio::config::PositionKind,
        /// Training steps.
        #[arg(long, default_value_t = 300)]
        steps: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Describe a model directory: architecture, positional encoding, parameters, vocabulary.
    Info {
        /// A Hugging Face-style model directory (config.json, model.safetensors, tokenizer.json).
        model_dir: PathBuf,
    },
    /// Sentence embeddings (mean-pooled, L2-normalised, as sentence-transformers computes them),
    /// one JSON object per line: {"text": ..., "embedding": [...]}.
    Embed {
        /// A model directory, e.g. all-MiniLM-L6-v2's.
        model_dir: PathBuf,
        /// Text to embed (repeatable). Without it, each line of standard input is embedded.
        #[arg(long)]
        text: Vec<String>,
        /// Texts per forward pass.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// mean (sentence-transformers), cls, or none: each token's last hidden state
        /// ({"text", "tokens", "hidden"}).
        #[arg(long, default_value = "mean")]
        pooling: Pooling,
        /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
    },
    /// Time training steps and forward passes on this machine (see bench/compare.sh for the
    /// side-by-side comparison with PyTorch). Prints one `RESULT name median_ms min_ms max_ms`
    /// line per measurement.
    Bench {
        /// train (MLM step: forward, backward, AdamW), forward (logits), or encoder (forward of
        /// --model, e.g. all-MiniLM-L6-v2).
        #[arg(long, default_value = "train")]
        task: String,
        #[arg(long, default_value_t = 16)]
        batch: usize,
        #[arg(long, default_value_t = 128)]
        len: usize,
        /// Share of positions with a loss: 1 computes the decoder at every position, 0.15 at
        /// masked-LM's share only.
        #[arg(long, default_value_t = 1.0)]
        loss_fraction: f64,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Model directory for --task encoder.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Run every op as its composite twin instead of the fused kernels.
        #[arg(long)]
        no_fused: bool,
        /// Positional encoding of the benchmark model.
        #[arg(long, value_enum, default_value = "absolute")]
        position: positio::config::PositionKind,
        /// Vocabulary size of the benchmark model.
        #[arg(long, default_value_t = 30522)]
        vocab: usize,
    },
}

fn info(dir: &PathBuf) -> Result<()> {
    let config = hf::load_config(dir)?;
    let model = hf::load_encoder(dir, &runtime::cpu())?;
    let tokenizer = Tokenizer::load(&dir.join(hf::TOKENIZER))?;
    let c = &config;
    println!("model directory      {}", dir.display());
    println!("architecture         {} ({})", if c.architectures.is_empty() { "BertModel".into() } else { c.architectures.join(", ") }, c.model_type);
    println!("attention            {}", if c.causal { "causal (decoder-style)" } else { "bidirectional (encoder)" });
    println!("layers               {} × (hidden {}, heads {}, feed-forward {}, {:?} LayerNorm)", c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, c.norm_position);
    let mut position = c.position_embedding_type.name().to_string();
    if let Some(s) = c.rope_scaling {
        position += &format!(" (scaling {:?} × {})", s.kind, s.factor);
    }
    println!("positional encoding  {position}");
    match model.max_len() {
        Some(n) => println!("max sequence length  {n}"),
        None => println!("max sequence length  unbounded (no learned position table)"),
    }
    println!("parameters           {} ({:.1} M)", model.num_params(), model.num_params() as f64 / 1e6);
    println!("vocabulary           {} (tokenizer.json: {})", c.vocab_size, tokenizer.vocab_size());
    if let Some(labels) = c.labels() {
        println!("labels               {}", labels.join(" "));
    }
    Ok(())
}

fn embed(dir: &PathBuf, texts: Vec<String>, batch_size: usize, pooling: Pooling, device: DeviceKind) -> Result<()> {
    let embedder = Embedder::load(dir, &runtime::device(device)?)?;
    let texts = if texts.is_empty() {
        std::io::stdin().lock().lines().collect::<std::io::Result<Vec<_>>>().map_err(|e| positio::Error::invalid(format!("cannot read standard input: {e}")))?
    } else {
        texts
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for chunk in texts.chunks(batch_size.max(1) * 8) {
        let lines: Vec<serde_json::Value> = match pooling {
            Pooling::Mean => embedder.embed(chunk, batch_size)?.into_iter().zip(chunk).map(|(e, t)| serde_json::json!({ "text": t, "embedding": e })).collect(),
            Pooling::Cls => embedder.embed_cls(chunk, batch_size)?.into_iter().zip(chunk).map(|(e, t)| serde_json::json!({ "text": t, "embedding": e })).collect(),
            Pooling::None => embedder
                .token_states(chunk, batch_size)?
                .into_iter()
                .zip(chunk)
                .map(|((ids, h), t)| serde_json::json!({ "text": t, "tokens": ids, "hidden": h }))
                .collect(),
        };
        for line in lines {
            writeln!(out, "{line}").map_err(|e| positio::Error::invalid(format!("cannot write output: {e}")))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn bench(config: &positio::config::ModelConfig, task: &str, batch: usize, len: usize, fraction: f64, steps: usize, warmup: usize, model: Option<&std::path::Path>, no_fused: bool) -> Result<()> {
    use positio::bench;
    positio::kernels::set_fused(!no_fused);
    let config = config.clone();
    let t = match task {
        "train" => {
            let (t, loss) = bench::train_step(&config, batch, len, fraction, warmup, steps);
            println!("last loss {loss:.4}");
            t
        }
        "forward" => bench::forward(&config, batch, len, warmup, steps),
        "encoder" => {
            let dir = model.ok_or_else(|| positio::Error::invalid("--task encoder needs --model DIR"))?;
            bench::encoder_forward(dir, batch, len, warmup, steps)?
        }
        other => return Err(positio::Error::invalid(format!("unknown bench task '{other}': train, forward or encoder"))),
    };
    println!("RESULT positio-{task} {:.1} {:.1} {:.1}", t.median_ms, t.min_ms, t.max_ms);
    Ok(())
}

fn main() -> ExitCode {
    runtime::init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo { out, position, steps, seed } => {
            positio::demo::run(&positio::demo::DemoOptions { out: out.clone(), position: *position, steps: *steps, seed: *seed }).map(|_| ())
        }
        Command::Info { model_dir } => info(model_dir),
        Command::Finetune(FinetuneCommand::Ner { model, train, dev, out, crf, epochs, lr, batch_size, warmup, weight_decay, max_len, seed, save_every, eval_every, resume, conll }) => {
            let ner = positio::ner::NerConfig {
                model: model.display().to_string(),
                train: train.display().to_string(),
                dev: dev.display().to_string(),
                crf: *crf,
                max_len: *max_len,
                tag_column: conll.tag_column,
                scheme: conll.scheme.clone(),
            };
            let train_cfg = positio::trainer::TrainConfig {
                batch_size: *batch_size,
                lr: *lr,
                warmup: *warmup,
                weight_decay: *weight_decay,
                epochs: *epochs,
                steps: 0,
                save_every: *save_every,
                eval_every: *eval_every,
                seed: *seed,
                ..Default::default()
            };
            positio::finetune::ner(&ner, &train_cfg, out, *resume)
        }
        Command::Eval(EvalCommand::Ner { model, data, output, json, batch_size, conll }) => {
            positio::finetune::eval_ner(model, data, output.as_deref(), json.as_deref(), *batch_size, conll.tag_column, conll.scheme.as_deref())
        }
        Command::Predict(PredictCommand::Ner { model, text, file, conll, batch_size }) => {
            positio::finetune::predict_ner(model, text, file.as_deref(), conll.as_deref(), *batch_size)
        }
        Command::Pretrain(args) => args.resolve().and_then(|cfg| {
            let summary = positio::pretrain::run(&cfg, &args.out, args.resume, true)?;
            if summary.interrupted {
                println!("interrupted at step {}: checkpoint saved; continue with --resume --out {}", summary.steps, args.out.display());
                std::process::exit(130);
            }
            println!("done: {} steps, {} tokens in {:.0} s; model in {}", summary.steps, summary.tokens, summary.elapsed_s, args.out.display());
            Ok(())
        }),
        Command::Tokenizer(TokenizerCommand::Train { corpus, format, fields, skip_bad_lines, vocab_size, uncased, min_frequency, out }) => {
            let data = positio::pretrain::DataConfig {
                corpus: corpus.clone(),
                format: format.clone(),
                fields: if fields.is_empty() { vec!["text".into()] } else { fields.clone() },
                skip_bad_lines: *skip_bad_lines,
                ..Default::default()
            };
            let cfg = positio::pretrain::TokenizerConfig { path: String::new(), vocab_size: *vocab_size, cased: !uncased, min_frequency: *min_frequency };
            data.spec().and_then(|spec| positio::pretrain::train_tokenizer(&spec, &cfg)).and_then(|t| {
                t.save(out)?;
                println!("wrote {} ({} word pieces)", out.display(), t.vocab_size());
                Ok(())
            })
        }
        Command::Plot { run_dir, out } => {
            let out = out.clone().unwrap_or_else(|| run_dir.join("curves.png"));
            positio::plot::plot(run_dir, &out).map(|()| println!("wrote {}", out.display()))
        }
        Command::Embed { model_dir, text, batch_size, pooling, device } => embed(model_dir, text.clone(), *batch_size, *pooling, *device),
        Command::Bench { task, batch, len, loss_fraction, steps, warmup, model, no_fused, position, vocab } => {
            let config = positio::config::ModelConfig { vocab_size: *vocab, ..positio::bench::bench_config(*position) };
            bench(&config, task, *batch, *len, *loss_fraction, *steps, *warmup, model.as_deref(), *no_fused)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
