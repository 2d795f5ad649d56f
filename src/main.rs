//! The `positio` command line: a thin layer over the library.

use clap::{Parser, Subcommand};
use positio::runtime::{self, DeviceKind};
use positio::{embed::Embedder, hf, tokenizer::Tokenizer, Result};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "positio", version, about = "Pretrain, fine-tune, evaluate and serve Transformer encoders \
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

#[derive(Subcommand)]
enum Command {
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
fn bench(task: &str, batch: usize, len: usize, fraction: f64, steps: usize, warmup: usize, model: Option<&std::path::Path>, no_fused: bool) -> Result<()> {
    use positio::bench;
    use positio::config::PositionKind;
    positio::kernels::set_fused(!no_fused);
    let config = bench::bench_config(PositionKind::Absolute);
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
        Command::Embed { model_dir, text, batch_size, pooling, device } => embed(model_dir, text.clone(), *batch_size, *pooling, *device),
        Command::Bench { task, batch, len, loss_fraction, steps, warmup, model, no_fused } => {
            bench(task, *batch, *len, *loss_fraction, *steps, *warmup, model.as_deref(), *no_fused)
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
