//! LayerNorm over the last dimension, fused: one pass forward (saving mean and 1/std per row),
//! one pass backward for the input plus one reduction for weight and bias.

use super::math::{simd, sum_in_order, sum_map, FastMath};
use super::tensor::{dims, map_rows_in_place, register, tensor, values, with_real};
use super::{use_fused, FusedOps};
use burn::backend::{tensor::FloatTensor, Autodiff, Dispatch, Flex};
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// LayerNorm over the last dimension (fused on the CPU backend).
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    if !use_fused(&x, &[weight.dtype(), bias.dtype()]) {
        return layer_norm_composite(x, weight, bias, eps);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_layer_norm(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        eps,
    ))
}

/// The composite twin: the reference for the fused kernel and the GPU path.
pub fn layer_norm_composite<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    let mean = x.clone().mean_dim(D - 1);
    let centered = x - mean;
    let var = centered.clone().square().mean_dim(D - 1);
    let normed = centered / (var + eps).sqrt();
    normed * weight.unsqueeze::<D>() + bias.unsqueeze::<D>()
}

/// Rows per parallel task: large enough to amortise scheduling, small enough to balance.
const ROWS_PER_TASK: usize = 16;

simd! {
    fn forward_rows<T: FastMath>(x: &[T], w: &[T], b: &[T], eps: T, y: &mut [T], mean: &mut [T], rstd: &mut [T]) {
        let width = w.len();
        let n = T::from(width).unwrap();
        for (((row, y), m), r) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)).zip(mean.iter_mut()).zip(rstd.iter_mut()) {
            let mu = sum_map(row, |v| v) / n;
            let var = sum_map(row, |v| (v - mu) * (v - mu)) / n;
            let rs = T::one() / (var + eps).sqrt();
            for i in 0..width {
                y[i] = (row[i] - mu) * rs * w[i] + b[i];
            }
            *m = mu;
            *r = rs;
        }
    }
}

simd! {
    /// dx = rstd (g w - mean(g w) - x̂ mean(g w x̂)); accumulates dweight and dbias.
    fn backward_rows<T: FastMath>(dy: &[T], x: &[T], w: &[T], mean: &[T], rstd: &[T], dx: &mut [T], dw: &mut [T], db: &mut [T]) {
        let width = w.len();
        let n = T::from(width).unwrap();
        for ((((xr, gr), d), &m), &rs) in x.chunks_exact(width).zip(dy.chunks_exact(width)).zip(dx.chunks_exact_mut(width)).zip(mean).zip(rstd) {
            // d holds x̂ until the end of the row.
            for i in 0..width {
                d[i] = (xr[i] - m) * rs;
            }
            let (mut sum_gw, mut sum_gwx) = (T::zero(), T::zero());
            for i in 0..width {
                let gw = gr[i] * w[i];
                sum_gw = sum_gw + gw;
                sum_gwx = sum_gwx + gw * d[i];
                dw[i] = dw[i] + gr[i] * d[i];
                db[i] = db[i] + gr[i];
            }
            let (mean_gw, mean_gwx) = (sum_gw / n, sum_gwx / n);
            for i in 0..width {
                d[i] = rs * (gr[i] * w[i] - mean_gw - d[i] * mean_gwx);
            }
        }
    }
}

/// Returns (y, mean, rstd) for x viewed as [rows, width].
fn forward_kernel<T: FastMath>(x: &[T], w: &[T], b: &[T], eps: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    let width = w.len();
    let rows = x.len() / width;
    let eps = T::from(eps).unwrap();
    let mut y = vec![T::zero(); x.len()];
    let mut mean = vec![T::zero(); rows];
    let mut rstd = vec![T::zero(); rows];
    y.par_chunks_mut(width * ROWS_PER_TASK)
        .zip(x.par_chunks(width * ROWS_PER_TASK))
        .zip(
            mean.par_chunks_mut(ROWS_PER_TASK)
                .zip(rstd.par_chunks_mut(ROWS_PER_TASK)),
        )
        .for_each(|((y, x), (mean, rstd))| forward_rows(x, w, b, eps, y, mean, rstd));
    (y, mean, rstd)
}

/// Returns (dx, dweight, dbias).
fn backward_kernel<T: FastMath>(
    dy: &[T],
    x: &[T],
    w: &[T],
    mean: &[T],
    rstd: &[T],
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let width = w.len();
    let mut dx = vec![T::zero(); x.len()];
    let chunk = width * ROWS_PER_TASK;
    let partials: Vec<(Vec<T>, Vec<T>)> = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk).zip(dy.par_chunks(chunk)))
        .zip(
            mean.par_chunks(ROWS_PER_TASK)
                .zip(rstd.par_chunks(ROWS_PER_TASK)),
        )
        .map(|((dx, (x, dy)), (mean, rstd))| {
            let (mut dw, mut db) = (vec![T::zero(); width], vec![T::zero(); width]);
            backward_rows(dy, x, w, mean, rstd, dx, &mut dw, &mut db);
            (dw, db)
        })
        .collect();
    let (dw, db): (Vec<Vec<T>>, Vec<Vec<T>>) = partials.into_iter().unzip();
    (dx, sum_in_order(dw), sum_in_order(db))
}

fn forward(
    x: &FlexTensor,
    w: &FlexTensor,
    b: &FlexTensor,
    eps: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = dims(x);
    let rows = shape[..shape.len() - 1].iter().product::<usize>();
    with_real!(x.dtype(), T => {
        let (y, mean, rstd) = forward_kernel::<T>(&values(x), &values(w), &values(b), eps);
        (tensor(y, shape), tensor(mean, vec![rows]), tensor(rstd, vec![rows]))
    })
}

/// Without autodiff, overwrites `x` (a temporary: the residual sum) where it can.
pub(super) fn primal(
    mut x: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    eps: f64,
) -> FlexTensor {
    let done = with_real!(x.dtype(), T => {
        let (w, b) = (values::<T>(&weight), values::<T>(&bias));
        let eps = <T as num_traits::NumCast>::from(eps).unwrap();
        map_rows_in_place::<T>(&mut x, w.len(), ROWS_PER_TASK, |row, out| {
            // This row's statistics (kept only for a backward pass, which inference has not).
            let zero = <T as num_traits::Zero>::zero();
            let (mut mean, mut rstd) = ([zero], [zero]);
            forward_rows(row, &w, &b, eps, out, &mut mean, &mut rstd)
        })
    });
    if done {
        x
    } else {
        forward(&x, &weight, &bias, eps).0
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    /// (x, weight, mean, rstd)
    type State = (FlexTensor, FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, w, mean, rstd) = ops.state;
        let width = dims(&w)[0];
        let (dx, dw, db) = with_real!(x.dtype(), T => {
            let (dx, dw, db) = backward_kernel::<T>(&values(&grad), &values(&x), &values(&w), &values(&mean), &values(&rstd));
            (tensor(dx, dims(&x)), tensor(dw, vec![width]), tensor(db, vec![width]))
        });
        register(grads, parents, [dx, dw, db]);
    }
}

pub(super) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
    eps: f64,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = LayerNormBackward
        .prepare::<C>([x.node(), weight.node(), bias.node()])
        .compute_bound();
    let (xp, wp, bp) = (
        x.into_primitive(),
        weight.into_primitive(),
        bias.into_primitive(),
    );
    let (y, mean, rstd) = forward(&xp, &wp, &bp, eps);
    match prep.stateful() {
        OpsKind::Tracked(prep) => prep.finish((xp, wp, mean, rstd), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
