//! `positio demo`, `positio plot`, `positio bench` and `positio load`.

use super::DeviceArg;
use crate::model::config::{Arch, ModelConfig, PositionKind};
use crate::tools::bench::{self, BenchTask};
use crate::tools::{demo, load, plot};
use crate::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Where to write the model directory.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Positional encoding of the model.
    #[arg(long, value_enum, default_value = "rope")]
    position: PositionKind,
    /// Training steps.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Seed of the generated corpus, the initial weights and the masking.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl DemoArgs {
    pub fn run(&self) -> Result<()> {
        demo::run(&demo::DemoOptions {
            out: self.out.clone(),
            position: self.position,
            steps: self.steps,
            seed: self.seed,
            device: self.device.device,
        })
        .map(|_| ())
    }
}

#[derive(clap::Args)]
pub(crate) struct PlotArgs {
    /// A run directory (holding metrics.jsonl).
    run_dir: PathBuf,
    /// Output PNG (default RUN_DIR/curves.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl PlotArgs {
    pub fn run(&self) -> Result<()> {
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| self.run_dir.join("curves.png"));
        plot::plot(&self.run_dir, &out)?;
        println!("wrote {}", out.display());
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// What to time.
    #[arg(long, value_enum, default_value = "train")]
    task: BenchTask,
    /// Sequences per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens per sequence (finetune: the most word pieces per sentence).
    #[arg(long, default_value_t = 128)]
    len: usize,
    /// Share of positions with a loss: 1 computes the decoder at every position, 0.15 at
    /// masked-LM's share only.
    #[arg(long, default_value_t = 1.0)]
    loss_fraction: f64,
    /// Timed steps (the median, minimum and maximum are printed).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Model directory: its weights for --task encoder, finetune and train (e.g.
    /// all-MiniLM-L6-v2; train: a BertForMaskedLM or a plain encoder), its architecture
    /// (config.json, fresh weights) for forward.
    #[arg(long)]
    model: Option<PathBuf>,
    /// CoNLL file for --task finetune (e.g. CoNLL-2003 eng.train).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run every op as its composite twin instead of the fused kernels.
    #[arg(long)]
    no_fused: bool,
    /// Positional encoding of the benchmark model [default: absolute; none for a recurrent
    /// encoder].
    #[arg(long, value_enum)]
    position: Option<PositionKind>,
    /// Encoder of the benchmark model: Transformer blocks or recurrent layers.
    #[arg(long, value_enum, default_value = "transformer")]
    arch: Arch,
    /// Layers of the benchmark model [default: 4].
    #[arg(long)]
    layers: Option<usize>,
    /// Hidden size of the benchmark model (bilstm / bigru: half per direction) [default: 256].
    #[arg(long)]
    hidden: Option<usize>,
    /// News vectors scored by --task recommend-top.
    #[arg(long, default_value_t = 1_000_000)]
    items: usize,
    /// Vocabulary size of the benchmark model.
    #[arg(long, default_value_t = 30522)]
    vocab: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl BenchArgs {
    /// Whether the benchmark times training steps.
    pub fn trains(&self) -> bool {
        matches!(
            self.task,
            BenchTask::Train | BenchTask::Finetune | BenchTask::TagTrain
        )
    }

    pub fn run(&self) -> Result<()> {
        crate::kernels::set_fused(!self.no_fused);
        // train / forward: the directory's architecture (fresh weights) when --model is given.
        let config = match (&self.model, self.task) {
            (Some(dir), BenchTask::Train | BenchTask::Forward) => crate::hf::load_config(dir)?,
            _ => {
                let base =
                    bench::bench_config(self.position.unwrap_or(match self.arch.recurrence() {
                        Some(_) => PositionKind::None,
                        None => PositionKind::Absolute,
                    }));
                let c = ModelConfig {
                    vocab_size: self.vocab,
                    arch: self.arch,
                    num_hidden_layers: self.layers.unwrap_or(base.num_hidden_layers),
                    hidden_size: self.hidden.unwrap_or(base.hidden_size),
                    max_position_embeddings: base.max_position_embeddings.max(self.len),
                    ..base
                };
                c.validate()?;
                c
            }
        };
        let run = bench::Workload {
            batch: self.batch,
            len: self.len,
            warmup: self.warmup,
            steps: self.steps.max(1),
            device: self.device.device,
        };
        let model = || {
            self.model.as_deref().ok_or_else(|| {
                Error::config("--model", "--task encoder and finetune need a model DIR")
            })
        };
        let (name, t) = match self.task {
            BenchTask::Train => {
                let init = self.model.as_deref();
                let (t, losses) = bench::train_step(&config, init, self.loss_fraction, &run)?;
                let all: Vec<String> = losses.iter().map(|l| format!("{l:.6}")).collect();
                println!("losses {}", all.join(" "));
                ("train", t)
            }
            BenchTask::Forward => ("forward", bench::forward(&config, &run)?),
            BenchTask::TagTrain => ("tag-train", bench::tagger(&config, true, &run)?),
            BenchTask::TagForward => ("tag-forward", bench::tagger(&config, false, &run)?),
            BenchTask::Encoder => ("encoder", bench::encoder_forward(model()?, &run)?),
            BenchTask::Finetune => {
                let data = self.data.as_deref().ok_or_else(|| {
                    Error::config("--data", "--task finetune needs a FILE (a CoNLL file)")
                })?;
                let (t, tokens_per_s) = bench::finetune_steps(model()?, data, &run)?;
                println!("tokens/s {tokens_per_s:.0}");
                ("finetune", t)
            }
            BenchTask::RecommendTop => {
                let dim = self.hidden.unwrap_or(384);
                let (t, bytes) = bench::recommend_top(self.items, dim, &run)?;
                println!(
                    "cache of {} news x {dim}: {:.1} MB as f32 (f16 would be half: {:.1} MB)",
                    self.items,
                    bytes as f64 / 1e6,
                    bytes as f64 / 2e6
                );
                ("recommend-top", t)
            }
            BenchTask::Gemm => {
                for (m, k, n, ta, tb, what) in bench::GEMM_SHAPES {
                    let g = bench::gemm_gflops((m, k, n), (ta, tb), &run)?;
                    let key = format!(
                        "{m}x{k}x{n}{}{}",
                        if ta { "-AtB" } else { "" },
                        if tb { "-ABt" } else { "" }
                    );
                    if (m, k, n) == (2048, 2048, 2048) {
                        println!("RESULT gemm-ceiling-gflops {g:.1}");
                    }
                    println!("RESULT gemm {key} {g:.1}  # {what}");
                }
                return Ok(());
            }
        };
        println!(
            "RESULT positio-{name} {:.1} {:.1} {:.1}",
            t.median_ms, t.min_ms, t.max_ms
        );
        Ok(())
    }
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["bodies", "mix"]))]
pub(crate) struct LoadArgs {
    /// The server, http://HOST:PORT, and with --bodies the route, e.g.
    /// http://127.0.0.1:8080/embed.
    #[arg(long)]
    url: String,
    /// Request bodies for the route, one JSON object per line (sent in turn as POST).
    #[arg(long)]
    bodies: Option<PathBuf>,
    /// Requests to any route, one JSON object per line: {"method", "path", "body": JSON or
    /// "raw": text sent as it is, "valid": false for one that must be refused}.
    #[arg(long)]
    mix: Option<PathBuf>,
    /// Concurrent clients, each on its own keep-alive connection.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many requests in all.
    #[arg(long)]
    requests: Option<usize>,
    /// Sent as `Authorization: Bearer KEY`.
    #[arg(long, env = "POSITIO_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Report each window of this many seconds too (and print progress after each).
    #[arg(long)]
    window: Option<f64>,
}

impl LoadArgs {
    pub fn run(&self) -> Result<()> {
        let rest = self.url.strip_prefix("http://").ok_or_else(|| {
            Error::config(
                "--url",
                format!("{:?}: expected http://HOST:PORT/PATH", self.url),
            )
        })?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let requests = match (&self.bodies, &self.mix) {
            (None, Some(mix)) => load::read_mix(mix)?,
            (Some(bodies), None) => {
                let requests: Vec<load::Request> =
                    crate::data::text::read_text(bodies, crate::data::text::TextEncoding::Utf8)?
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| load::Request::post(path, l.as_bytes().to_vec()))
                        .collect();
                if requests.is_empty() {
                    return Err(Error::file(
                        bodies,
                        "no request bodies (one JSON object per line)",
                    ));
                }
                requests
            }
            _ => return Err(Error::config("--bodies / --mix", "give exactly one")),
        };
        let report = load::run(&load::LoadOptions {
            host: host.to_string(),
            requests,
            clients: self.clients,
            duration: super::positive_seconds("--duration", self.duration)?,
            max_requests: self.requests,
            api_key: self.api_key.clone(),
            window: self
                .window
                .map(|w| super::positive_seconds("--window", w))
                .transpose()?,
        })?;
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| Error::invalid(e.to_string()))?
        );
        Ok(())
    }
}
