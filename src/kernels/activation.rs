//! Bias addition fused with the feed-forward activation: `act(x + bias)`, one pass forward and
//! one pass backward (plus the bias-gradient reduction), with vectorised erf / exp.

use super::math::{simd, sum_in_order, tanh, FastMath};
use super::tensor::{dims, map_rows_in_place, register, tensor, values, with_real};
use super::{use_fused, FusedOps};
use burn::backend::{tensor::FloatTensor, Autodiff, Dispatch, Flex};
use burn::tensor::activation;
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use num_traits::Zero;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The feed-forward activation (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// Exact GELU, `x * Φ(x)` with the error function (BERT's "gelu").
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
}

/// `act(x + bias)` for `x` `[rows, width]`, `bias` `[width]`.
pub fn bias_activation(x: Tensor<2>, bias: Tensor<1>, act: Activation) -> Tensor<2> {
    if !use_fused(&x, &[bias.dtype()]) {
        return bias_activation_composite(x, bias, act);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_bias_activation(
        x.into_dispatch(),
        bias.into_dispatch(),
        act,
    ))
}

/// The composite twin.
pub fn bias_activation_composite(x: Tensor<2>, bias: Tensor<1>, act: Activation) -> Tensor<2> {
    let x = x + bias.unsqueeze();
    match act {
        Activation::Gelu => activation::gelu(x),
        Activation::GeluTanh => activation::gelu_approximate(x),
        Activation::Relu => activation::relu(x),
    }
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2π), the standard normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// `(act(z), act'(z))` for exact GELU: `z Φ(z)`, derivative `Φ(z) + z φ(z)`.
#[inline(always)]
fn gelu<T: FastMath>(z: T) -> (T, T) {
    let half = T::from(0.5).unwrap();
    let cdf = half * (T::one() + (z * T::from(FRAC_1_SQRT_2).unwrap()).ferf());
    let pdf = T::from(INV_SQRT_2PI).unwrap() * (-half * z * z).fexp();
    (z * cdf, cdf + z * pdf)
}

/// The tanh approximation: `0.5 z (1 + tanh(u))`, `u = sqrt(2/π) (z + 0.044715 z³)`, with
/// `tanh(u) = 1 - 2 / (e^{2u} + 1)` (`math::tanh`).
#[inline(always)]
fn gelu_tanh<T: FastMath>(z: T) -> (T, T) {
    let (half, one) = (T::from(0.5).unwrap(), T::one());
    let c = T::from(0.044_715).unwrap();
    let k = T::from(SQRT_2_OVER_PI).unwrap();
    let u = k * (z + c * z * z * z);
    let t = tanh(u);
    let du = k * (one + T::from(3.0).unwrap() * c * z * z);
    (
        half * z * (one + t),
        half * (one + t) + half * z * (one - t * t) * du,
    )
}

#[inline(always)]
fn relu<T: FastMath>(z: T) -> (T, T) {
    let positive = z > T::zero();
    (
        z.max(T::zero()),
        if positive { T::one() } else { T::zero() },
    )
}

/// Runs `$body` with `$f` bound to the activation function of `$act` (one loop per function,
/// so each compiles to straight-line SIMD code).
macro_rules! with_activation {
    ($act:expr, $f:ident => $body:expr) => {
        match $act {
            Activation::Gelu => {
                let $f = gelu::<T>;
                $body
            }
            Activation::GeluTanh => {
                let $f = gelu_tanh::<T>;
                $body
            }
            Activation::Relu => {
                let $f = relu::<T>;
                $body
            }
        }
    };
}

simd! {
    fn forward_rows<T: FastMath>(x: &[T], bias: &[T], act: Activation, out: &mut [T]) {
        let width = bias.len();
        with_activation!(act, f => {
            for (xr, o) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
                for i in 0..width {
                    o[i] = f(xr[i] + bias[i]).0;
                }
            }
        })
    }
}

simd! {
    fn backward_rows<T: FastMath>(x: &[T], bias: &[T], grad: &[T], act: Activation, dx: &mut [T], dbias: &mut [T]) {
        let width = bias.len();
        with_activation!(act, f => {
            for ((xr, gr), d) in x.chunks_exact(width).zip(grad.chunks_exact(width)).zip(dx.chunks_exact_mut(width)) {
                for i in 0..width {
                    d[i] = gr[i] * f(xr[i] + bias[i]).1;
                }
                for i in 0..width {
                    dbias[i] = dbias[i] + d[i];
                }
            }
        })
    }
}

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 32;

fn forward(x: &FlexTensor, bias: &FlexTensor, act: Activation) -> FlexTensor {
    with_real!(x.dtype(), T => {
        let (xv, bv) = (values::<T>(x), values::<T>(bias));
        let width = bv.len();
        let mut out = vec![T::zero(); xv.len()];
        out.par_chunks_mut(width * ROWS_PER_TASK)
            .zip(xv.par_chunks(width * ROWS_PER_TASK))
            .for_each(|(o, x)| forward_rows(x, &bv, act, o));
        tensor(out, dims(x))
    })
}

fn backward(
    x: &FlexTensor,
    bias: &FlexTensor,
    grad: &FlexTensor,
    act: Activation,
) -> (FlexTensor, FlexTensor) {
    with_real!(x.dtype(), T => {
        let (xv, bv, gv) = (values::<T>(x), values::<T>(bias), values::<T>(grad));
        let width = bv.len();
        let mut dx = vec![T::zero(); xv.len()];
        let chunk = width * ROWS_PER_TASK;
        let partials: Vec<Vec<T>> = dx
            .par_chunks_mut(chunk)
            .zip(xv.par_chunks(chunk).zip(gv.par_chunks(chunk)))
            .map(|(d, (x, g))| {
                let mut db = vec![T::zero(); width];
                backward_rows(x, &bv, g, act, d, &mut db);
                db
            })
            .collect();
        (tensor(dx, dims(x)), tensor(sum_in_order(partials), vec![width]))
    })
}

/// Without autodiff, overwrites `x` (a temporary) where it can.
pub(super) fn primal(mut x: FlexTensor, bias: FlexTensor, act: Activation) -> FlexTensor {
    let done = with_real!(x.dtype(), T => {
        let bv = values::<T>(&bias);
        map_rows_in_place::<T>(&mut x, bv.len(), ROWS_PER_TASK, |row, out| {
            forward_rows(row, &bv, act, out)
        })
    });
    if done {
        x
    } else {
        forward(&x, &bias, act)
    }
}

#[derive(Debug)]
struct BiasActivationBackward;

impl Backward<Flex, 2> for BiasActivationBackward {
    /// (x, bias, activation)
    type State = (FlexTensor, FlexTensor, Activation);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, bias, act) = ops.state;
        let (dx, db) = backward(&x, &bias, &grad, act);
        register(grads, parents, [dx, db]);
    }
}

pub(super) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
    act: Activation,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = BiasActivationBackward
        .prepare::<C>([x.node(), bias.node()])
        .compute_bound();
    let (xp, bp) = (x.into_primitive(), bias.into_primitive());
    let y = forward(&xp, &bp, act);
    match prep.stateful() {
        OpsKind::Tracked(prep) => prep.finish((xp, bp, act), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
