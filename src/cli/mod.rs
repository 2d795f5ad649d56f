//! The command line: one file per command family, each holding its clap arguments and the call
//! into the library. Options are parsed into enums here, at the edge; the library never sees
//! a string where a choice is meant. [`run`] returns how the command ended; only `main` turns
//! that into an exit code.

mod answer;
mod classify;
mod data;
mod index;
mod model;
mod monitor;
mod ner;
mod pretrain;
mod recommend;
mod retrieval;
mod serve;
mod tools;

use crate::runtime::DeviceKind;
use crate::train::config::{self, FineTuneSettings, RunSettings, TrainFlags};
use crate::train::trainer::Outcome;
use crate::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "positio",
    version,
    args_override_self = true,
    about = "Pretrain, fine-tune, evaluate and serve Transformer encoders \
with every mainstream positional encoding (absolute, sinusoidal, RoPE, ALiBi, T5 bias, none)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--device` and `--precision`, shared by every command that runs a model.
#[derive(clap::Args, Clone, Copy)]
pub(crate) struct DeviceArg {
    /// Where to compute: cpu, cuda or cuda:N (cuda needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceKind,
    /// Matrix products in fp32; bf16 with fp32 master weights, accumulation, LayerNorm,
    /// softmax and losses (as PyTorch's autocast; fast on GPUs, and on CPUs with AVX-512 BF16,
    /// where the linear layers run in bf16 and the rest in fp32); or int8
    /// linear layers for CPU inference (weights per channel, activations per row, as ONNX
    /// Runtime's dynamic quantization; training commands refuse it). Checkpoints stay fp32.
    #[arg(long, value_enum, default_value = "fp32")]
    pub precision: crate::kernels::Precision,
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
    /// --config tables: [data], [tokenizer], [model], [objective], [train].
    Pretrain(Box<pretrain::PretrainArgs>),
    /// Tokenizer tools.
    #[command(subcommand)]
    Tokenizer(pretrain::TokenizerCommand),
    /// Pretraining corpora: pack a corpus into token shards once (`pretrain --packed`).
    #[command(subcommand)]
    Corpus(pretrain::CorpusCommand),
    /// Data sets: convert corpora into the formats the tasks read (People's Daily NER,
    /// Chinese product reviews).
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Draw a run's loss / perplexity curves (from metrics.jsonl) to a PNG.
    Plot(tools::PlotArgs),
    /// Run the whole pipeline on a small built-in corpus in seconds: train a tokenizer, pretrain
    /// a small encoder with masked-LM, save it as a Hugging Face directory, reload it, embed.
    Demo(tools::DemoArgs),
    /// Create a model directory with fresh weights (any architecture, a given tokenizer), to
    /// fine-tune from scratch: `positio init`, then `positio finetune ner --model DIR`.
    Init(model::InitArgs),
    /// Average the weights of models fine-tuned from the same pretrained model on the same task
    /// (other seeds or settings) into one: a "model soup", which usually scores like their
    /// ensemble at the cost of one model.
    Average(model::AverageArgs),
    /// Add hard negatives to training pairs: for each question, the answers of the file an
    /// embedding model finds most similar that are not its own (after --skip); writes JSON Lines
    /// for `finetune embed`.
    MineNegatives(retrieval::MineArgs),
    /// A document index on disk for `positio search`: build, add, delete, info.
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Search an index: dense (embeddings), bm25 or hybrid, optionally reranked; one JSON line
    /// per query: {"query", "hits": [{"rank", "id", "score", "title", "text"}]}.
    Search(index::SearchArgs),
    /// Answer questions from a library of answer templates: the best template by embedding
    /// similarity (reranked with --rerank), its confidence, and no_match below the threshold
    /// of a calibration. One JSON line per question: {"text", "template", "answer",
    /// "confidence", "no_match", "threshold"}.
    Answer(answer::AnswerArgs),
    /// Pick the confidence threshold of `answer`: the lowest whose answers on development
    /// questions reach --target-precision; writes it as JSON for `answer --calibration`.
    Calibrate(answer::CalibrateArgs),
    /// Monitor a news stream: annotate, store, follow trends per series, alert on spikes of
    /// negative news.
    #[command(subcommand)]
    Monitor(monitor::MonitorCommand),
    /// Rank news for one user with a recommender (`finetune recommend`): the given candidates,
    /// or the best --top of all news in --news. One JSON line per news item: {"rank", "id",
    /// "score", "title"}.
    Recommend(recommend::RecommendArgs),
    /// Describe a model directory: architecture, positional encoding, parameters, vocabulary.
    Info(model::InfoArgs),
    /// Sentence embeddings (mean-pooled, L2-normalised, as sentence-transformers computes them),
    /// one JSON object per line: {"text": ..., "embedding": [...]}.
    Embed(model::EmbedArgs),
    /// Time training steps, fine-tuning steps and forward passes on this machine (see
    /// bench/compare.sh for the side-by-side comparison with PyTorch). Prints one
    /// `RESULT name median_ms min_ms max_ms` line per measurement.
    Bench(tools::BenchArgs),
    /// Serve models over HTTP: embeddings (/embed, OpenAI's /v1/embeddings), classification
    /// (/predict), entities (/ner), a recommender (/recommend), with dynamic batching, limits
    /// and Prometheus metrics.
    /// Compatible with text-embeddings-inference clients.
    Serve(serve::ServeArgs),
    /// Load an HTTP route with concurrent clients (for bench/serve_load.sh): one JSON line with
    /// sequences/s, latency percentiles and errors.
    Load(tools::LoadArgs),
}

#[derive(Subcommand)]
enum FinetuneCommand {
    /// Fine-tune for named-entity recognition on CoNLL files; keeps the epoch with the best
    /// development entity F1 and writes a Hugging Face BertForTokenClassification directory.
    /// --config tables: [ner], [train]; recipe: 5 epochs at lr 1e-4, 10 % warm-up, batches of 32
    /// windows.
    Ner(Box<ner::FinetuneArgs>),
    /// Fine-tune for sequence classification (single-label, multi-label, sentence pairs) on
    /// TSV / CSV / JSON Lines / sentence@label files; keeps the epoch with the best development
    /// accuracy (multi-label: micro-F1) and writes a Hugging Face BertForSequenceClassification
    /// directory. --config tables: [classify], [train]; recipe (transformers'): 3 epochs at lr
    /// 5e-5, 10 % warm-up, batches of 32.
    Classify(Box<classify::FinetuneArgs>),
    /// Fine-tune a sentence-embedding model on (anchor, positive[, negative]) pairs with
    /// in-batch negatives (sentence-transformers' MultipleNegativesRankingLoss, no text twice in
    /// a batch); keeps the epoch with the best development nDCG@10 (--dev: a BEIR directory,
    /// optional) and writes a sentence-transformers directory. --config tables: [embed],
    /// [train]; recipe: 1 epoch at lr 2e-5, 10 % warm-up, batches of 32 pairs.
    Embed(Box<retrieval::FinetuneArgs>),
    /// Fine-tune a cross-encoder reranker on (query, passage) pairs: one relevance logit,
    /// binary cross-entropy on positives and negatives (the file's, or other pairs' answers);
    /// keeps the epoch with the best development micro-F1 (--dev pairs, or a held-out tenth)
    /// and writes a one-label BertForSequenceClassification that sentence-transformers'
    /// CrossEncoder loads. --config tables: [rerank], [train]; recipe: 1 epoch at lr 2e-5.
    Rerank(Box<retrieval::RerankArgs>),
    /// Fine-tune a news recommender on click logs in MIND's layout (news.tsv, behaviors.tsv):
    /// the encoder reads title + abstract, a user vector pools the clicked history (additive
    /// attention, or mean), each click is scored against K non-clicks of its impression
    /// (softmax over 1 + K, as NRMS), and so is each click of a user's history against random
    /// news; keeps the epoch with the best development AUC (--dev: a MIND directory,
    /// optional). --model a recommender's run directory continues with its towers.
    /// --config tables: [recommend], [train]; recipe: 1 epoch, encoder lr 2e-5, towers 1e-3,
    /// 10 % warm-up, batches of 32 impressions.
    Recommend(Box<recommend::FinetuneArgs>),
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Entity-level (seqeval) and token-level (per IOB2 tag) reports of a NER model on a CoNLL file.
    Ner(ner::EvalArgs),
    /// scikit-learn's classification report, the confusion matrix (multi-label: subset accuracy
    /// and Hamming loss) of a sequence classifier on a labelled file.
    Classify(classify::EvalArgs),
    /// Perplexity of a causal LM on held-out text at a chosen length (optionally with RoPE
    /// scaled beyond its training length): one JSON line.
    Lm(pretrain::EvalLmArgs),
    /// Retrieval quality of an embedding model on a BEIR directory (exact search): nDCG@10,
    /// MRR@10, recall@10 and @100, MAP@100 as trec_eval computes them; the TREC run on request.
    Retrieval(retrieval::EvalArgs),
    /// A recommender on a MIND directory with click labels: AUC, MRR, nDCG@5, nDCG@10 per
    /// impression and averaged, as MIND's evaluate.py; its submission file on request.
    Recommend(recommend::EvalArgs),
}

#[derive(Subcommand)]
enum PredictCommand {
    /// Entities in raw text (one JSON line per entity, keyed as transformers' pipeline:
    /// {entity_group, score, word, start, end, line}, start and end in characters; with
    /// --aggregation-strategy none, entity and index instead of entity_group), or tags for a
    /// CoNLL file.
    Ner(ner::PredictArgs),
    /// Labels of texts (one JSON line per text: label or labels, and every label's score).
    Classify(classify::PredictArgs),
}

impl Command {
    /// The device (and precision) a command runs its model on, if it runs one.
    fn device(&self) -> Option<DeviceArg> {
        let d = match self {
            Command::Finetune(FinetuneCommand::Ner(a)) => a.device,
            Command::Eval(EvalCommand::Ner(a)) => a.device,
            Command::Predict(PredictCommand::Ner(a)) => a.device,
            Command::Finetune(FinetuneCommand::Classify(a)) => a.device,
            Command::Finetune(FinetuneCommand::Embed(a)) => a.device,
            Command::Finetune(FinetuneCommand::Rerank(a)) => a.device,
            Command::Finetune(FinetuneCommand::Recommend(a)) => a.device,
            Command::Eval(EvalCommand::Recommend(a)) => a.device,
            Command::Recommend(a) => a.device,
            Command::Eval(EvalCommand::Classify(a)) => a.device,
            Command::Eval(EvalCommand::Lm(a)) => a.device,
            Command::Eval(EvalCommand::Retrieval(a)) => a.device,
            Command::Predict(PredictCommand::Classify(a)) => a.device,
            Command::Pretrain(a) => a.device,
            Command::Demo(a) => a.device,
            Command::Embed(a) => a.device,
            Command::MineNegatives(a) => a.device,
            Command::Bench(a) => a.device,
            Command::Serve(a) => a.device,
            Command::Search(a) => a.device,
            Command::Answer(a) => a.library.device,
            Command::Calibrate(a) => a.library.device,
            Command::Index(c) => return c.device(),
            Command::Monitor(c) => return c.device(),
            Command::Tokenizer(_)
            | Command::Corpus(_)
            | Command::Data(_)
            | Command::Plot(_)
            | Command::Init(_)
            | Command::Average(_)
            | Command::Info(_)
            | Command::Load(_) => return None,
        };
        Some(d)
    }

    /// Whether the command trains a model (and so refuses `--precision int8`).
    fn trains(&self) -> bool {
        match self {
            Command::Finetune(_) | Command::Pretrain(_) | Command::Demo(_) => true,
            Command::Bench(a) => a.trains(),
            _ => false,
        }
    }

    /// The training command's `--distributed`, if any.
    fn distributed(&self) -> Option<crate::distributed::Backend> {
        match self {
            Command::Finetune(FinetuneCommand::Ner(a)) => a.run.distributed,
            Command::Finetune(FinetuneCommand::Classify(a)) => a.run.distributed,
            Command::Finetune(FinetuneCommand::Embed(a)) => a.run.distributed,
            Command::Finetune(FinetuneCommand::Rerank(a)) => a.run.distributed,
            Command::Finetune(FinetuneCommand::Recommend(a)) => a.run.distributed,
            Command::Pretrain(a) => a.run.distributed,
            _ => None,
        }
    }
}

/// What every training command (fine-tuning, pretraining) shares: the run directory, a TOML
/// config, resuming, and the training flags, laid over the task's recipe in that order.
#[derive(clap::Args)]
pub(crate) struct TrainingArgs {
    /// Output run directory: the best (or last) model as a Hugging Face directory, plus
    /// run.toml, metrics.jsonl and checkpoints/.
    #[arg(long)]
    pub out: PathBuf,
    /// A TOML file with the task's tables and \[train\] (a run's run.toml works); flags override
    /// it, and it overrides the task's recipe. An unknown key is refused.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint (with its saved run.toml).
    #[arg(long)]
    pub resume: bool,
    /// Data-parallel training across the processes of `mpiexec -n N positio …` (a build with
    /// `--features mpi`): --batch-size is the global batch, split over the ranks; rank 0 writes
    /// the run. The result does not depend on the number of ranks, and --resume may use another.
    #[arg(long, value_enum)]
    pub distributed: Option<crate::distributed::Backend>,
    #[command(flatten, next_help_heading = "Training")]
    pub flags: TrainFlags,
}

impl TrainingArgs {
    /// The run's settings: the recipe, the config file (or the saved run.toml on resume), then
    /// `task_flags` and the training flags.
    fn resolve<S: RunSettings>(&self, task_flags: impl FnOnce(&mut S)) -> Result<S> {
        config::resolve(
            &self.out,
            self.config.as_deref(),
            self.resume,
            |s: &mut S| {
                task_flags(s);
                self.flags.apply(s.train_mut());
            },
        )
    }
}

/// The texts a `predict` command runs its model on: `--text` (repeatable), else the lines of
/// `--file`, else the lines of standard input.
#[derive(clap::Args)]
pub(crate) struct TextInputs {
    /// A text (repeatable). Without --text or --file, standard input is read, a text a line.
    #[arg(long)]
    text: Vec<String>,
    /// A UTF-8 text file: each line is a text.
    #[arg(long)]
    file: Option<PathBuf>,
}

impl TextInputs {
    /// The texts: `--text`, else the lines of `--file` or standard input.
    fn read(&self) -> Result<Vec<String>> {
        if self.text.is_empty() {
            crate::data::text::input_lines(self.file.as_deref())
        } else {
            Ok(self.text.clone())
        }
    }
}

/// The inputs of every fine-tuning: a model to start from, training and development files
/// (their formats: see the command's description). Required, here or in the --config.
#[derive(clap::Args)]
pub(crate) struct FineTuningInputs {
    /// The model to start from: any BERT directory (positio's or Hugging Face's).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training file.
    #[arg(long)]
    train: Option<PathBuf>,
    /// Development file, for model selection.
    #[arg(long)]
    dev: Option<PathBuf>,
}

impl FineTuningInputs {
    /// The run's settings ([`TrainingArgs::resolve`]) with these flags laid over the task
    /// table's `model`, `train` and `dev`, each then required.
    fn resolve<S: FineTuneSettings>(
        &self,
        run: &TrainingArgs,
        task_flags: impl FnOnce(&mut S),
    ) -> Result<S> {
        let settings = run.resolve(|s: &mut S| {
            let flags = [&self.model, &self.train, &self.dev];
            for (flag, field) in flags.into_iter().zip(s.inputs_mut()) {
                if let Some(p) = flag {
                    *field = p.display().to_string();
                }
            }
            task_flags(s);
        })?;
        config::require_inputs(settings, ["--model", "--train", "--dev"])
    }
}

/// A duration option: a positive, finite number of seconds.
fn positive_seconds(flag: &str, value: f64) -> Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            crate::Error::config(
                flag,
                format!("must be a positive number of seconds, got {value}"),
            )
        })
}

/// Runs a parsed command line. An unusable `--device` is refused before any input is read.
/// With `--distributed`, the process joins its job first, and ranks other than 0 log only
/// warnings and errors.
pub fn run(cli: Cli) -> Result<Outcome> {
    let group = match cli.command.distributed() {
        Some(backend) => Some(crate::distributed::start(backend)?),
        None => None,
    };
    let outcome = run_command(cli, group);
    crate::distributed::stop_on(&outcome);
    outcome
}

fn run_command(cli: Cli, group: Option<&crate::distributed::Group>) -> Result<Outcome> {
    let follower = group.is_some_and(|g| !g.is_writer());
    if !matches!(cli.command, Command::Serve(_)) {
        crate::runtime::quiet_broken_pipe();
        // Progress of the library's long jobs (`tracing` events) as plain lines on standard
        // output (the monitor's and `recommend`'s on standard error: their output is their
        // result); the server sets up its own log. A second call keeps an existing subscriber.
        use tracing_subscriber::fmt::writer::BoxMakeWriter;
        let writer = match cli.command {
            Command::Monitor(_) | Command::Recommend(_) => BoxMakeWriter::new(std::io::stderr),
            _ => BoxMakeWriter::new(std::io::stdout),
        };
        let level = if follower {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        };
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_ansi(false)
            .with_writer(writer)
            .try_init();
    }
    if let Some(g) = group {
        g.log_ranks();
    }
    if let Some(d) = cli.command.device() {
        crate::runtime::check_precision(d.precision, d.device, cli.command.trains())?;
        crate::runtime::device(d.device)?;
        crate::kernels::set_precision(d.precision);
    }
    let done = |r: Result<()>| r.map(|()| Outcome::Done);
    match cli.command {
        Command::Finetune(FinetuneCommand::Ner(args)) => args.run(),
        Command::Eval(EvalCommand::Ner(args)) => done(args.run()),
        Command::Predict(PredictCommand::Ner(args)) => done(args.run()),
        Command::Finetune(FinetuneCommand::Classify(args)) => args.run(),
        Command::Finetune(FinetuneCommand::Embed(args)) => args.run(),
        Command::Finetune(FinetuneCommand::Rerank(args)) => args.run(),
        Command::Finetune(FinetuneCommand::Recommend(args)) => args.run(),
        Command::Eval(EvalCommand::Recommend(args)) => done(args.run()),
        Command::Recommend(args) => done(args.run()),
        Command::Eval(EvalCommand::Classify(args)) => done(args.run()),
        Command::Eval(EvalCommand::Lm(args)) => done(args.run()),
        Command::Eval(EvalCommand::Retrieval(args)) => done(args.run()),
        Command::Predict(PredictCommand::Classify(args)) => done(args.run()),
        Command::Pretrain(args) => args.run(),
        Command::Tokenizer(command) => done(command.run()),
        Command::Corpus(command) => done(command.run()),
        Command::Data(command) => done(command.run()),
        Command::Plot(args) => done(args.run()),
        Command::Demo(args) => done(args.run()),
        Command::Init(args) => done(args.run()),
        Command::Average(args) => done(args.run()),
        Command::Info(args) => done(args.run()),
        Command::Embed(args) => done(args.run()),
        Command::MineNegatives(args) => done(args.run()),
        Command::Bench(args) => done(args.run()),
        Command::Serve(args) => done(args.run()),
        Command::Load(args) => done(args.run()),
        Command::Index(command) => done(command.run()),
        Command::Monitor(command) => done(command.run()),
        Command::Search(args) => done(args.run()),
        Command::Answer(args) => done(args.run()),
        Command::Calibrate(args) => done(args.run()),
    }
}
