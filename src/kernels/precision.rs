//! The precision of matrix products, one process-wide switch set from `--precision` before a
//! model runs.
//! - bf16, as PyTorch's autocast does it: matrix products take bf16 operands (accumulated in
//!   fp32) and return fp32; parameters (the fp32 master weights the optimizer updates and
//!   checkpoints store), LayerNorm, softmax and the losses stay fp32. On a GPU every product is
//!   cast. On the CPU the linear layers (the language-modelling head's tied product included)
//!   run positio's bf16 kernel ([`super::bf16`]: AVX-512 BF16 where the CPU has it) — in
//!   training too, forward and both gradients — and the rest the fused fp32 kernels,
//!   attention's products included (more exact than autocast there, and no slower).
//! - int8, for inference on the CPU only: the linear layers' weights are quantized per output
//!   channel on first use and their products run in int8 ([`super::int8`]); everything else
//!   stays fp32. Training commands refuse it; checkpoints are never touched.

use burn::tensor::{DType, Tensor};
use std::sync::atomic::{AtomicU8, Ordering};

/// The precision of matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// fp32 everywhere.
    Fp32,
    /// bf16 operands for matrix products, fp32 for the rest.
    Bf16,
    /// Linear layers in int8 (weights per channel, activations per row, as ONNX Runtime's
    /// dynamic quantization), the rest fp32; CPU inference only.
    Int8,
}

static PRECISION: AtomicU8 = AtomicU8::new(0);

/// Sets the precision of every later matrix product (all threads).
pub fn set_precision(p: Precision) {
    PRECISION.store(p as u8, Ordering::SeqCst);
}

pub fn precision() -> Precision {
    match PRECISION.load(Ordering::SeqCst) {
        1 => Precision::Bf16,
        2 => Precision::Int8,
        _ => Precision::Fp32,
    }
}

/// `a · b` in the current precision; the result has `a`'s dtype. (Int8 applies to the linear
/// layers' weights only: a product of two activations stays fp32, as in ONNX Runtime.)
pub fn product<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    match precision() {
        Precision::Fp32 | Precision::Int8 => a.matmul(b),
        Precision::Bf16 => {
            let dtype = a.dtype();
            a.cast(DType::BF16).matmul(b.cast(DType::BF16)).cast(dtype)
        }
    }
}
