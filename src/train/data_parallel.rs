//! The training loop's side of data-parallel training (see `distributed` for the process
//! group): each rank's shard of a global batch, the all-reduce that turns every rank's
//! gradients into the global batch's, and the check that all ranks hold the same parameters.
//!
//! Why the result does not depend on the number of ranks:
//! - the sampler draws the same global batch on every rank; rank `r` takes its contiguous share
//!   of it ([`Shard`]), and dropout masks are keyed by global row (`kernels::set_dropout_rows`);
//! - a task's loss is a mean over some count (examples, or predicted tokens: its *weight*);
//!   each rank takes the gradient of its loss times its weight (`GradientOf::Sum`: the factor
//!   rides on the scalar loss, no pass over the gradients), the all-reduce sums them, and the
//!   loop divides by the summed weight: the gradient of the mean over the whole global batch;
//! - every rank applies the same reduced gradients with the same optimizer state.
//!
//! Gradients travel as f32 buffers: a large gradient is reduced straight from its own buffer
//! (moved out of its tensor, the result moved into the new tensor: no copy on either side),
//! and small ones (biases, LayerNorm) are packed into flat buckets of up to [`BUCKET_FLOATS`]
//! (PyTorch DDP's 25 MB) so that they cost few calls. burn runs backward as
//! one call, so communication cannot overlap it; and on one machine MPI's all-reduce is memory
//! work for the same cores, so what was measured to pay is doing less of it (fewer copies),
//! not overlapping it (docs/RESULTS.md).

use crate::distributed::{share, Collective};
use crate::{Error, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

/// Floats per packed bucket of small gradients (25 MB, as PyTorch DDP's `bucket_cap_mb`).
const BUCKET_FLOATS: usize = 25 * 1024 * 1024 / 4;

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
    /// Examples (the sampler's units: sentences, impressions, sequences).
    pub examples: f64,
    /// Ranks asked to stop (Ctrl-C).
    pub interrupted: f64,
}

/// Sums `grads` (of each rank's losses times their weights) and `counters` over the ranks. A
/// parameter that has a gradient on any rank has one afterwards (zeros where a rank had none).
pub(crate) fn all_reduce<M: Module>(
    collective: &dyn Collective,
    model: &M,
    mut grads: GradientsParams,
    counters: Counters,
) -> (GradientsParams, Counters) {
    let mut take = Take {
        grads: &mut grads,
        entries: Vec::new(),
    };
    model.visit(&mut take);
    let mut entries = take.entries;
    let device = entries
        .iter()
        .find_map(|e| e.grad.as_ref().map(|g| g.device()));

    // Counters, then one presence flag per parameter.
    let mut extras = vec![
        counters.weight,
        counters.loss_sum,
        counters.tokens,
        counters.examples,
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
        examples: extras[3],
        interrupted: extras[4],
    };
    let present: Vec<bool> = extras[5..].iter().map(|&p| p > 0.0).collect();

    // This rank's values of every parameter some rank has a gradient for.
    let mut values: Vec<Option<Vec<f32>>> = entries
        .iter_mut()
        .zip(&present)
        .map(|(e, &p)| p.then(|| e.local_values()))
        .collect();
    let sizes: Vec<usize> = values
        .iter()
        .map(|v| v.as_ref().map_or(0, Vec::len))
        .collect();
    for bucket in buckets(&sizes) {
        if let [i] = bucket[..] {
            let own = values[i].take().expect("present");
            values[i] = Some(collective.all_reduce_sum(&own));
            continue;
        }
        let flat: Vec<f32> = bucket
            .iter()
            .flat_map(|&i| values[i].as_deref().expect("present"))
            .copied()
            .collect();
        let reduced = collective.all_reduce_sum(&flat);
        let mut at = 0;
        for &i in &bucket {
            let n = sizes[i];
            values[i] = Some(reduced[at..at + n].to_vec());
            at += n;
        }
    }

    let mut put = Put {
        grads: GradientsParams::new(),
        values: values.into_iter(),
        device,
    };
    model.visit(&mut put);
    (put.grads, summed)
}

/// Gradients of at least this many floats are reduced straight from their own buffers.
const OWN_BUFFER_FLOATS: usize = 1 << 16;

/// The all-reduce calls for gradients of `sizes` floats (0: none): each large gradient alone,
/// the small ones packed together in order, up to [`BUCKET_FLOATS`] a call.
fn buckets(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut packing: (Vec<usize>, usize) = (Vec::new(), 0);
    for (i, &n) in sizes.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if n >= OWN_BUFFER_FLOATS {
            out.push(vec![i]);
            continue;
        }
        if packing.1 + n > BUCKET_FLOATS {
            out.push(std::mem::take(&mut packing.0));
            packing.1 = 0;
        }
        packing.0.push(i);
        packing.1 += n;
    }
    if !packing.0.is_empty() {
        out.push(packing.0);
    }
    out
}

/// One parameter's local gradient, flattened.
struct Entry {
    numel: usize,
    grad: Option<Tensor<1>>,
}

impl Entry {
    /// The gradient's values (its buffer moves out of the tensor when the tensor holds the only
    /// reference), or zeros when this rank has none.
    fn local_values(&mut self) -> Vec<f32> {
        match self.grad.take() {
            Some(g) => g
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 gradient"),
            None => vec![0.0; self.numel],
        }
    }
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

/// Registers the reduced gradients, in the model's parameter order.
struct Put<I> {
    grads: GradientsParams,
    values: I,
    device: Option<Device>,
}

impl<I: Iterator<Item = Option<Vec<f32>>>> ModuleVisitor for Put<I> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(values) = self.values.next().flatten() {
            let device = self
                .device
                .clone()
                .unwrap_or_else(|| param.val().inner().device());
            let data = TensorData::new(values, param.shape());
            self.grads
                .register::<D>(param.id, Tensor::from_data(data, &device));
        }
    }
}

/// A 64-bit hash of every parameter's bytes, in the model's order (eight bytes at a time,
/// each word mixed in by a multiply and rotate: fast enough for 100 M parameters).
pub(crate) fn parameter_hash<M: Module>(model: &M) -> u64 {
    struct Hash(u64);
    impl ModuleVisitor for Hash {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data();
            let bytes = data.as_bytes();
            let mut words = bytes.chunks_exact(8);
            for w in &mut words {
                let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
                self.0 = (self.0 ^ w)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(29);
            }
            self.0 = crate::rng::fnv1a(words.remainder().iter().copied(), self.0);
        }
    }
    let mut h = Hash(crate::rng::FNV_OFFSET);
    model.visit(&mut h);
    crate::rng::splitmix64(h.0)
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
    use crate::model::layers::Linear;
    use crate::runtime::{training_device, DeviceKind};

    /// Two ranks, the other one a copy of this one: every sum is twice this rank's values;
    /// `hashes` is what gathering a hash returns.
    struct Twin {
        hashes: Vec<u64>,
    }

    impl Collective for Twin {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            2
        }
        fn all_reduce_sum(&self, values: &[f32]) -> Vec<f32> {
            values.iter().map(|v| 2.0 * v).collect()
        }
        fn all_reduce_f64(&self, values: &mut [f64]) {
            values.iter_mut().for_each(|v| *v *= 2.0);
        }
        fn all_gather_u64(&self, _: u64) -> Vec<u64> {
            self.hashes.clone()
        }
        fn barrier(&self) {}
        fn abort(&self, code: i32) -> ! {
            panic!("abort {code}")
        }
    }

    #[test]
    fn gradients_come_back_summed_over_the_ranks() {
        let device = training_device(DeviceKind::Cpu).unwrap();
        let model = Linear::new(300, 400, 0.02, &device);
        let x = Tensor::<2>::random([5, 300], burn::tensor::Distribution::Default, &device);
        let loss = model.forward(x).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let local: Vec<Vec<f32>> = [
            grads.get::<2>(model.weight.id).unwrap().into_data(),
            grads.get::<1>(model.bias.id).unwrap().into_data(),
        ]
        .into_iter()
        .map(|d| d.convert::<f32>().try_to_vec::<f32>().unwrap())
        .collect();
        let counters = Counters {
            weight: 5.0,
            loss_sum: 1.5,
            tokens: 40.0,
            examples: 5.0,
            interrupted: 0.0,
        };
        let twin = Twin { hashes: vec![] };
        let (reduced, summed) = all_reduce(&twin, &model, grads, counters);
        assert_eq!(
            (
                summed.weight,
                summed.loss_sum,
                summed.tokens,
                summed.examples
            ),
            (10.0, 3.0, 80.0, 10.0)
        );
        let weight: Vec<f32> = reduced
            .get::<2>(model.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let bias: Vec<f32> = reduced
            .get::<1>(model.bias.id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(
            weight.len(),
            120_000,
            "a large gradient, reduced from its own buffer"
        );
        for (got, want) in [(&weight, &local[0]), (&bias, &local[1])] {
            assert!(got
                .iter()
                .zip(want)
                .all(|(g, w)| (g - 2.0 * w).abs() <= 1e-6 * w.abs().max(1.0)));
        }
    }

    #[test]
    fn diverged_parameters_stop_the_run_naming_each_ranks_hash() {
        let device = training_device(DeviceKind::Cpu).unwrap();
        let model = Linear::new(3, 2, 0.02, &device);
        let same = Twin { hashes: vec![7, 7] };
        assert!(check_parameters(&same, &model, 10).is_ok());
        let other = Twin { hashes: vec![7, 8] };
        let err = check_parameters(&other, &model, 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("diverged at step 10"), "{err}");
        assert!(
            err.contains("rank 0 0000000000000007") && err.contains("rank 1 0000000000000008"),
            "{err}"
        );
    }

    #[test]
    fn large_gradients_go_alone_and_small_ones_are_packed_in_order() {
        let big = OWN_BUFFER_FLOATS;
        assert_eq!(
            buckets(&[10, 20, big, 0, 30, 40, big * 2]),
            vec![vec![2], vec![6], vec![0, 1, 4, 5]]
        );
        // Small gradients fill a bucket up to BUCKET_FLOATS, then start the next.
        let small = big - 1;
        let per_bucket = BUCKET_FLOATS / small;
        let packed = buckets(&vec![small; per_bucket + 1]);
        assert_eq!(packed.len(), 2);
        assert_eq!(
            (packed[0].len(), &packed[1][..]),
            (per_bucket, &[per_bucket][..])
        );
        assert!(buckets(&[0, 0]).is_empty());
    }

    #[test]
    fn local_values_are_taken_once_then_zero() {
        let device = crate::runtime::cpu();
        let t = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, -2.0], [2]), &device);
        let mut e = Entry {
            numel: 2,
            grad: Some(t),
        };
        assert_eq!(e.local_values(), [1.0, -2.0]);
        assert_eq!(e.local_values(), [0.0, 0.0], "taken: none left");
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
