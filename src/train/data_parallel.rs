//! The training loop's side of data-parallel training (see `distributed` for the process
//! group): each rank's shard of a global batch, the all-reduce that turns every rank's
//! gradients into the global batch's, and the check that all ranks hold the same parameters.
//!
//! Why the result does not depend on the number of ranks:
//! - the sampler draws the same global batch on every rank; rank `r` takes its contiguous share
//!   of it ([`Shard`]), and dropout masks are keyed by global row (`kernels::set_dropout_rows`);
//! - a task's loss is a mean over some count (examples, or predicted tokens: its *weight*);
//!   each rank multiplies its gradients by its weight, the all-reduce sums them, and the loop
//!   divides by the summed weight: the gradient of the mean over the whole global batch;
//! - every rank applies the same reduced gradients with the same optimizer state.
//!
//! Gradients travel as one flat f32 buffer in buckets of [`BUCKET_FLOATS`] (PyTorch DDP's
//! 25 MB), each bucket's reduction starting while the next is copied out of the gradient
//! tensors. burn runs backward as one call, so the overlap is with that extraction rather than
//! with backward itself.

use crate::distributed::{share, Collective};
use crate::{Error, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

/// Floats per all-reduce bucket (25 MB, as PyTorch DDP's `bucket_cap_mb`).
pub(crate) const BUCKET_FLOATS: usize = 25 * 1024 * 1024 / 4;

/// This rank's part of one global micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shard {
    /// The row of the global batch this shard starts at.
    pub first_row: usize,
    /// Example indices this rank computes.
    pub examples: Vec<usize>,
    /// Whether the shard only stands in for an empty share (a global batch with fewer examples
    /// than ranks): it computes the batch's first example with weight 0, so that every rank
    /// runs the same calls and keeps the same task state.
    pub stand_in: bool,
}

impl Shard {
    /// Rank `rank` of `size`'s shard of `global`.
    pub fn of(global: &[usize], rank: usize, size: usize) -> Shard {
        let range = share(global.len(), rank, size);
        if range.is_empty() && !global.is_empty() {
            return Shard {
                first_row: 0,
                examples: vec![global[0]],
                stand_in: true,
            };
        }
        Shard {
            first_row: range.start,
            examples: global[range].to_vec(),
            stand_in: false,
        }
    }
}

/// The examples each step trained on, one line per micro-batch (`step example…`), when the
/// environment names a file prefix in `POSITIO_TRACE_EXAMPLES` (each rank writes
/// `PREFIX.rankR`): to check which data a rank saw.
pub(crate) struct ExampleTrace {
    file: std::io::BufWriter<std::fs::File>,
    path: std::path::PathBuf,
}

impl ExampleTrace {
    pub fn from_env(rank: usize) -> Result<Option<Self>> {
        let Some(prefix) = std::env::var_os("POSITIO_TRACE_EXAMPLES") else {
            return Ok(None);
        };
        let mut path = std::path::PathBuf::from(prefix);
        path.as_mut_os_string().push(format!(".rank{rank}"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "open", e))?;
        Ok(Some(ExampleTrace {
            file: std::io::BufWriter::new(file),
            path,
        }))
    }

    pub fn write(&mut self, step: usize, shard: &Shard) -> Result<()> {
        use std::io::Write;
        if shard.stand_in {
            return Ok(());
        }
        let examples: Vec<String> = shard.examples.iter().map(usize::to_string).collect();
        writeln!(self.file, "{step} {}", examples.join(" "))
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, "write", e))
    }
}

/// What the ranks sum beside the gradients.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Counters {
    /// The count the losses were means over (the gradients' divisor).
    pub weight: f64,
    /// Σ loss × weight.
    pub loss_sum: f64,
    pub tokens: f64,
    /// Ranks asked to stop (Ctrl-C).
    pub interrupted: f64,
}

/// Sums `grads × scale` and `counters` over the ranks. A parameter that has a gradient on any
/// rank has one afterwards (zeros where a rank had none).
pub(crate) fn all_reduce<M: Module>(
    collective: &dyn Collective,
    model: &M,
    mut grads: GradientsParams,
    scale: f64,
    counters: Counters,
) -> (GradientsParams, Counters) {
    let mut take = Take {
        grads: &mut grads,
        entries: Vec::new(),
    };
    model.visit(&mut take);
    let entries = take.entries;
    let device = entries
        .iter()
        .find_map(|e| e.grad.as_ref().map(|g| g.device()));

    // Counters, then one presence flag per parameter.
    let mut extras = vec![
        counters.weight,
        counters.loss_sum,
        counters.tokens,
        counters.interrupted,
    ];
    extras.extend(
        entries
            .iter()
            .map(|e| if e.grad.is_some() { 1.0 } else { 0.0 }),
    );
    collective.all_reduce_f64(&mut extras);
    let summed = Counters {
        weight: extras[0],
        loss_sum: extras[1],
        tokens: extras[2],
        interrupted: extras[3],
    };
    let present: Vec<bool> = extras[4..].iter().map(|&p| p > 0.0).collect();

    let len: usize = entries.iter().map(|e| e.numel).sum();
    let mut cursor = Cursor {
        scale,
        ..Cursor::default()
    };
    let reduced = collective.all_reduce_sum(len, BUCKET_FLOATS, &mut |offset, chunk| {
        cursor.fill(&entries, offset, chunk)
    });

    let mut put = Put {
        grads: GradientsParams::new(),
        values: &reduced,
        present: &present,
        offset: 0,
        index: 0,
        device,
    };
    model.visit(&mut put);
    (put.grads, summed)
}

/// One parameter's local gradient, flattened.
struct Entry {
    numel: usize,
    grad: Option<Tensor<1>>,
}

/// Takes the gradients out of `grads` in the model's parameter order.
struct Take<'a> {
    grads: &'a mut GradientsParams,
    entries: Vec<Entry>,
}

impl ModuleVisitor for Take<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let numel = param.shape().num_elements();
        let grad = self
            .grads
            .remove::<D>(param.id)
            .map(|g| g.reshape([numel as i64]));
        self.entries.push(Entry { numel, grad });
    }
}

/// Copies the flat gradients (times `scale`) into the buckets, in order, one parameter's
/// values at a time.
#[derive(Default)]
struct Cursor {
    scale: f64,
    entry: usize,
    /// Where `values` (the current entry's floats) starts in the flat buffer.
    start: usize,
    values: Vec<f32>,
}

impl Cursor {
    fn fill(&mut self, entries: &[Entry], offset: usize, chunk: &mut [f32]) {
        let mut written = 0;
        while written < chunk.len() {
            let at = offset + written;
            while at >= self.start + self.values.len() {
                self.start += self.values.len();
                self.load(entries);
            }
            let from = at - self.start;
            let n = (self.values.len() - from).min(chunk.len() - written);
            chunk[written..written + n].copy_from_slice(&self.values[from..from + n]);
            written += n;
        }
    }

    /// Loads the next entry's values times `scale` (zeros when it has no local gradient).
    fn load(&mut self, entries: &[Entry]) {
        let e = &entries[self.entry];
        self.values = match &e.grad {
            Some(g) => {
                let g = if self.scale == 1.0 {
                    g.clone()
                } else {
                    g.clone() * self.scale
                };
                g.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 gradient")
            }
            None => vec![0.0; e.numel],
        };
        self.entry += 1;
    }
}

/// Registers the reduced gradients of the parameters that have one on some rank.
struct Put<'a> {
    grads: GradientsParams,
    values: &'a [f32],
    present: &'a [bool],
    offset: usize,
    index: usize,
    device: Option<Device>,
}

impl ModuleVisitor for Put<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = param.shape();
        let numel = shape.num_elements();
        let values = &self.values[self.offset..self.offset + numel];
        if self.present[self.index] {
            let device = self
                .device
                .clone()
                .unwrap_or_else(|| param.val().inner().device());
            let data = TensorData::new(values.to_vec(), shape);
            self.grads
                .register::<D>(param.id, Tensor::from_data(data, &device));
        }
        self.offset += numel;
        self.index += 1;
    }
}

/// `grads × factor`, parameter by parameter.
pub(crate) fn scale_gradients<M: Module>(
    model: &M,
    grads: GradientsParams,
    factor: f64,
) -> GradientsParams {
    struct Scale {
        grads: GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register::<D>(param.id, g * self.factor);
            }
        }
    }
    let mut s = Scale { grads, factor };
    model.visit(&mut s);
    s.grads
}

/// A 64-bit FNV-1a hash of every parameter's bytes, in the model's order.
pub(crate) fn parameter_hash<M: Module>(model: &M) -> u64 {
    struct Hash(u64);
    impl ModuleVisitor for Hash {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            for &b in param.val().into_data().as_bytes() {
                self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
            }
        }
    }
    let mut h = Hash(0xCBF2_9CE4_8422_2325);
    model.visit(&mut h);
    h.0
}

/// Refuses to go on when the ranks' parameters differ (a rank that computed something else).
pub(crate) fn check_parameters<M: Module>(
    collective: &dyn Collective,
    model: &M,
    step: usize,
) -> Result<()> {
    let hashes = collective.all_gather_u64(parameter_hash(model));
    if hashes.iter().all(|&h| h == hashes[0]) {
        return Ok(());
    }
    let listed: Vec<String> = hashes
        .iter()
        .enumerate()
        .map(|(r, h)| format!("rank {r} {h:016x}"))
        .collect();
    Err(Error::invalid(format!(
        "the ranks' parameters diverged at step {step} (hashes: {}): every rank must run the same positio build, data and settings",
        listed.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_copies_entries_across_bucket_boundaries() {
        let device = crate::runtime::cpu();
        let t = |v: Vec<f32>| {
            Some(Tensor::<1>::from_data(
                TensorData::new(v.clone(), [v.len()]),
                &device,
            ))
        };
        let entries = vec![
            Entry {
                numel: 3,
                grad: t(vec![1.0, 2.0, 3.0]),
            },
            Entry {
                numel: 2,
                grad: None,
            },
            Entry {
                numel: 4,
                grad: t(vec![4.0, 5.0, 6.0, 7.0]),
            },
        ];
        for bucket in 1..=9 {
            let mut cursor = Cursor {
                scale: 1.0,
                ..Cursor::default()
            };
            let mut flat = vec![-1.0f32; 9];
            let mut offset = 0;
            for chunk in flat.chunks_mut(bucket) {
                let n = chunk.len();
                cursor.fill(&entries, offset, chunk);
                offset += n;
            }
            assert_eq!(
                flat,
                [1.0, 2.0, 3.0, 0.0, 0.0, 4.0, 5.0, 6.0, 7.0],
                "bucket {bucket}"
            );
        }
    }

    #[test]
    fn shards_split_the_global_batch_and_an_empty_share_stands_in() {
        let shard = |rank, size| Shard::of(&[5, 6, 7], rank, size);
        assert_eq!(shard(0, 1).examples, [5, 6, 7]);
        assert_eq!((shard(0, 2).first_row, shard(0, 2).examples), (0, vec![5]));
        assert_eq!(
            (shard(1, 2).first_row, shard(1, 2).examples),
            (1, vec![6, 7])
        );
        let empty = Shard::of(&[9], 0, 2);
        assert!(empty.stand_in && empty.examples == [9]);
        assert!(!Shard::of(&[9], 1, 2).stand_in);
    }
}
