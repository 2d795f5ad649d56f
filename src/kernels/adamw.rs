//! One AdamW update of a parameter in a single pass over parameter, gradient and both moments
//! (the composite version makes a dozen passes and as many temporaries).

use super::math::simd;
use super::tensor::{dims, tensor, values, with_real, Real};
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch, Flex};
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Hyper-parameters of one update (bias corrections included).
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// The update's number, from 1 (for the bias corrections).
    pub t: u64,
    /// Multiplies the gradient first (global-norm clipping).
    pub grad_scale: f64,
}

/// Parameter updates on the CPU backend (no autodiff: optimisers work on plain tensors).
#[backend_extension(Flex)]
pub(crate) trait OptimOps: Backend {
    fn fused_adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `(param, m, v)` after one AdamW step; all four inputs have the same shape, without autodiff.
pub fn adamw<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    step: AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let dtype = param.dtype();
    let same = [grad.dtype(), m.dtype(), v.dtype()]
        .iter()
        .all(|d| *d == dtype);
    let flex = matches!(
        param.device().as_dispatch().clone().inner(),
        burn::backend::DispatchDevice::Flex(_)
    );
    if !(super::fused_enabled() && flex && same && matches!(dtype, DType::F32 | DType::F64)) {
        return adamw_composite(param, grad, m, v, step);
    }
    let (p, m, v) = <Dispatch as OptimOps>::fused_adamw(
        param.into_dispatch(),
        grad.into_dispatch(),
        m.into_dispatch(),
        v.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}

/// The composite twin (PyTorch's AdamW: decoupled decay, bias-corrected moments).
pub fn adamw_composite<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    s: AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let g = grad * s.grad_scale;
    let m = m * s.beta1 + g.clone() * (1.0 - s.beta1);
    let v = v * s.beta2 + g.square() * (1.0 - s.beta2);
    let c1 = 1.0 - s.beta1.powi(s.t as i32);
    let c2 = 1.0 - s.beta2.powi(s.t as i32);
    let update = (m.clone() / c1) / ((v.clone() / c2).sqrt() + s.eps);
    let p = param.clone() * (1.0 - s.lr * s.weight_decay) - update * s.lr;
    (p, m, v)
}

const CHUNK: usize = 1 << 14;

simd! {
    /// `k` = [grad scale, β1, 1-β1, β2, 1-β2, lr / (1-β1^t), 1 / sqrt(1-β2^t), ε, 1 - lr·decay].
    fn update<T: Real>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], k: &[T; 9]) {
        let [scale, b1, one_b1, b2, one_b2, step_size, inv_sqrt_c2, eps, keep] = *k;
        for i in 0..p.len() {
            let gi = g[i] * scale;
            m[i] = b1 * m[i] + one_b1 * gi;
            v[i] = b2 * v[i] + one_b2 * gi * gi;
            p[i] = p[i] * keep - step_size * m[i] / (v[i].sqrt() * inv_sqrt_c2 + eps);
        }
    }
}

fn constants<T: Real>(s: &AdamWStep) -> [T; 9] {
    let c = |x: f64| T::from(x).unwrap();
    [
        c(s.grad_scale),
        c(s.beta1),
        c(1.0 - s.beta1),
        c(s.beta2),
        c(1.0 - s.beta2),
        c(s.lr / (1.0 - s.beta1.powi(s.t as i32))),
        c(1.0 / (1.0 - s.beta2.powi(s.t as i32)).sqrt()),
        c(s.eps),
        c(1.0 - s.lr * s.weight_decay),
    ]
}

fn update_all<T: Real>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], k: &[T; 9]) {
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| update(p, g, m, v, k));
}

/// The tensor's elements, writable in place when nothing else shares its storage.
fn exclusive<T: Real>(t: &mut FlexTensor) -> Option<&mut [T]> {
    let n = t.layout().num_elements();
    if !t.is_contiguous() || t.layout().start_offset() != 0 {
        return None;
    }
    t.try_storage_mut::<T>().filter(|s| s.len() == n)
}

impl OptimOps for Flex {
    fn fused_adamw(
        mut param: FlexTensor,
        grad: FlexTensor,
        mut m: FlexTensor,
        mut v: FlexTensor,
        step: AdamWStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        with_real!(param.dtype(), T => {
            let k = constants::<T>(&step);
            let g = values::<T>(&grad);
            // In place when the parameter and moments are not shared (the usual case): no
            // allocation, and no page faults for the large embedding matrices.
            let in_place = match (exclusive::<T>(&mut param), exclusive::<T>(&mut m), exclusive::<T>(&mut v)) {
                (Some(ps), Some(ms), Some(vs)) => {
                    update_all(ps, &g, ms, vs, &k);
                    true
                }
                _ => false,
            };
            if in_place {
                return (param, m, v);
            }
            let shape = dims(&param);
            let (mut p, mut mm, mut vv) = (values::<T>(&param).into_owned(), values::<T>(&m).into_owned(), values::<T>(&v).into_owned());
            update_all(&mut p, &g, &mut mm, &mut vv, &k);
            (tensor(p, shape.clone()), tensor(mm, shape.clone()), tensor(vv, shape))
        })
    }
}
