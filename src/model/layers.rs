//! The two parameterised building blocks every encoder layer uses, in Hugging Face's layout so
//! that checkpoints load without transposition.

use crate::kernels::packed::Converted;
use crate::kernels::{self, bf16::PackedBf16, int8::PackedInt8, Precision};
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};
use std::sync::Arc;

/// `y = x W^T + b` with `W` stored `[out, in]` as PyTorch does.
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
    /// `W` quantized for `--precision int8` on the CPU (inference), made on first use; shared
    /// by the module's copies, and made again when `W` changes.
    #[module(skip)]
    int8: Arc<Converted<PackedInt8>>,
    /// `W` rounded to bf16 for `--precision bf16`, as `int8`.
    #[module(skip)]
    bf16: Arc<Converted<PackedBf16>>,
}

/// A `[rows, cols]` parameter drawn from N(0, std²): BERT's initialisation of weights and
/// embedding tables.
pub(crate) fn normal(shape: [usize; 2], std: f64, device: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(Tensor::random(
        shape,
        Distribution::Normal(0.0, std),
        device,
    ))
}

impl Linear {
    /// Weights from N(0, std²), zero bias (BERT's initialisation).
    pub fn new(d_in: usize, d_out: usize, std: f64, device: &Device) -> Self {
        Linear {
            weight: normal([d_out, d_in], std, device),
            bias: Param::from_tensor(Tensor::zeros([d_out], device)),
            int8: Arc::default(),
            bf16: Arc::default(),
        }
    }

    pub fn d_out(&self) -> usize {
        self.weight.dims()[0]
    }

    /// `x W^T` without the bias, on `x` flattened to `[rows, in]`, for callers that fuse the
    /// bias with what follows.
    pub(crate) fn matmul<const D: usize>(&self, x: Tensor<D>) -> Tensor<2> {
        let d_in = x.dims()[D - 1];
        self.product(x.reshape([-1, d_in as i32]), None)
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let mut dims = x.dims();
        let d_in = dims[D - 1];
        dims[D - 1] = self.d_out();
        let rows = x.reshape([-1, d_in as i32]);
        self.product(rows, Some(self.bias.val())).reshape(dims)
    }

    /// `rows W^T (+ b)`: for inference on the CPU under `--precision int8` or `bf16`, by the
    /// layer's converted weight ([`kernels::packed`]); else by the fused (or composite) kernel.
    fn product(&self, rows: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
        let weight = self.weight.val();
        let converted = match kernels::precision() {
            Precision::Int8 => self.int8.linear(&weight, &rows, bias.as_ref()),
            Precision::Bf16 => self.bf16.linear(&weight, &rows, bias.as_ref()),
            Precision::Fp32 => None,
        };
        converted.unwrap_or_else(|| kernels::linear(rows, weight, bias))
    }
}

/// LayerNorm over the last dimension (runs the fused kernel on the CPU).
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(width: usize, eps: f64, device: &Device) -> Self {
        LayerNorm {
            weight: Param::from_tensor(Tensor::ones([width], device)),
            bias: Param::from_tensor(Tensor::zeros([width], device)),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        kernels::layer_norm(x, self.weight.val(), self.bias.val(), self.eps)
    }
}

/// Casts every float parameter of `module` to `dtype` (f64 serves the gradient checks).
pub fn cast<M: Module>(module: M, dtype: burn::tensor::DType) -> M {
    struct Cast(burn::tensor::DType);
    impl burn::module::ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, value, mapper) = param.consume();
            let require_grad = value.is_require_grad();
            // A fresh leaf: the cast must not hang off the old value's graph.
            Param::from_mapped_value(
                id,
                value.cast(self.0).detach().set_require_grad(require_grad),
                mapper,
            )
        }
    }
    module.map(&mut Cast(dtype))
}
