//! Softmax cross-entropy over a large vocabulary, mean over rows, fused: the forward pass reads
//! the logits twice (max, then the sum of exponentials, in cache) and keeps only one log-sum-exp
//! per row; the backward pass writes `softmax - onehot` in one sweep. The composite version
//! materialises log-softmax and several temporaries of the full `[rows, vocab]` size.

use super::math::{max, simd, sum_map, FastMath};
use super::tensor::{int_values, tensor, values, with_real};
use super::{use_fused, FusedOps};
use burn::backend::{tensor::FloatTensor, tensor::IntTensor, Autodiff, Dispatch, Flex};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Mean of `-log softmax(logits)[target]` over rows; `logits` `[rows, classes]`, `targets` `[rows]`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    if !use_fused(&logits, &[]) {
        return cross_entropy_composite(logits, targets);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_cross_entropy(
        logits.into_dispatch(),
        targets.into_dispatch(),
    ))
}

/// The composite twin.
pub fn cross_entropy_composite(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let rows = targets.dims()[0];
    let picked = log_softmax(logits, 1).gather(1, targets.reshape([rows, 1]));
    picked.mean().neg()
}

const ROWS_PER_TASK: usize = 4;

simd! {
    fn lse_rows<T: FastMath>(logits: &[T], width: usize, lse: &mut [T]) {
        for (row, out) in logits.chunks_exact(width).zip(lse.iter_mut()) {
            let m = max(row);
            *out = m + sum_map(row, |x| (x - m).fexp()).ln();
        }
    }
}

simd! {
    fn grad_rows<T: FastMath>(logits: &[T], width: usize, lse: &[T], targets: &[usize], scale: T, out: &mut [T]) {
        for (((row, o), &l), &t) in logits.chunks_exact(width).zip(out.chunks_exact_mut(width)).zip(lse).zip(targets) {
            for (o, &x) in o.iter_mut().zip(row) {
                *o = scale * (x - l).fexp();
            }
            o[t] = o[t] - scale;
        }
    }
}

/// (mean loss, per-row log-sum-exp).
fn forward_kernel<T: FastMath>(logits: &[T], targets: &[usize]) -> (T, Vec<T>) {
    let rows = targets.len();
    let width = logits.len() / rows;
    let mut lse = vec![T::zero(); rows];
    lse.par_chunks_mut(ROWS_PER_TASK)
        .zip(logits.par_chunks(width * ROWS_PER_TASK))
        .for_each(|(lse, logits)| lse_rows(logits, width, lse));
    let total = lse
        .iter()
        .zip(targets)
        .enumerate()
        .fold(T::zero(), |s, (r, (&l, &t))| s + l - logits[r * width + t]);
    (total / T::from(rows).unwrap(), lse)
}

fn backward_kernel<T: FastMath>(logits: &[T], targets: &[usize], lse: &[T], grad: T) -> Vec<T> {
    let rows = targets.len();
    let width = logits.len() / rows;
    let scale = grad / T::from(rows).unwrap();
    let mut out = vec![T::zero(); logits.len()];
    out.par_chunks_mut(width * ROWS_PER_TASK)
        .zip(logits.par_chunks(width * ROWS_PER_TASK))
        .zip(
            lse.par_chunks(ROWS_PER_TASK)
                .zip(targets.par_chunks(ROWS_PER_TASK)),
        )
        .for_each(|((out, logits), (lse, targets))| {
            grad_rows(logits, width, lse, targets, scale, out)
        });
    out
}

/// Target indices, checked against the number of classes.
fn checked_targets(targets: &FlexTensor, classes: usize) -> Vec<usize> {
    let t = int_values(targets);
    if let Some(bad) = t.iter().find(|&&t| t >= classes) {
        panic!("cross_entropy: target {bad} is outside the {classes} classes");
    }
    t
}

fn forward(logits: &FlexTensor, targets: &[usize]) -> (FlexTensor, FlexTensor) {
    with_real!(logits.dtype(), T => {
        let (loss, lse) = forward_kernel::<T>(&values(logits), targets);
        (tensor(vec![loss], vec![1]), tensor(lse, vec![targets.len()]))
    })
}

pub(super) fn primal(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
    let targets = checked_targets(&targets, logits.layout().shape()[1]);
    forward(&logits, &targets).0
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    /// (logits, targets, log-sum-exp per row)
    type State = (FlexTensor, Vec<usize>, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (logits, targets, lse) = ops.state;
        if let Some(node) = node {
            let shape = logits.layout().shape().to_vec();
            let d = with_real!(logits.dtype(), T => {
                let g = values::<T>(&grad)[0];
                tensor(backward_kernel::<T>(&values(&logits), &targets, &values(&lse), g), shape)
            });
            grads.register::<Flex>(node.id, d);
        }
    }
}

pub(super) fn autodiff<C: CheckpointStrategy>(
    logits: FloatTensor<Autodiff<Flex, C>>,
    targets: IntTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = CrossEntropyBackward
        .prepare::<C>([logits.node()])
        .compute_bound();
    let logits = logits.into_primitive();
    let targets = checked_targets(&targets, logits.layout().shape()[1]);
    let (loss, lse) = forward(&logits, &targets);
    match prep.stateful() {
        OpsKind::Tracked(prep) => prep.finish((logits, targets, lse), loss),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    }
}
