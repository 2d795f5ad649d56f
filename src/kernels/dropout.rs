//! Dropout whose masks are a pure function of a seed and the element's index, so that the
//! backward pass regenerates them instead of storing them, and a resumed run draws exactly the
//! masks the uninterrupted one would have. Seeds come from a per-thread stream that the trainer
//! sets at every step ([`seed_dropout`]).
//!
//! How an element is keyed ([`MaskKeys`]): by its row of the *global* batch and its place in
//! the row, `row << 40 | index in row` ([`set_dropout_rows`] says which rows of the global
//! batch the calling thread holds). So a data-parallel rank draws, for its shard, the masks one
//! process draws for those rows, and padding a batch to another length (each rank pads its
//! shard to its own longest example) moves no mask. Runs resumed from checkpoints older than
//! this keying keep the flat keying they started with (the element's flat index).

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
    /// The calling thread's examples of the global batch: (first, count); count 0: flat keys.
    static ROWS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Says that the calling thread's batches are examples `first..first + count` of a global
/// batch (the trainer does before each shard), so that masks are keyed by global row; `count`
/// 0 keys them by flat index instead (runs started before row keying).
pub fn set_dropout_rows(first: usize, count: usize) {
    ROWS.with(|r| r.set((first as u64, count as u64)));
}

/// Whether the calling thread keys masks by row (every run since row keying; not runs resumed
/// from older checkpoints, nor code outside the training loop).
pub fn masks_keyed_by_row() -> bool {
    ROWS.with(Cell::get).1 > 0
}

/// How the elements of one dropout call are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskKeys {
    /// Key rows: `(first_row + row) << 40 | index in row`; else the flat index.
    pub by_row: bool,
    /// The global row of the tensor's first row.
    pub first_row: u64,
}

/// Keys for a tensor whose first dimension has `rows` rows: each of the thread's examples owns
/// `rows / count` consecutive rows (one per example, or one per text of an example), so row
/// `r` is global row `first · rows / count + r`. When `rows` is not a multiple of the examples
/// (a task's mini-batch), rows keep their local index.
pub(super) fn mask_keys(rows: usize) -> MaskKeys {
    let (first, count) = ROWS.with(Cell::get);
    if count == 0 {
        return MaskKeys {
            by_row: false,
            first_row: 0,
        };
    }
    let rows = rows as u64;
    let first_row = if rows.is_multiple_of(count) {
        first * (rows / count)
    } else {
        0
    };
    MaskKeys {
        by_row: true,
        first_row,
    }
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
    let keys = mask_keys(x.dims()[0]);
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_dropout(
        x.into_dispatch(),
        dropout.prob,
        next_seed(),
        keys,
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

/// `x ⊙ mask / (1 - p)`, elements keyed by `keys`; the same function serves the backward pass
/// (on the gradient).
fn apply(x: &FlexTensor, p: f64, seed: u64, keys: MaskKeys) -> FlexTensor {
    let shape = dims(x);
    with_real!(x.dtype(), T => {
        let v = values::<T>(x);
        let mut out = vec![T::zero(); v.len()];
        let rows = shape.first().copied().unwrap_or(1).max(1);
        let row_len = v.len() / rows;
        if !keys.by_row || row_len == 0 {
            out.par_chunks_mut(CHUNK)
                .zip(v.par_chunks(CHUNK))
                .enumerate()
                .for_each(|(i, (o, x))| apply_rows(x, (i * CHUNK) as u64, seed, p, o));
        } else {
            // Whole rows per chunk, each row's keys starting at its global row.
            let per_chunk = row_len * (CHUNK / row_len).max(1);
            out.par_chunks_mut(per_chunk)
                .zip(v.par_chunks(per_chunk))
                .enumerate()
                .for_each(|(i, (o, x))| {
                    let first = (i * per_chunk / row_len) as u64;
                    for (r, (o, x)) in o.chunks_mut(row_len).zip(x.chunks(row_len)).enumerate() {
                        let row = keys.first_row + first + r as u64;
                        apply_rows(x, row << ROW_SHIFT, seed, p, o);
                    }
                });
        }
        tensor(out, shape)
    })
}

/// Bits of a key below its row: the index within a row.
pub(super) const ROW_SHIFT: u32 = 40;

pub(super) fn primal(x: FlexTensor, p: f64, seed: u64, keys: MaskKeys) -> FlexTensor {
    apply(&x, p, seed, keys)
}

#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    /// (probability, seed, keys)
    type State = (f64, u64, MaskKeys);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (p, seed, keys) = ops.state;
        if let Some(node) = node {
            grads.register::<Flex>(node.id, apply(&grad, p, seed, keys));
        }
    }
}

pub(super) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    p: f64,
    seed: u64,
    keys: MaskKeys,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = DropoutBackward.prepare::<C>([x.node()]).compute_bound();
    let y = apply(x.primitive(), p, seed, keys);
    match prep.stateful() {
        OpsKind::Tracked(prep) => prep.finish((p, seed, keys), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
