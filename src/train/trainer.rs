//! The training loop every task shares: gradient accumulation, global-norm clipping, AdamW with
//! a warm-up / decay schedule, a progress bar, `metrics.jsonl`, periodic evaluation, atomic
//! checkpoints that resume bit-exactly, a guard against non-finite losses and gradients, and
//! Ctrl-C handling that saves before exiting.
//!
//! A run directory holds:
//! - `metrics.jsonl`: one JSON object per logged step or evaluation;
//! - `checkpoints/step-NNNNNNNN/` (model, optimizer moments, `state.json`) and `checkpoints/latest`
//!   naming the newest complete one (written last, atomically);
//! - the task's final model (a Hugging Face-style directory) at the top level.

use crate::distributed;
use crate::runtime::{self, DeviceKind};
use crate::train::config::{RunSettings, TrainConfig};
use crate::train::data_parallel::{self, Counters, ExampleTrace, Shard};
use crate::train::optim::{clip_scale, global_norm, AdamW, AdamWConfig};
use crate::train::run_dir::{self, checkpoints, latest_checkpoint};
use crate::train::sampler::{EpochSampler, Position, Sampling};
use crate::train::schedule::learning_rate;
use crate::{io, kernels, Error, Result};
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Steps between checks that all ranks hold the same parameters (also at every checkpoint).
const CHECK_EVERY: usize = 100;

/// Named evaluation results, in display order.
pub(crate) type Metrics = Vec<(String, f64)>;

/// What a task supplies to the loop: its training examples (the loop's sampler draws the
/// batches), the loss of a batch, evaluation, and reading and writing its model.
pub trait Task {
    type Model: Module + Clone;

    /// The training examples, for the sampler: their lengths and how to batch them.
    fn sampling(&self) -> Sampling;
    /// The loss of one training batch (indices into the training examples). Randomness a task
    /// draws for a batch (masks, negatives) must depend on the examples and on how many batches
    /// came before, never on which process computes them (see `train::data_parallel`).
    fn loss(&mut self, model: &Self::Model, batch: &[usize]) -> Result<BatchLoss>;
    /// The loss of one training batch (its value) and the gradients of the loss as `of` says.
    /// By default one backward pass through [`Task::loss`]; a task may compute them in parts to
    /// bound memory (the gradient cache of contrastive learning).
    fn gradients(
        &mut self,
        model: &Self::Model,
        batch: &[usize],
        of: GradientOf,
    ) -> Result<BatchGradients> {
        let l = self.loss(model, batch)?;
        let factor = of.factor(l.weight);
        let (loss, grads) = if factor == 1.0 {
            backward(l.loss, model)
        } else {
            let (value, grads) = backward(l.loss * factor, model);
            let mean = if factor == 0.0 { 0.0 } else { value / factor };
            (mean, grads)
        };
        Ok(BatchGradients {
            loss,
            grads,
            tokens: l.tokens,
            weight: l.weight,
        })
    }
    /// Metrics on the validation data (the model is in inference mode).
    fn evaluate(&mut self, model: &Self::Model) -> Result<Metrics>;
    /// The metric that picks the model to keep, and whether higher is better; `None` keeps the last.
    fn selection(&self) -> Option<(&'static str, bool)>;
    /// Resumable state of the task's own beyond the data position (random streams, a tuned
    /// threshold); none by default.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn restore(&mut self, _state: serde_json::Value) -> Result<()> {
        Ok(())
    }
    /// Resumable state too large for `state.json` (a cache of vectors), written into a
    /// checkpoint's directory; none by default.
    fn save_state_files(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }
    /// Reads what [`Task::save_state_files`] wrote, before [`Task::restore`].
    fn load_state_files(&mut self, _dir: &Path) -> Result<()> {
        Ok(())
    }
    /// The data position of a checkpoint written before the shared sampler (positio up to
    /// bfd5ef0 kept it in the task's state). Tasks whose batches were the same implement it.
    fn legacy_position(
        &self,
        _task_state: &serde_json::Value,
        _batch_size: usize,
    ) -> Result<Position> {
        Err(Error::unsupported(
            "this checkpoint was written by positio before the shared epoch sampler, whose data order for this task differs; \
             finish the run with that version, or start a new run from its model (e.g. --init-from RUN/checkpoints/step-N)",
        ))
    }
    /// Writes the model as a Hugging Face-style directory (config.json, model.safetensors, ...).
    fn save_model(&self, model: &Self::Model, dir: &Path) -> Result<()>;
    /// Reads what `save_model` wrote (onto the training device).
    fn load_model(&self, dir: &Path) -> Result<Self::Model>;
}

/// A training batch's loss.
pub struct BatchLoss {
    pub loss: Tensor<1>,
    /// Tokens the batch covered (throughput).
    pub tokens: usize,
    /// The count the loss is a mean over (examples, or predicted tokens): it weights the batch
    /// against the other micro-batches of a step and the other ranks' shards.
    pub weight: usize,
}

impl BatchLoss {
    /// A loss that is a mean over the batch's `examples`.
    pub fn per_example(loss: Tensor<1>, tokens: usize, examples: usize) -> Self {
        BatchLoss {
            loss,
            tokens,
            weight: examples,
        }
    }
}

/// What a batch's gradients are taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradientOf {
    /// The loss (a mean): one micro-batch on one process.
    Mean,
    /// The loss times its weight (a sum), which the loop divides by the weight of all the
    /// step's micro-batches on all ranks: the mean over the whole global batch.
    Sum,
    /// Nothing (zero gradients): a rank's stand-in for an empty share of a global batch.
    Nothing,
}

impl GradientOf {
    /// What the loss is multiplied by before backward.
    pub fn factor(self, weight: usize) -> f64 {
        match self {
            GradientOf::Mean => 1.0,
            GradientOf::Sum => weight as f64,
            GradientOf::Nothing => 0.0,
        }
    }
}

/// A training batch's loss value, its gradients, and [`BatchLoss`]'s tokens and weight.
pub struct BatchGradients {
    pub loss: f64,
    pub grads: GradientsParams,
    pub tokens: usize,
    pub weight: usize,
}

/// A loss's value and its gradients with respect to `model`'s parameters (none when the loss is
/// not finite: the loop stops on it).
pub fn backward<M: Module>(loss: Tensor<1>, model: &M) -> (f64, GradientsParams) {
    let value = loss.clone().into_scalar::<f64>();
    if !value.is_finite() {
        return (value, GradientsParams::new());
    }
    (value, GradientsParams::from_grads(loss.backward(), model))
}

/// The loop's own resumable state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    step: usize,
    tokens: u64,
    /// Absent in checkpoints written before examples were counted.
    #[serde(default)]
    examples: u64,
    elapsed_s: f64,
    best: Option<f64>,
    /// Absent in checkpoints written before the shared sampler.
    #[serde(default)]
    sampler: Option<Position>,
    /// Dropout masks keyed by global row (false in checkpoints written before: their runs go
    /// on with flat keys, so they end as they would have).
    #[serde(default)]
    dropout_by_row: bool,
    task: serde_json::Value,
}

/// The data position that tasks kept in their own state before the shared sampler.
#[derive(Deserialize)]
pub(crate) struct LegacyPosition {
    pub epoch: u64,
    pub cursor: usize,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Summary {
    pub steps: usize,
    pub tokens: u64,
    pub examples: u64,
    pub elapsed_s: f64,
    pub final_metrics: Metrics,
    pub best: Option<f64>,
    pub interrupted: bool,
}

impl Summary {
    /// Logs how the run ended (interrupted with a checkpoint, or done with its best
    /// development `metric`) and returns the command's outcome.
    pub fn report(&self, metric: &str, out: &Path) -> Outcome {
        if self.interrupted {
            tracing::info!(
                "interrupted at step {}: checkpoint saved; continue with --resume",
                self.steps
            );
            return Outcome::Interrupted;
        }
        let best = match self.best {
            Some(b) => format!("best development {metric} {b:.4}"),
            None => "the last model kept".to_string(),
        };
        tracing::info!(
            "done: {} steps in {:.0} s ({:.1} examples/s, {:.0} tokens/s); {best}; model in {}",
            self.steps,
            self.elapsed_s,
            self.examples as f64 / self.elapsed_s.max(1e-9),
            self.tokens as f64 / self.elapsed_s.max(1e-9),
            out.display()
        );
        Outcome::Done
    }
}

/// Every fine-tuning command's course: the training device seeded with the run's seed, the task
/// prepared by `prepare` (all its inputs read and checked) *before* the run directory is made,
/// `describe` to log what is about to train, then the loop. Returns the task and how it ended.
pub fn fine_tune<S: RunSettings, T: Task>(
    settings: &S,
    out: &Path,
    resume: bool,
    device: DeviceKind,
    prepare: impl FnOnce(&Device) -> Result<(T, T::Model)>,
    describe: impl FnOnce(&T, &T::Model),
) -> Result<(T, Summary)> {
    let device = runtime::training_device(device)?;
    // Seeded before any fresh weights are drawn, so a run is reproducible.
    device.seed(settings.train().seed);
    let (mut task, model) = prepare(&device)?;
    let group = distributed::group();
    if group.is_writer() {
        run_dir::prepare(out, settings, resume)?;
        describe(&task, &model);
    }
    group.barrier();
    let trainer = Trainer {
        config: settings.train().clone(),
        run_dir: out.to_path_buf(),
        progress: true,
    };
    let (_, summary) = trainer.run(&mut task, model, resume)?;
    Ok((task, summary))
}

/// How a command that trains ended: `main` turns `Interrupted` into exit code 130 (as a shell
/// reports a Ctrl-C), after a checkpoint was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Interrupted,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static OWN_SIGNALS: AtomicBool = AtomicBool::new(true);

/// Whether Ctrl-C (or SIGTERM) asked for a clean stop.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Asks the running training (or monitor) to save a checkpoint and stop after its current
/// step, as Ctrl-C does on the command line: for hosts that handle signals themselves (the
/// Python package turns a KeyboardInterrupt into this).
pub fn request_stop() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether positio installs its own Ctrl-C / SIGTERM handler (default: yes). A host with its
/// own signal handling (Python) turns it off and calls [`request_stop`].
pub fn handle_signals(on: bool) {
    OWN_SIGNALS.store(on, Ordering::SeqCst);
}

/// Makes Ctrl-C request a checkpoint and a clean stop instead of killing the process.
pub(crate) fn install_interrupt_handler() {
    if !OWN_SIGNALS.load(Ordering::SeqCst) {
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: the user really wants out.
                std::process::exit(130);
            }
            tracing::warn!("interrupt: finishing this step, saving a checkpoint (Ctrl-C again to quit at once)");
        });
    });
}

pub struct Trainer {
    pub config: TrainConfig,
    pub run_dir: PathBuf,
    /// Report progress (a bar on terminals, `tracing` lines otherwise).
    pub progress: bool,
}

/// Appends JSON lines to `metrics.jsonl`.
struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// Opens the log, dropping lines from beyond `keep_until` steps (a resumed run rewrites them).
    fn open(run_dir: &Path, keep_until: Option<usize>) -> Result<Self> {
        let path = run_dir.join("metrics.jsonl");
        if let Some(limit) = keep_until {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let kept: String = text
                    .lines()
                    .filter(|l| {
                        serde_json::from_str::<serde_json::Value>(l)
                            .ok()
                            .and_then(|v| v["step"].as_u64())
                            .is_some_and(|s| s as usize <= limit)
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
                io::write_atomic(&path, kept.as_bytes())?;
            }
        } else if path.exists() {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, "remove", e))?;
        }
        Ok(MetricsLog { path })
    }

    fn write(&self, value: serde_json::Value) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, "open", e))?;
        writeln!(f, "{value}").map_err(|e| Error::io(&self.path, "write", e))
    }
}

fn metrics_json(step: usize, split: &str, metrics: &Metrics) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("step".into(), step.into());
    obj.insert("split".into(), split.into());
    for (k, v) in metrics {
        obj.insert(k.clone(), serde_json::json!(v));
    }
    serde_json::Value::Object(obj)
}

fn show(metrics: &Metrics) -> String {
    metrics
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A deterministic per-step seed for dropout masks.
fn step_seed(seed: u64, step: usize) -> u64 {
    crate::rng::Rng::new(seed ^ (step as u64).wrapping_mul(0xA24B_AED4_963E_E407)).next_u64()
}

fn adamw(c: &TrainConfig) -> AdamWConfig {
    AdamWConfig {
        beta1: c.adam_beta1,
        beta2: c.adam_beta2,
        eps: c.adam_eps,
        weight_decay: c.weight_decay,
        head_lr_scale: if c.head_lr > 0.0 {
            c.head_lr / c.lr
        } else {
            1.0
        },
        layer_lr_decay: c.layer_lr_decay,
    }
}

impl Trainer {
    /// Optimizer steps of the run: `steps`, or `epochs` passes over `batches_per_epoch`.
    fn total_steps(&self, batches_per_epoch: usize) -> usize {
        let c = &self.config;
        if c.steps > 0 {
            return c.steps;
        }
        let per_epoch = batches_per_epoch as f64 / c.grad_accum as f64;
        ((per_epoch * c.epochs).ceil() as usize).max(1)
    }

    /// Trains `model` (fresh, or replaced by the latest checkpoint when `resume`). In a
    /// process group of several ranks, every rank runs this with the same settings; rank 0
    /// alone evaluates and writes (see `train::data_parallel`).
    pub fn run<T: Task>(
        &self,
        task: &mut T,
        mut model: T::Model,
        resume: bool,
    ) -> Result<(T::Model, Summary)> {
        self.config.validate()?;
        let c = &self.config;
        let group = distributed::group();
        let collective = group.collective();
        let writer = group.is_writer();
        if c.batch_size < group.size() {
            return Err(Error::config(
                "batch_size",
                format!(
                    "{} is the global batch, split over {} ranks: give at least one example per rank",
                    c.batch_size,
                    group.size()
                ),
            ));
        }
        let mut sampler = EpochSampler::new(task.sampling(), c.batch_size, c.seed);
        let total = self.total_steps(sampler.batches_per_epoch());
        let warmup = if c.warmup < 1.0 {
            (c.warmup * total as f64).round() as usize
        } else {
            c.warmup as usize
        };
        let per_epoch = (sampler.batches_per_epoch() / c.grad_accum).max(1);
        if writer {
            std::fs::create_dir_all(checkpoints(&self.run_dir))
                .map_err(|e| Error::io(&self.run_dir, "create", e))?;
        }
        let mut opt = AdamW::new(adamw(c));
        let mut state = LoopState {
            step: 0,
            tokens: 0,
            examples: 0,
            elapsed_s: 0.0,
            best: None,
            sampler: None,
            dropout_by_row: true,
            task: serde_json::Value::Null,
        };
        if resume {
            let dir = latest_checkpoint(&self.run_dir)?.ok_or_else(|| {
                Error::file(checkpoints(&self.run_dir), "no checkpoint to resume from")
            })?;
            run_dir::verify(&dir)?;
            let text = std::fs::read_to_string(dir.join("state.json"))
                .map_err(|e| Error::io(dir.join("state.json"), "read", e))?;
            state = serde_json::from_str(&text)
                .map_err(|e| Error::file(dir.join("state.json"), format!("malformed: {e}")))?;
            model = task.load_model(&dir)?;
            opt.load(
                &dir.join("optimizer.safetensors"),
                state.step as u64,
                &model,
            )?;
            let position = match state.sampler {
                Some(p) => p,
                None => task
                    .legacy_position(&state.task, c.batch_size)
                    .map_err(|e| Error::file(dir.join("state.json"), e.to_string()))?,
            };
            sampler.restore(position);
            task.load_state_files(&dir)?;
            task.restore(state.task.clone())?;
            if self.progress && writer {
                tracing::info!(
                    "resuming from {} (step {} of {total})",
                    dir.display(),
                    state.step
                );
            }
        }
        let log = match writer {
            true => Some(MetricsLog::open(
                &self.run_dir,
                resume.then_some(state.step),
            )?),
            false => None,
        };
        install_interrupt_handler();
        INTERRUPTED.store(false, Ordering::SeqCst);
        if let Some(collective) = collective {
            data_parallel::check_parameters(collective, &model, state.step)?;
        }

        let bar = self.progress_bar(total, state.step, writer);
        let started = Instant::now();
        let elapsed_before = state.elapsed_s;
        // Since the last metrics line: when it began, tokens, examples.
        let mut window = (Instant::now(), 0u64, 0u64);
        // Seconds spent in gradient all-reduces, and steps, since the last metrics line.
        let (mut reducing, mut reduced_steps) = (0.0f64, 0usize);
        let mut interrupted = false;
        let mut final_metrics = Vec::new();
        // Micro-batch gradients are of the loss times its count (`GradientOf::Sum`) whenever
        // more than one gradient makes the step's (accumulation, ranks), divided by the total
        // count below; one alone is of the mean loss, applied as it is.
        let weighted = c.grad_accum > 1 || collective.is_some();
        let mut trace = ExampleTrace::from_env(group.rank())?;
        while state.step < total {
            kernels::seed_dropout(step_seed(c.seed, state.step));
            let mut accumulator = GradientsAccumulator::new();
            let mut local = Counters::default();
            for _ in 0..c.grad_accum {
                let shard = Shard::of(&sampler.next_batch(), group.rank(), group.size());
                if let Some(trace) = &mut trace {
                    trace.write(state.step + 1, &shard)?;
                }
                let rows = if state.dropout_by_row {
                    shard.examples.len()
                } else {
                    0
                };
                kernels::set_dropout_rows(shard.first_row, rows);
                let of = match (shard.stand_in, weighted) {
                    (true, _) => GradientOf::Nothing,
                    (false, true) => GradientOf::Sum,
                    (false, false) => GradientOf::Mean,
                };
                let g = task.gradients(&model, &shard.examples, of)?;
                if !g.loss.is_finite() {
                    return Err(self.non_finite(state.step + 1, "loss", g.loss));
                }
                let weight = if shard.stand_in { 0.0 } else { g.weight as f64 };
                local.weight += weight;
                local.loss_sum += g.loss * weight;
                if !shard.stand_in {
                    local.tokens += g.tokens as f64;
                    local.examples += shard.examples.len() as f64;
                }
                accumulator.accumulate(&model, g.grads);
            }
            let grads = accumulator.grads();
            let (grads, step) = match collective {
                Some(collective) => {
                    local.interrupted = f64::from(u8::from(INTERRUPTED.load(Ordering::SeqCst)));
                    let started = Instant::now();
                    let reduced = data_parallel::all_reduce(collective, &model, grads, local);
                    reducing += started.elapsed().as_secs_f64();
                    reduced_steps += 1;
                    reduced
                }
                None => (grads, local),
            };
            let divisor = if weighted { step.weight } else { 1.0 };
            if divisor <= 0.0 {
                return Err(Error::invalid(format!(
                    "step {}: the batch's losses cover nothing (weight 0): no example to learn from",
                    state.step + 1
                )));
            }
            let norm = global_norm(&model, &grads) / divisor;
            if !norm.is_finite() {
                return Err(self.non_finite(state.step + 1, "gradient norm", norm));
            }
            let clip = clip_scale(norm, c.max_grad_norm);
            let lr = learning_rate(state.step, total, warmup, c.lr, c.schedule);
            model = opt.step(model, grads, lr, clip / divisor);
            state.step += 1;
            state.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
            state.tokens += step.tokens as u64;
            state.examples += step.examples as u64;
            window.1 += step.tokens as u64;
            window.2 += step.examples as u64;
            let loss = step.loss_sum / step.weight.max(f64::MIN_POSITIVE);

            let seconds = window.0.elapsed().as_secs_f64().max(1e-9);
            let (rate, examples_rate) = (window.1 as f64 / seconds, window.2 as f64 / seconds);
            bar.set_position(state.step as u64);
            bar.set_message(format!(
                "loss {loss:.4}, {examples_rate:.1} examples/s, {rate:.0} tokens/s"
            ));
            if state.step.is_multiple_of(c.log_every) || state.step == total {
                if let Some(log) = &log {
                    let mut line = serde_json::json!({
                        "step": state.step, "split": "train", "epoch": state.step as f64 / per_epoch as f64,
                        "loss": loss, "lr": lr, "grad_norm": norm, "tokens_per_s": rate, "examples_per_s": examples_rate, "elapsed_s": state.elapsed_s,
                    });
                    if reduced_steps > 0 {
                        let per_step = 1000.0 * reducing / reduced_steps as f64;
                        line["allreduce_ms_per_step"] = per_step.into();
                    }
                    log.write(line)?;
                }
                (reducing, reduced_steps) = (0.0, 0);
                window = (Instant::now(), 0, 0);
                if self.progress && writer && bar.is_hidden() {
                    // No terminal for a bar (a log file, CI): plain lines instead.
                    tracing::info!(
                        "step {}/{total}: loss {loss:.4}, lr {lr:.2e}, {examples_rate:.1} examples/s, {rate:.0} tokens/s, {:.0} s",
                        state.step,
                        state.elapsed_s
                    );
                }
            }
            let epoch_end = state.step.is_multiple_of(per_epoch);
            let eval_now = (c.eval_every > 0 && state.step.is_multiple_of(c.eval_every))
                || (c.eval_every == 0 && epoch_end)
                || state.step == total;
            if eval_now && writer {
                final_metrics = self.evaluate(
                    task,
                    &model,
                    &mut state,
                    per_epoch,
                    total,
                    &bar,
                    log.as_ref(),
                )?;
            }
            interrupted = match collective {
                Some(_) => step.interrupted > 0.0,
                None => INTERRUPTED.load(Ordering::SeqCst),
            };
            let save_now =
                (c.save_every > 0 && state.step.is_multiple_of(c.save_every)) || interrupted;
            if let Some(collective) = collective {
                if save_now || state.step.is_multiple_of(CHECK_EVERY) || state.step == total {
                    data_parallel::check_parameters(collective, &model, state.step)?;
                }
            }
            if save_now && state.step < total && writer {
                state.task = task.state();
                state.sampler = Some(sampler.position());
                self.checkpoint(task, &model, &opt, &state)?;
            }
            if interrupted {
                break;
            }
        }
        bar.finish_and_clear();
        if !interrupted && writer {
            if task.selection().is_none() {
                io::all_or_nothing(|| task.save_model(&model.clone().valid(), &self.run_dir))?;
            }
            state.task = task.state();
            state.sampler = Some(sampler.position());
            self.checkpoint(task, &model, &opt, &state)?;
        }
        // The other ranks return once rank 0's files are complete.
        group.barrier();
        Ok((
            model,
            Summary {
                steps: state.step,
                tokens: state.tokens,
                examples: state.examples,
                elapsed_s: state.elapsed_s,
                final_metrics,
                best: state.best,
                interrupted,
            },
        ))
    }

    /// Evaluates on the validation data, logs the metrics, and saves the model when it is the
    /// best so far by the task's selection metric.
    #[allow(clippy::too_many_arguments)]
    fn evaluate<T: Task>(
        &self,
        task: &mut T,
        model: &T::Model,
        state: &mut LoopState,
        per_epoch: usize,
        total: usize,
        bar: &indicatif::ProgressBar,
        log: Option<&MetricsLog>,
    ) -> Result<Metrics> {
        let metrics = task.evaluate(&model.clone().valid())?;
        if let (false, Some(log)) = (metrics.is_empty(), log) {
            log.write(metrics_json(state.step, "val", &metrics))?;
        }
        let mut best = String::new();
        if let Some((name, higher)) = task.selection() {
            let value = metrics.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
            if let Some(v) = value {
                let better = state
                    .best
                    .is_none_or(|b| if higher { v > b } else { v < b });
                if better {
                    state.best = Some(v);
                    io::all_or_nothing(|| task.save_model(&model.clone().valid(), &self.run_dir))?;
                }
                let b = state.best.unwrap_or(v);
                let mark = if better {
                    " (new best, model saved)"
                } else {
                    ""
                };
                best = format!("; best {name} so far {b:.4}{mark}");
            }
        }
        bar.suspend(|| {
            if self.progress && !metrics.is_empty() {
                let epoch = state.step as f64 / per_epoch as f64;
                tracing::info!(
                    "epoch {epoch:.2}, step {}/{total}, validation: {}{best}",
                    state.step,
                    show(&metrics)
                );
            }
        });
        Ok(metrics)
    }

    fn non_finite(&self, step: usize, what: &str, value: f64) -> Error {
        let kept = match latest_checkpoint(&self.run_dir) {
            Ok(Some(dir)) => format!("the last good checkpoint is kept at {} (resume from it with --resume, e.g. with a lower learning rate)", dir.display()),
            _ => "no checkpoint had been written yet".into(),
        };
        Error::invalid(format!(
            "training stopped at step {step}: the {what} is not finite ({value}); {kept}"
        ))
    }

    fn progress_bar(&self, total: usize, start: usize, writer: bool) -> indicatif::ProgressBar {
        if !self.progress || !writer {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} step {pos}/{len} | {msg} | {elapsed_precise} elapsed, ETA {eta_precise}",
            )
            .expect("valid template"),
        );
        bar.set_position(start as u64);
        bar.reset_eta();
        bar
    }

    /// Writes `checkpoints/step-N/` completely, then points `latest` at it, then prunes old ones.
    fn checkpoint<T: Task>(
        &self,
        task: &T,
        model: &T::Model,
        opt: &AdamW,
        state: &LoopState,
    ) -> Result<()> {
        let root = checkpoints(&self.run_dir);
        let name = format!("step-{:08}", state.step);
        let tmp = root.join(format!("{name}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        let written = (|| {
            task.save_model(model, &tmp)?;
            task.save_state_files(&tmp)?;
            opt.save(&tmp.join("optimizer.safetensors"))?;
            io::write_atomic(
                &tmp.join("state.json"),
                serde_json::to_string_pretty(state)
                    .expect("state serialises")
                    .as_bytes(),
            )?;
            run_dir::seal(&tmp)
        })();
        if let Err(e) = written {
            // A full disk: free what the failed checkpoint took; the previous one is untouched.
            let _ = std::fs::remove_dir_all(&tmp);
            let kept = match latest_checkpoint(&self.run_dir) {
                Ok(Some(dir)) => format!("the previous checkpoint {} is intact", dir.display()),
                _ => "no earlier checkpoint exists".into(),
            };
            return Err(Error::invalid(format!(
                "cannot write checkpoint {name} ({e}); {kept}"
            )));
        }
        let dir = root.join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir)
            .map_err(|e| Error::io(&dir, "rename a finished checkpoint to", e))?;
        io::write_atomic(&root.join("latest"), name.as_bytes())?;
        let mut old: Vec<PathBuf> = std::fs::read_dir(&root)
            .map_err(|e| Error::io(&root, "list", e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("step-") && !n.ends_with(".tmp"))
            })
            .collect();
        old.sort();
        let keep = self.config.keep_checkpoints.max(1);
        for p in old.iter().take(old.len().saturating_sub(keep)) {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(())
    }
}
