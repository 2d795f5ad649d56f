//! Dynamic batching: every input of every request goes into its model's queue; one thread per
//! model picks a seed input and the inputs nearest to it in length, as many as fit in
//! `max_tokens` padded tokens and `max_inputs` inputs, runs them as one batch, and answers each
//! through its own channel.
//!
//! The seed is the oldest waiting input, except that consecutive batches are seeded from
//! different requests when another one waits: a long input is never starved by a stream of
//! short ones, and a request of many long inputs makes another client wait at most one batch.
//! Nearest in length, and no input that would leave less than `MIN_FILL` of the batch's
//! tokens real, keeps padding low (a mix of sentences and paragraphs padded to the longest
//! paragraph would spend most of the forward pass on padding). The model runs on its own OS thread, so the
//! async runtime never blocks on a forward pass. Inputs whose request has gone (timed out,
//! client disconnected) are dropped before they cost a forward pass.

use super::metrics::Metrics;
use super::models::{Output, Runner};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Why a queued input got no output. Either way the server failed, not the request (the
/// routes answer 500 with this message).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum InferError {
    /// The batching thread had ended before the input was queued.
    #[error("the model's batching thread has stopped")]
    Stopped,
    /// The batching thread ended while the input waited.
    #[error("the model's batching thread stopped")]
    StoppedWhileWaiting,
    /// The forward pass of the input's batch failed (every input of the batch gets this).
    #[error("inference failed: {0}")]
    Failed(String),
}

/// One input waiting for a batch.
pub(crate) struct Job {
    /// Which request (call of [`Queue::run`]) the input belongs to.
    request: u64,
    pub ids: Vec<u32>,
    pub segments: Vec<u32>,
    queued: Instant,
    reply: oneshot::Sender<Result<Output, InferError>>,
}

/// Bounds of one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Padded tokens (inputs × longest input).
    pub max_tokens: usize,
    pub max_inputs: usize,
}

/// `serve`'s defaults.
impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_tokens: 16384,
            max_inputs: 128,
        }
    }
}

/// The sending side of a model's queue.
#[derive(Clone)]
pub(crate) struct Queue {
    model: String,
    sender: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    running: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
}

/// Marks the thread stopped however it ends.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Queue {
    /// Whether the batching thread still runs.
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Queues the inputs (token ids, segment ids) and waits for their outputs, in order.
    pub(crate) async fn run(
        &self,
        inputs: Vec<(Vec<u32>, Vec<u32>)>,
    ) -> Result<Vec<Output>, InferError> {
        let mut answers = Vec::with_capacity(inputs.len());
        let request = self.requests.fetch_add(1, Ordering::Relaxed);
        for (ids, segments) in inputs {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                request,
                ids,
                segments,
                queued: Instant::now(),
                reply,
            };
            self.sender.send(job).map_err(|_| InferError::Stopped)?;
            self.metrics
                .queue_depth
                .with_label_values(&[&self.model])
                .inc();
            answers.push(answer);
        }
        let mut outputs = Vec::with_capacity(answers.len());
        for answer in answers {
            outputs.push(
                answer
                    .await
                    .map_err(|_| InferError::StoppedWhileWaiting)??,
            );
        }
        Ok(outputs)
    }
}

/// Starts the batching thread of a model; it ends when every [`Queue`] clone is dropped.
pub(crate) fn spawn(
    model: String,
    runner: Runner,
    limits: BatchLimits,
    metrics: Arc<Metrics>,
) -> std::io::Result<(Queue, std::thread::JoinHandle<()>)> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let running = Arc::new(AtomicBool::new(true));
    let queue = Queue {
        model: model.clone(),
        sender,
        metrics: metrics.clone(),
        running: running.clone(),
        requests: Arc::new(AtomicU64::new(0)),
    };
    let handle = std::thread::Builder::new()
        .name(format!("batcher-{model}"))
        .spawn(move || {
            let _running = Running(running);
            crate::runtime::flush_subnormals();
            work(&model, &runner, receiver, limits, &metrics)
        })?;
    Ok((queue, handle))
}

fn work(
    model: &str,
    runner: &Runner,
    receiver: mpsc::Receiver<Job>,
    limits: BatchLimits,
    metrics: &Metrics,
) {
    let depth = metrics.queue_depth.with_label_values(&[model]);
    let mut pending: Vec<Job> = Vec::new();
    let mut last_seed = None;
    loop {
        if pending.is_empty() {
            match receiver.recv() {
                Ok(job) => pending.push(job),
                Err(_) => return,
            }
        }
        pending.extend(receiver.try_iter());
        let before = pending.len();
        pending.retain(|j| !j.reply.is_closed());
        depth.sub((before - pending.len()) as i64);
        if pending.is_empty() {
            continue;
        }
        let waiting: Vec<(usize, u64)> = pending.iter().map(|j| (j.ids.len(), j.request)).collect();
        let picked = next_batch_of(&waiting, last_seed, limits);
        last_seed = Some(pending[picked[0]].request);
        let mut batch: Vec<Job> = Vec::with_capacity(picked.len());
        // Indices descending, so that removing one does not shift the others.
        let mut sorted = picked;
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        for i in sorted {
            batch.push(pending.remove(i));
        }
        batch.reverse();
        depth.sub(batch.len() as i64);

        let start = Instant::now();
        for job in &batch {
            metrics
                .queue_seconds
                .with_label_values(&[model])
                .observe((start - job.queued).as_secs_f64());
        }
        let longest = batch.iter().map(|j| j.ids.len()).max().unwrap_or(0);
        metrics
            .batch_inputs
            .with_label_values(&[model])
            .observe(batch.len() as f64);
        metrics
            .batch_tokens
            .with_label_values(&[model])
            .observe((batch.len() * longest) as f64);
        // The jobs keep only their reply channels from here on.
        let ids: Vec<Vec<u32>> = batch
            .iter_mut()
            .map(|j| std::mem::take(&mut j.ids))
            .collect();
        let segments: Vec<Vec<u32>> = batch
            .iter_mut()
            .map(|j| std::mem::take(&mut j.segments))
            .collect();
        // A bug in a forward pass answers this batch with an error instead of killing the
        // thread (and hanging every later request).
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(&ids, &segments)));
        metrics
            .inference_seconds
            .with_label_values(&[model])
            .observe(start.elapsed().as_secs_f64());
        match result {
            Ok(Ok(outputs)) if outputs.len() == batch.len() => {
                for (job, out) in batch.into_iter().zip(outputs) {
                    let _ = job.reply.send(Ok(out));
                }
            }
            other => {
                let error = InferError::Failed(match other {
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "the forward pass panicked".to_string(),
                    Ok(Ok(_)) => "wrong number of outputs".to_string(),
                });
                tracing::error!(model, "{error}");
                for job in batch {
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The least share of real (not padding) tokens a batch may have when it takes one more input.
pub(crate) const MIN_FILL: f64 = 0.75;

/// Indices into the waiting inputs (`(length, request)` in arrival order) of the next batch,
/// seed first: the oldest input not of `last_seed`'s request (the oldest of all if there is
/// none), then the others nearest to it in length (ties: older first) while the batch stays
/// within `limits` and at least [`MIN_FILL`] real tokens.
pub(crate) fn next_batch_of(
    waiting: &[(usize, u64)],
    last_seed: Option<u64>,
    limits: BatchLimits,
) -> Vec<usize> {
    if waiting.is_empty() {
        return Vec::new();
    }
    let seed = waiting
        .iter()
        .position(|&(_, r)| Some(r) != last_seed)
        .unwrap_or(0);
    let first = waiting[seed].0;
    let mut order: Vec<usize> = (0..waiting.len()).filter(|&i| i != seed).collect();
    order.sort_by_key(|&i| (waiting[i].0.abs_diff(first), i));
    let mut picked = vec![seed];
    let (mut longest, mut real) = (first, first);
    for i in order {
        if picked.len() >= limits.max_inputs {
            break;
        }
        let length = waiting[i].0;
        let l = longest.max(length);
        let padded = l * (picked.len() + 1);
        if padded > limits.max_tokens || ((real + length) as f64) < MIN_FILL * padded as f64 {
            continue;
        }
        longest = l;
        real += length;
        picked.push(i);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BatchLimits = BatchLimits {
        max_tokens: 100,
        max_inputs: 4,
    };

    /// Inputs of distinct requests.
    fn alone(lengths: &[usize]) -> Vec<(usize, u64)> {
        lengths
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, i as u64))
            .collect()
    }

    #[test]
    fn oldest_first_then_nearest_in_length() {
        // The oldest (length 10) comes first; 12 and 9 are nearest, 11 next; 50 waits.
        let picked = next_batch_of(&alone(&[10, 50, 12, 9, 11, 30]), None, LIMITS);
        assert_eq!(picked, vec![0, 3, 4, 2]);
    }

    #[test]
    fn padded_tokens_stay_within_the_budget() {
        // 30 × 3 = 90 fits, a fourth input of 30 would pad to 120.
        let picked = next_batch_of(&alone(&[30, 30, 30, 30, 5]), None, LIMITS);
        assert_eq!(picked, vec![0, 1, 2]);
    }

    #[test]
    fn short_and_long_inputs_go_in_separate_batches() {
        let limits = BatchLimits {
            max_tokens: 10_000,
            max_inputs: 100,
        };
        // Sentences of ~20 tokens and paragraphs of ~200: each batch one kind.
        let lengths = [20, 200, 22, 190, 18, 210, 21];
        assert_eq!(
            next_batch_of(&alone(&lengths), None, limits),
            vec![0, 6, 2, 4]
        );
        assert_eq!(
            next_batch_of(&alone(&[200, 20, 190, 210]), None, limits),
            vec![0, 2, 3]
        );
    }

    #[test]
    fn a_long_oldest_input_runs_alone_rather_than_starving() {
        assert_eq!(next_batch_of(&alone(&[200, 3, 3]), None, LIMITS), vec![0]);
        assert!(next_batch_of(&[], None, LIMITS).is_empty());
    }

    #[test]
    fn a_big_request_lets_another_one_in_every_other_batch() {
        // Request 7 has eight inputs of 40 tokens (two per batch); request 8, one of 5, came
        // after them. Batches alternate their seed between the requests.
        let mut waiting = vec![(40, 7); 8];
        waiting.push((5, 8));
        assert_eq!(next_batch_of(&waiting, None, LIMITS), vec![0, 1]);
        assert_eq!(next_batch_of(&waiting[2..], Some(7), LIMITS), vec![6]);
        // Alone in the queue, a request seeds every batch.
        assert_eq!(next_batch_of(&waiting[2..8], Some(7), LIMITS), vec![0, 1]);
    }

    #[test]
    fn errors_say_what_failed() {
        assert_eq!(
            InferError::Failed("the forward pass panicked".into()).to_string(),
            "inference failed: the forward pass panicked"
        );
        assert_eq!(
            InferError::Stopped.to_string(),
            "the model's batching thread has stopped"
        );
    }
}
