//! Dropout whose masks are a pure function of a seed and the element's index, so that the
//! backward pass regenerates them instead of storing them, and a resumed run draws exactly the
//! masks the uninterrupted one would have. Seeds come from a per-thread stream that the trainer
//! sets at every step ([`seed_dropout`]).
//!
//! Data-parallel training splits a global batch into row shards, one per rank. A mask element is
//! keyed by its index in the *global* batch ([`set_dropout_rows`] says which rows the calling
//! thread holds), so every rank draws the masks one process would have drawn for those rows.

use super::math::simd;
use super::tensor::{dims, tensor, values, with_real, Real};
use super::{use_fused, FusedOps};
use crate::rng::splitmix64 as splitmix;
use burn::backend::{tensor::FloatTensor, Autodiff, Dispatch, Flex};
use burn::nn::Dropout;
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use num_traits::Zero;
use rayon::prelude::*;
use std::cell::Cell;

thread_local! {
    /// Counter of the calling thread's dropout-mask stream.
    static SEED: Cell<u64> = const { Cell::new(0x5EED) };
    /// The calling thread's rows of the global batch: (first row, rows); rows 0: the whole batch.
    static ROWS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Says that the calling thread's batches are rows `first..first + rows` of a larger global
/// batch (the trainer does before each shard), so masks are keyed by global position.
pub fn set_dropout_rows(first: usize, rows: usize) {
    ROWS.with(|r| r.set((first as u64, rows as u64)));
}

/// The global index of element 0 of a tensor of `numel` elements whose first dimension runs
/// over the thread's rows (0 when the thread holds the whole batch).
pub(super) fn row_offset(numel: usize) -> u64 {
    let (first, rows) = ROWS.with(Cell::get);
    if rows == 0 || first == 0 {
        return 0;
    }
    first * (numel as u64 / rows)
}

/// Seeds the calling thread's dropout masks (the trainer does at every step).
pub fn seed_dropout(seed: u64) {
    SEED.with(|s| s.set(seed));
}

/// The seed the next dropout mask will be drawn from: with [`seed_dropout`], a forward pass can
/// be repeated with the same masks (the gradient cache recomputes its mini-batches so).
pub fn dropout_seed() -> u64 {
    SEED.with(Cell::get)
}

pub(super) fn next_seed() -> u64 {
    SEED.with(|s| {
        let n = s.get();
        s.set(n.wrapping_add(1));
        splitmix(n)
    })
}

/// Whether element `index` of the call seeded `seed` survives dropout with probability `p`.
#[inline(always)]
pub(super) fn keep(seed: u64, index: u64, p: f64) -> bool {
    ((splitmix(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93)) >> 11) as f64
        / (1u64 << 53) as f64)
        >= p
}

/// Whether `dropout` is active for `x`: training, with a positive probability, on an autodiff
/// device (inference never drops).
pub(super) fn active<const D: usize>(dropout: &Dropout, x: &Tensor<D>) -> bool {
    dropout.prob > 0.0 && dropout.training.is_enabled() && x.device().is_autodiff()
}

/// Dropout of `x` with `dropout`'s probability when training; the identity otherwise.
pub fn dropout<const D: usize>(x: Tensor<D>, dropout: &Dropout) -> Tensor<D> {
    if !active(dropout, &x) {
        return x;
    }
    if !use_fused(&x, &[]) {
        return dropout.forward(x);
    }
    let offset = row_offset(x.shape().num_elements());
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_dropout(
        x.into_dispatch(),
        dropout.prob,
        next_seed(),
        offset,
    ))
}

const CHUNK: usize = 1 << 14;

simd! {
    fn apply_rows<T: Real>(x: &[T], start: u64, seed: u64, p: f64, out: &mut [T]) {
        let scale = T::from(1.0 / (1.0 - p)).unwrap();
        for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
            *o = if keep(seed, start + i as u64, p) { v * scale } else { T::zero() };
        }
    }
}

/// `x ⊙ mask / (1 - p)`, element `i` keyed by `offset + i`; the same function serves the
/// backward pass (on the gradient).
fn apply(x: &FlexTensor, p: f64, seed: u64, offset: u64) -> FlexTensor {
    with_real!(x.dtype(), T => {
        let v = values::<T>(x);
        let mut out = vec![T::zero(); v.len()];
        out.par_chunks_mut(CHUNK)
            .zip(v.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(i, (o, x))| apply_rows(x, offset + (i * CHUNK) as u64, seed, p, o));
        tensor(out, dims(x))
    })
}

pub(super) fn primal(x: FlexTensor, p: f64, seed: u64, offset: u64) -> FlexTensor {
    apply(&x, p, seed, offset)
}

#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    /// (probability, seed, offset)
    type State = (f64, u64, u64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (p, seed, offset) = ops.state;
        if let Some(node) = node {
            grads.register::<Flex>(node.id, apply(&grad, p, seed, offset));
        }
    }
}

pub(super) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    p: f64,
    seed: u64,
    offset: u64,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = DropoutBackward.prepare::<C>([x.node()]).compute_bound();
    let y = apply(x.primitive(), p, seed, offset);
    match prep.stateful() {
        OpsKind::Tracked(prep) => prep.finish((p, seed, offset), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
