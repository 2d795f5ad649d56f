//! Dynamic batching: every input of every request goes into its model's queue; one thread per
//! model takes the oldest waiting input and the inputs nearest to it in length, as many as fit
//! in `max_tokens` padded tokens and `max_inputs` inputs, runs them as one batch, and answers
//! each through its own channel.
//!
//! Oldest first means a long input is never starved by a stream of short ones (and vice
//! versa); nearest in length, and no input that would leave less than [`MIN_FILL`] of the
//! batch's tokens real, keeps padding low (a mix of sentences and paragraphs padded to the
//! longest paragraph would spend most of the forward pass on padding). The model runs on its own OS thread, so the
//! async runtime never blocks on a forward pass. Inputs whose request has gone (timed out,
//! client disconnected) are dropped before they cost a forward pass.

use super::metrics::Metrics;
use super::models::{Output, Runner};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// One input waiting for a batch.
pub struct Job {
    pub ids: Vec<u32>,
    pub segments: Vec<u32>,
    queued: Instant,
    reply: oneshot::Sender<Result<Output, String>>,
}

/// Bounds of one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Padded tokens (inputs × longest input).
    pub max_tokens: usize,
    pub max_inputs: usize,
}

/// The sending side of a model's queue.
#[derive(Clone)]
pub struct Queue {
    model: String,
    sender: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    running: Arc<AtomicBool>,
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
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Queues the inputs (token ids, segment ids) and waits for their outputs, in order.
    pub async fn run(&self, inputs: Vec<(Vec<u32>, Vec<u32>)>) -> Result<Vec<Output>, String> {
        let mut answers = Vec::with_capacity(inputs.len());
        for (ids, segments) in inputs {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                ids,
                segments,
                queued: Instant::now(),
                reply,
            };
            self.sender
                .send(job)
                .map_err(|_| "the model's batching thread has stopped".to_string())?;
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
                    .map_err(|_| "the model's batching thread stopped".to_string())??,
            );
        }
        Ok(outputs)
    }
}

/// Starts the batching thread of a model; it ends when every [`Queue`] clone is dropped.
pub fn spawn(
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
        let picked = next_batch(&pending, limits);
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
        let ids: Vec<Vec<u32>> = batch.iter().map(|j| j.ids.clone()).collect();
        let segments: Vec<Vec<u32>> = batch.iter().map(|j| j.segments.clone()).collect();
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
                let message = match other {
                    Ok(Err(e)) => format!("inference failed: {e}"),
                    Err(_) => "inference failed: the forward pass panicked".to_string(),
                    Ok(Ok(_)) => "inference failed: wrong number of outputs".to_string(),
                };
                tracing::error!(model, "{message}");
                for job in batch {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

/// The least share of real (not padding) tokens a batch may have when it takes one more input.
pub const MIN_FILL: f64 = 0.75;

/// Indices into `pending` (in arrival order) of the next batch: the oldest input, then the
/// others nearest to it in length (ties: older first) while the batch stays within `limits`
/// and at least [`MIN_FILL`] real tokens.
pub fn next_batch_of(lengths: &[usize], limits: BatchLimits) -> Vec<usize> {
    let Some(&first) = lengths.first() else {
        return Vec::new();
    };
    let mut order: Vec<usize> = (1..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i].abs_diff(first), i));
    let mut picked = vec![0];
    let (mut longest, mut real) = (first, first);
    for i in order {
        if picked.len() >= limits.max_inputs {
            break;
        }
        let l = longest.max(lengths[i]);
        let padded = l * (picked.len() + 1);
        if padded > limits.max_tokens || ((real + lengths[i]) as f64) < MIN_FILL * padded as f64 {
            continue;
        }
        longest = l;
        real += lengths[i];
        picked.push(i);
    }
    picked
}

fn next_batch(pending: &[Job], limits: BatchLimits) -> Vec<usize> {
    let lengths: Vec<usize> = pending.iter().map(|j| j.ids.len()).collect();
    next_batch_of(&lengths, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BatchLimits = BatchLimits {
        max_tokens: 100,
        max_inputs: 4,
    };

    #[test]
    fn oldest_first_then_nearest_in_length() {
        // The oldest (length 10) comes first; 12 and 9 are nearest, 11 next; 50 waits.
        let picked = next_batch_of(&[10, 50, 12, 9, 11, 30], LIMITS);
        assert_eq!(picked, vec![0, 3, 4, 2]);
    }

    #[test]
    fn padded_tokens_stay_within_the_budget() {
        // 30 × 3 = 90 fits, a fourth input of 30 would pad to 120.
        let picked = next_batch_of(&[30, 30, 30, 30, 5], LIMITS);
        assert_eq!(picked.len(), 3);
        let longest = picked
            .iter()
            .map(|&i| [30, 30, 30, 30, 5][i])
            .max()
            .unwrap();
        assert!(longest * picked.len() <= 100);
    }

    #[test]
    fn short_and_long_inputs_go_in_separate_batches() {
        let limits = BatchLimits {
            max_tokens: 10_000,
            max_inputs: 100,
        };
        // Sentences of ~20 tokens and paragraphs of ~200: each batch one kind.
        let lengths = [20, 200, 22, 190, 18, 210, 21];
        assert_eq!(next_batch_of(&lengths, limits), vec![0, 6, 2, 4]);
        assert_eq!(next_batch_of(&[200, 20, 190, 210], limits), vec![0, 2, 3]);
    }

    #[test]
    fn a_long_oldest_input_runs_alone_rather_than_starving() {
        assert_eq!(next_batch_of(&[200, 3, 3], LIMITS), vec![0]);
        assert!(next_batch_of(&[], LIMITS).is_empty());
    }
}
