//! A linear layer `y = x Wᵀ + b` as one kernel: each output row starts as a copy of the bias and
//! the gemm crate accumulates `x Wᵀ` onto it on all cores, so the product writes its output once.
//! (burn's own matmul allocates its output zero-filled, copies that buffer into an aligned one,
//! and the bias is one more pass: together 6–8 % of a training step in `perf`.)
//! With few rows (up to 64: one short text at inference) gemm's own threading splits the
//! product badly and packs all of W on one thread: those products run as one single-threaded
//! gemm per block of 64 output columns (a block of W's contiguous rows), the blocks in parallel,
//! into a transposed output that is then transposed back (4-row products: 9.1 → 2.0 ms for a
//! short request to all-MiniLM-L6-v2; 33 rows 12.7 → 6.6 ms; measured through `positio serve`).
//! Backward: `dx = dy W`, `dW = dyᵀ x`, `db = Σ_rows dy`. Under `--precision bf16` (f32) the
//! two products of each pass run in bf16 ([`super::bf16`]), the bias and its gradient in fp32.

use super::gemm::{matmul_all_cores, Mat};
use super::tensor::{dims, register, tensor, values, with_real, Real};
use super::{use_fused, FusedOps};
use burn::backend::{tensor::FloatTensor, Autodiff, Dispatch, Flex};
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Rows per parallel task of the bias fill and the bias gradient.
const ROWS_PER_TASK: usize = 64;

/// Up to this many rows, the forward product runs as column blocks (above 64 rows, the
/// all-core gemm is faster: 256 rows 25 ms against 38 ms).
const FEW_ROWS: usize = 64;

/// Output columns per parallel task of the few-rows path.
const COLUMNS_PER_TASK: usize = 64;

/// `x Wᵀ (+ b)` for `x` `[rows, in]` and `W` `[out, in]` (fused on the CPU backend).
pub fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    let bias_dtype = bias.as_ref().map_or(x.dtype(), Tensor::dtype);
    if !use_fused(&x, &[weight.dtype(), bias_dtype]) {
        return linear_composite(x, weight, bias);
    }
    // A missing bias is an untracked zero vector: the same kernel, no gradient for it.
    let bias =
        bias.unwrap_or_else(|| Tensor::<1>::zeros([weight.dims()[0]], &x.device()).cast(x.dtype()));
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// The composite twin: the reference for the fused kernel and the GPU path.
pub fn linear_composite(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    let y = super::product(x, weight.transpose());
    match bias {
        Some(b) => y + b.unsqueeze(),
        None => y,
    }
}

fn forward_kernel<T: Real>(x: &[T], w: &[T], b: &[T], rows: usize) -> Vec<T> {
    let (d_out, d_in) = (b.len(), w.len() / b.len().max(1));
    if rows <= FEW_ROWS && d_in > 0 {
        let mut yt = vec![T::zero(); d_out * rows];
        yt.par_chunks_mut(COLUMNS_PER_TASK * rows)
            .zip(w.par_chunks(COLUMNS_PER_TASK * d_in))
            .zip(b.par_chunks(COLUMNS_PER_TASK))
            .for_each(|((yt, w), b)| {
                for (row, &bj) in yt.chunks_mut(rows).zip(b) {
                    row.fill(bj);
                }
                super::gemm::matmul(
                    yt,
                    Mat::rows(w, b.len(), d_in),
                    Mat::rows(x, rows, d_in).t(),
                    T::one(),
                    true,
                );
            });
        return (0..rows * d_out)
            .map(|k| yt[(k % d_out) * rows + k / d_out])
            .collect();
    }
    let mut y: Vec<T> = Vec::with_capacity(rows * d_out);
    y.spare_capacity_mut()
        .par_chunks_mut(d_out * ROWS_PER_TASK)
        .for_each(|chunk| {
            for row in chunk.chunks_mut(d_out) {
                for (o, &v) in row.iter_mut().zip(b) {
                    o.write(v);
                }
            }
        });
    // SAFETY: every one of the rows × d_out elements was written just above.
    unsafe { y.set_len(rows * d_out) };
    matmul_all_cores(
        &mut y,
        Mat::rows(x, rows, d_in),
        Mat::rows(w, d_out, d_in).t(),
        T::one(),
        true,
    );
    y
}

/// Returns (dx, dW, db).
fn backward_kernel<T: Real>(dy: &[T], x: &[T], w: &[T], rows: usize) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (dx, dw) = gradient_products(dy, x, w, rows);
    (dx, dw, bias_gradient(dy, dy.len() / rows.max(1)))
}

/// `(dx, dW) = (dy W, dyᵀ x)` on all cores (bf16's portable kernel runs it on rounded operands).
pub(super) fn gradient_products<T: Real>(
    dy: &[T],
    x: &[T],
    w: &[T],
    rows: usize,
) -> (Vec<T>, Vec<T>) {
    let d_out = dy.len() / rows.max(1);
    let d_in = w.len() / d_out.max(1);
    let mut dx = vec![T::zero(); rows * d_in];
    let dy_m = Mat::rows(dy, rows, d_out);
    matmul_all_cores(&mut dx, dy_m, Mat::rows(w, d_out, d_in), T::one(), false);
    let mut dw = vec![T::zero(); d_out * d_in];
    matmul_all_cores(&mut dw, dy_m.t(), Mat::rows(x, rows, d_in), T::one(), false);
    (dx, dw)
}

/// `db = Σ_rows dy`, in a fixed order.
fn bias_gradient<T: Real>(dy: &[T], d_out: usize) -> Vec<T> {
    let partials: Vec<Vec<T>> = dy
        .par_chunks(d_out * ROWS_PER_TASK)
        .map(|chunk| {
            let mut acc = vec![T::zero(); d_out];
            for row in chunk.chunks_exact(d_out) {
                acc.iter_mut().zip(row).for_each(|(a, &g)| *a = *a + g);
            }
            acc
        })
        .collect();
    super::math::sum_in_order(partials)
}

/// Whether the products run in bf16 ([`super::bf16`]): under `--precision bf16`, for f32.
fn in_bf16(x: &FlexTensor) -> bool {
    super::precision() == super::Precision::Bf16 && x.dtype() == burn::tensor::DType::F32
}

fn forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let rows = dims(x)[0];
    let d_out = dims(w)[0];
    if in_bf16(x) {
        let y = super::bf16::linear_forward(&values(x), &values(w), &values(b), rows);
        return tensor(y, vec![rows, d_out]);
    }
    with_real!(x.dtype(), T => {
        tensor(forward_kernel::<T>(&values(x), &values(w), &values(b), rows), vec![rows, d_out])
    })
}

pub(super) fn primal(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
    forward(&x, &weight, &bias)
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// (x, weight)
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, w) = ops.state;
        let (rows, shape_w) = (dims(&x)[0], dims(&w));
        let (dx, dw, db) = if in_bf16(&x) {
            let dy = values::<f32>(&grad);
            let (dx, dw) = super::bf16::linear_backward(&dy, &values(&x), &values(&w), rows);
            let db = bias_gradient(&dy, shape_w[0]);
            (
                tensor(dx, dims(&x)),
                tensor(dw, shape_w.clone()),
                tensor(db, vec![shape_w[0]]),
            )
        } else {
            with_real!(x.dtype(), T => {
                let (dx, dw, db) =
                    backward_kernel::<T>(&values(&grad), &values(&x), &values(&w), rows);
                (tensor(dx, dims(&x)), tensor(dw, shape_w.clone()), tensor(db, vec![shape_w[0]]))
            })
        };
        register(grads, parents, [dx, dw, db]);
    }
}

pub(super) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = LinearBackward
        .prepare::<C>([x.node(), weight.node(), bias.node()])
        .compute_bound();
    let (xp, wp, bp) = (
        x.into_primitive(),
        weight.into_primitive(),
        bias.into_primitive(),
    );
    let y = forward(&xp, &wp, &bp);
    match prep.stateful() {
        OpsKind::Tracked(prep) => prep.finish((xp, wp), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
