//! `positio init`, `positio average`, `positio info` and `positio embed`: make a fresh model
//! directory or one averaged from fine-tuned models, look at one, and compute sentence
//! embeddings with it.

use super::pretrain::ArchitectureArgs;
use super::DeviceArg;
use crate::data::text;
use crate::data::tokenizer::Tokenizer;
use crate::model::config::Arch;
use crate::model::encoder::EncoderModel;
use crate::tasks::embedding::{Embedder, SentencePooling};
use crate::tasks::pretrain::ModelSpec;
use crate::{hf, runtime, Error, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct InitArgs {
    /// The model directory to create (refused if it already holds a model).
    #[arg(long)]
    out: PathBuf,
    /// The tokenizer.json the model reads; its vocabulary sizes the embedding table.
    #[arg(long)]
    tokenizer: PathBuf,
    #[command(flatten)]
    architecture: ArchitectureArgs,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl InitArgs {
    pub fn run(&self) -> Result<()> {
        hf::refuse_existing_model(&self.out, "init")?;
        let tokenizer = Tokenizer::load(&self.tokenizer)?;
        let mut spec = ModelSpec::default();
        self.architecture.apply(&mut spec);
        let config = spec.config(
            tokenizer.vocab_size(),
            spec.max_positions,
            false,
            "BertModel",
        )?;
        let device = runtime::cpu();
        device.seed(self.seed);
        let model = EncoderModel::new(&config, &device);
        hf::save(&model, &config, &self.out, Some(&self.tokenizer))?;
        println!(
            "wrote {}: a fresh {} encoder, {} parameters",
            self.out.display(),
            config.arch.name(),
            model.num_params()
        );
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct AverageArgs {
    /// A fine-tuned model directory (repeat: at least two, all fine-tuned from the same
    /// pretrained model on the same task, e.g. with other seeds).
    #[arg(long = "model", required = true)]
    models: Vec<PathBuf>,
    /// The model directory to write (refused if it already holds a model).
    #[arg(long)]
    out: PathBuf,
}

impl AverageArgs {
    pub fn run(&self) -> Result<()> {
        let soup = hf::average::average(&self.models, &self.out)?;
        println!(
            "wrote {}: the mean of {} models ({} tensors, {} parameters){}",
            self.out.display(),
            soup.models,
            soup.tensors,
            soup.parameters,
            if soup.thresholds {
                "; decision thresholds averaged too"
            } else {
                ""
            }
        );
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct InfoArgs {
    /// A Hugging Face-style model directory (config.json, model.safetensors, tokenizer.json).
    model_dir: PathBuf,
}

impl InfoArgs {
    pub fn run(&self) -> Result<()> {
        let dir = &self.model_dir;
        let checkpoint = hf::Checkpoint::open(dir)?;
        let model = checkpoint.encoder(&runtime::cpu())?;
        let tokenizer = checkpoint.tokenizer()?;
        let c = &checkpoint.config;
        let architecture = if c.architectures.is_empty() {
            "BertModel".into()
        } else {
            c.architectures.join(", ")
        };
        println!("model directory      {}", dir.display());
        println!("architecture         {architecture} ({})", c.model_type);
        let reads = match (c.arch, c.causal) {
            (Arch::Transformer, true) => "causal attention (decoder-style)",
            (Arch::Transformer, false) => "bidirectional attention (encoder)",
            (Arch::Lstm | Arch::Gru, _) => "left to right (recurrent)",
            (Arch::Bilstm | Arch::Bigru, _) => "both directions (recurrent)",
        };
        println!("reads                {reads}");
        match c.arch.recurrence() {
            None => println!(
                "layers               {} × (hidden {}, heads {}, feed-forward {}, {:?} LayerNorm)",
                c.num_hidden_layers,
                c.hidden_size,
                c.num_attention_heads,
                c.intermediate_size,
                c.norm_position
            ),
            Some((cell, directions)) => println!(
                "layers               {} × {} {} ({} units per direction; states of {})",
                c.num_hidden_layers,
                if directions == 2 {
                    "bidirectional"
                } else {
                    "left-to-right"
                },
                cell.name(),
                c.hidden_size / directions,
                c.hidden_size
            ),
        }
        let mut position = c.position_embedding_type.name().to_string();
        if let Some(s) = c.rope_scaling {
            position += &format!(" (scaling {:?} × {})", s.kind, s.factor);
        }
        println!("positional encoding  {position}");
        match model.max_len() {
            Some(n) => println!("max sequence length  {n}"),
            None => println!("max sequence length  unbounded (no learned position table)"),
        }
        println!(
            "parameters           {} ({:.1} M)",
            model.num_params(),
            model.num_params() as f64 / 1e6
        );
        println!(
            "vocabulary           {} (tokenizer.json: {})",
            c.vocab_size,
            tokenizer.vocab_size()
        );
        if let Some(labels) = c.labels() {
            println!("labels               {}", labels.join(" "));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Pooling {
    /// The directory's own sentence-transformers pooling (`1_Pooling/config.json`; mean when
    /// it has none), L2-normalised.
    Auto,
    /// Mean over real tokens, L2-normalised (sentence-transformers).
    Mean,
    /// The [CLS] token's state, L2-normalised.
    Cls,
    /// Each token's last hidden state: {"text", "tokens", "hidden"}.
    None,
}

#[derive(clap::Args)]
pub(crate) struct EmbedArgs {
    /// A model directory, e.g. all-MiniLM-L6-v2's.
    model_dir: PathBuf,
    /// Text to embed (repeatable). Without it, each line of standard input is embedded.
    #[arg(long)]
    text: Vec<String>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// How token states become the output.
    #[arg(long, value_enum, default_value = "auto")]
    pooling: Pooling,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl EmbedArgs {
    pub fn run(&self) -> Result<()> {
        let embedder = Embedder::load(&self.model_dir, &runtime::device(self.device.device)?)?;
        let texts = if self.text.is_empty() {
            text::input_lines(None)?
        } else {
            self.text.clone()
        };
        let batch_size = self.batch_size.max(1);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for chunk in texts.chunks(batch_size * 8) {
            let vectors = |v: Vec<Vec<f32>>| {
                v.into_iter()
                    .zip(chunk)
                    .map(|(e, t)| serde_json::json!({ "text": t, "embedding": e }))
                    .collect::<Vec<_>>()
            };
            let lines = match self.pooling {
                Pooling::Auto => vectors(embedder.embed(chunk, embedder.pooling, batch_size)?),
                Pooling::Mean => vectors(embedder.embed(chunk, SentencePooling::Mean, batch_size)?),
                Pooling::Cls => vectors(embedder.embed(chunk, SentencePooling::Cls, batch_size)?),
                Pooling::None => embedder
                    .token_states(chunk, batch_size)?
                    .into_iter()
                    .zip(chunk)
                    .map(|((ids, h), t)| serde_json::json!({ "text": t, "tokens": ids, "hidden": h }))
                    .collect(),
            };
            for line in lines {
                writeln!(out, "{line}").map_err(|e| Error::io("<standard output>", "write", e))?;
            }
        }
        Ok(())
    }
}
