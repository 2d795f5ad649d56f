//! Linear layers whose weight is converted once for inference on the CPU (`--precision int8`,
//! `--precision bf16`): the conversion ([`PackedWeight::pack`]) runs on a layer's first product
//! and is kept beside the fp32 weight; each later product converts only the activations. Taken
//! only for untracked f32 tensors of the `flex` backend, so training (tracked tensors) and other
//! backends never come here.

use super::tensor::{dims, tensor, values};
use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind};
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;
use std::sync::{Arc, RwLock};

/// A weight `W` (`n × k`, rows are output channels) in a kernel's own format.
pub trait PackedWeight: Sized {
    /// Converts `w` (`n × k`, row-major).
    fn pack(w: &[f32], n: usize, k: usize) -> Self;
    /// Output channels (`n`).
    fn outputs(&self) -> usize;
    /// `x Wᵀ (+ b)` for `rows` rows of `x` (`rows × k`), on all cores.
    fn product(&self, x: &[f32], rows: usize, bias: Option<&[f32]>) -> Vec<f32>;
}

/// The CPU tensor behind `t` when it is an untracked f32 tensor of the `flex` backend.
fn untracked_cpu_f32<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    match t.clone().into_dispatch() {
        DispatchTensor {
            kind: DispatchTensorKind::Flex(BackendTensor::Float(t)),
            autodiff: DispatchAutodiffContext::Disabled,
        } if t.dtype() == DType::F32 => Some(t),
        _ => None,
    }
}

/// A layer's weight converted for one kernel: made on the first product, made again when the
/// weight has changed (a training run's development evaluations between optimizer steps).
/// It keeps the fp32 tensor it was made from, so "changed" is "another buffer": while held, that
/// buffer can neither be updated in place (it is shared) nor freed and its address reused.
pub struct Converted<P> {
    slot: RwLock<Option<(FlexTensor, Arc<P>)>>,
}

impl<P> Default for Converted<P> {
    fn default() -> Self {
        Converted {
            slot: RwLock::new(None),
        }
    }
}

impl<P> std::fmt::Debug for Converted<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Converted")
    }
}

/// Whether `a` and `b` are the same view of the same buffer.
fn same(a: &FlexTensor, b: &FlexTensor) -> bool {
    std::ptr::eq(a.bytes().as_ptr(), b.bytes().as_ptr()) && a.layout() == b.layout()
}

impl<P: PackedWeight> Converted<P> {
    /// `x Wᵀ (+ b)` for `x` `[rows, k]` by `weight`'s converted copy, when `x`, `weight` (and
    /// `b`) are untracked f32 CPU tensors; `None` otherwise (the caller runs the general
    /// product: training never converts).
    pub fn linear(
        &self,
        weight: &Tensor<2>,
        x: &Tensor<2>,
        bias: Option<&Tensor<1>>,
    ) -> Option<Tensor<2>> {
        let xt = untracked_cpu_f32(x)?;
        let b = match bias {
            Some(b) => Some(untracked_cpu_f32(b)?),
            None => None,
        };
        let w = self.get(&untracked_cpu_f32(weight)?);
        let rows = dims(&xt)[0];
        let y = w.product(
            &values::<f32>(&xt),
            rows,
            b.as_ref().map(|b| values::<f32>(b)).as_deref(),
        );
        Some(Tensor::from_dispatch(DispatchTensor {
            kind: DispatchTensorKind::Flex(BackendTensor::Float(tensor(
                y,
                vec![rows, w.outputs()],
            ))),
            autodiff: DispatchAutodiffContext::Disabled,
        }))
    }

    /// The converted copy of `w`, made now unless the slot holds `w`'s.
    fn get(&self, w: &FlexTensor) -> Arc<P> {
        let held = self.slot.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = held.as_ref().filter(|(source, _)| same(source, w)) {
            return p.clone();
        }
        drop(held);
        let [n, k] = [dims(w)[0], dims(w)[1]];
        let p = Arc::new(P::pack(&values::<f32>(w), n, k));
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Some((w.clone(), p.clone()));
        p
    }
}

/// The mask of a 16-lane store that writes the first `remaining` lanes (all 16 when at least 16
/// remain): the kernels' last block of channels.
pub(crate) fn lanes_below(remaining: usize) -> u16 {
    if remaining >= 16 {
        u16::MAX
    } else {
        (1u16 << remaining) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{bf16::PackedBf16, int8::PackedInt8};

    fn takes_the_path_only_when_untracked_f32_on_the_cpu<P: PackedWeight>() {
        let device = burn::tensor::Device::default();
        let w = Tensor::<2>::from_data([[1.0f32, -2.0], [0.5, 0.25], [0.0, 3.0]], &device);
        let x = Tensor::<2>::from_data([[1.0f32, 2.0]], &device);
        let converted = Converted::<P>::default();
        assert!(untracked_cpu_f32(&x).is_some());
        let y = converted.linear(&w, &x, None).expect("untracked");
        let y: Vec<f32> = y.into_data().try_to_vec().unwrap();
        for (got, want) in y.iter().zip([-3.0, 1.0, 6.0]) {
            assert!((got - want).abs() < 0.05, "{got} vs {want}");
        }
        let x64 = x.clone().cast(DType::F64);
        assert!(converted.linear(&w, &x64, None).is_none());
        let tracked = Tensor::<2>::from_data([[1.0f32, 2.0]], &device.clone().autodiff());
        assert!(untracked_cpu_f32(&tracked).is_none());
        assert!(converted.linear(&w, &tracked, None).is_none());
        // A changed weight (a new buffer, as after an optimizer step) is converted again; the
        // same one is not.
        let first = converted.get(&untracked_cpu_f32(&w).unwrap());
        let again = converted.get(&untracked_cpu_f32(&w.clone()).unwrap());
        assert!(Arc::ptr_eq(&first, &again));
        let w2 = w.clone() * 2.0;
        let y = converted.linear(&w2, &x, None).expect("untracked");
        let y: Vec<f32> = y.into_data().try_to_vec().unwrap();
        for (got, want) in y.iter().zip([-6.0, 2.0, 12.0]) {
            assert!((got - want).abs() < 0.1, "{got} vs {want}");
        }
    }

    #[test]
    fn a_converted_weight_serves_untracked_f32_cpu_inputs_and_follows_its_weight() {
        takes_the_path_only_when_untracked_f32_on_the_cpu::<PackedInt8>();
        takes_the_path_only_when_untracked_f32_on_the_cpu::<PackedBf16>();
    }
}

/// What the kernels' rough timings (`kernels::int8::timing`, `kernels::bf16::timing`) share.
#[cfg(test)]
pub(crate) mod timing {
    use super::super::gemm::{matmul_all_cores, Mat};

    /// Inputs `x` (`rows × k`) and a weight (`n × k`) of varied values.
    pub fn operands(rows: usize, k: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
        let x = (0..rows * k)
            .map(|i| ((i * 31 % 97) as f32 - 48.0) / 50.0)
            .collect();
        let w = (0..n * k)
            .map(|i| ((i * 17 % 89) as f32 - 44.0) / 500.0)
            .collect();
        (x, w)
    }

    /// Seconds per call of `f`, the mean of 10 after one warm-up.
    pub fn seconds(f: &mut dyn FnMut()) -> f64 {
        f();
        let t = std::time::Instant::now();
        for _ in 0..10 {
            f();
        }
        t.elapsed().as_secs_f64() / 10.0
    }

    /// Seconds of the fp32 product `x Wᵀ` on all cores, and its GFLOP.
    pub fn fp32(x: &[f32], w: &[f32], rows: usize, k: usize, n: usize) -> (f64, f64) {
        let mut out = vec![0f32; rows * n];
        let (xm, wm) = (Mat::rows(x, rows, k), Mat::rows(w, n, k).t());
        let s = seconds(&mut || matmul_all_cores(&mut out, xm, wm, 1.0, false));
        (s, 2.0 * (rows * k * n) as f64 / 1e9)
    }
}
