//! Mixed precision, as PyTorch's autocast does it: with bf16, matrix products take bf16
//! operands (the GPU accumulates them in fp32) and return fp32; parameters (the fp32 master
//! weights the optimizer updates and checkpoints store), LayerNorm, softmax and the losses stay
//! fp32. One process-wide switch, set from `--precision` before a model runs; the fused CPU
//! kernels are fp32 kernels, so bf16 runs their composite twins.

use burn::tensor::{DType, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

/// The precision of matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// fp32 everywhere.
    Fp32,
    /// bf16 operands for matrix products, fp32 for the rest.
    Bf16,
}

static BF16: AtomicBool = AtomicBool::new(false);

/// Sets the precision of every later matrix product (all threads).
pub fn set_precision(p: Precision) {
    BF16.store(p == Precision::Bf16, Ordering::SeqCst);
}

pub fn precision() -> Precision {
    if BF16.load(Ordering::SeqCst) {
        Precision::Bf16
    } else {
        Precision::Fp32
    }
}

/// `a · b` in the current precision; the result has `a`'s dtype.
pub fn product<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    match precision() {
        Precision::Fp32 => a.matmul(b),
        Precision::Bf16 => {
            let dtype = a.dtype();
            a.cast(DType::BF16).matmul(b.cast(DType::BF16)).cast(dtype)
        }
    }
}
