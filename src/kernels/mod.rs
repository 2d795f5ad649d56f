//! Fused CPU kernels with hand-written backward passes.
//!
//! Each operation has one public function (`layer_norm`, ...) that runs the fused kernel when
//! the tensors live on the CPU (`flex`) backend in f32/f64, and otherwise (GPU backends, other
//! dtypes, or when fusion is switched off with [`set_fused`]) its composite twin built from
//! differentiable burn operations. The twin is the reference the fused kernel is tested against.
//!
//! The kernels reach the backend through burn's backend-extension mechanism: [`FusedOps`] is
//! implemented for `Flex` (forward only) and for `Autodiff<Flex>` (forward that records a
//! backward step calling our own gradient kernel).

pub mod activation;
pub mod adamw;
pub mod attention;
pub mod bf16;
pub mod cross_entropy;
pub mod dropout;
mod gemm;
pub mod int8;
pub mod layer_norm;
pub mod linear;
mod math;
pub mod packed;
pub(crate) use math::dot;
pub mod precision;
pub mod recurrence;
mod tensor;

use burn::backend::{
    backend_extension, tensor::FloatTensor, tensor::IntTensor, Autodiff, Backend, Flex,
};
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use std::cell::Cell;

use activation::Activation;
pub use activation::{bias_activation, bias_activation_composite};
pub use adamw::{adamw, adamw_composite, AdamWStep};
pub use attention::{
    attention, attention_composite, AttentionOptions, RopeTables, ScoreBias, MASKED,
};
pub use cross_entropy::{cross_entropy, cross_entropy_composite};
pub use dropout::{
    dropout, dropout_seed, masks_keyed_by_row, seed_dropout, set_dropout_rows, MaskKeys,
};
pub use layer_norm::{layer_norm, layer_norm_composite};
pub use linear::{linear, linear_composite};
pub use precision::{precision, product, set_precision, Precision};
pub use recurrence::{recurrence, recurrence_composite, RecurrenceOptions};

thread_local! {
    static FUSED: Cell<bool> = const { Cell::new(true) };
}

/// Switches the fused kernels on (default) or off for the calling thread; off runs every op as
/// its composite twin. Tests and benchmarks compare the two paths in one process.
pub fn set_fused(on: bool) {
    FUSED.with(|f| f.set(on));
}

pub(crate) fn fused_enabled() -> bool {
    FUSED.with(Cell::get)
}

/// Whether the fused CPU kernels can run on `x` and the other operands' dtypes.
pub(crate) fn use_fused<const D: usize>(x: &Tensor<D>, others: &[DType]) -> bool {
    use burn::backend::DispatchDevice;
    let dtype = x.dtype();
    fused_enabled()
        && matches!(dtype, DType::F32 | DType::F64)
        && others.iter().all(|d| *d == dtype)
        && matches!(
            x.device().as_dispatch().clone().inner(),
            DispatchDevice::Flex(_)
        )
}

/// Declares [`FusedOps`] and implements it for `Flex` (each op's `primal`: forward only) and
/// for `Autodiff<Flex>` (each op's `autodiff`: forward recording the hand-written backward),
/// from one list of operations. Types are written as plain tokens (`FloatTensor<Self>`, not a
/// `ty` fragment) because `backend_extension` reads them token by token.
macro_rules! fused_ops {
    ($($(#[$doc:meta])* fn $op:ident => $module:ident($($arg:ident: $ty:ident $(<$gen:ident>)?),* $(,)?);)*) => {
        /// Operations positio implements itself on the CPU backend.
        #[backend_extension(Flex, Autodiff)]
        pub trait FusedOps: Backend {
            $($(#[$doc])* fn $op($($arg: $ty $(<$gen>)?),*) -> FloatTensor<Self>;)*
        }

        impl FusedOps for Flex {
            $(fn $op($($arg: $ty $(<$gen>)?),*) -> FloatTensor<Self> {
                $module::primal($($arg),*)
            })*
        }

        impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
            $(fn $op($($arg: $ty $(<$gen>)?),*) -> FloatTensor<Self> {
                $module::autodiff::<C>($($arg),*)
            })*
        }
    };
}

fused_ops! {
    /// LayerNorm over the last dimension: `(x - mean) / sqrt(var + eps) * weight + bias`.
    fn fused_layer_norm => layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    );
    /// `x Wᵀ + bias` for `x` `[rows, in]`, `W` `[out, in]`.
    fn fused_linear => linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>);
    /// `act(x + bias)` for `x` `[rows, width]`.
    fn fused_bias_activation => activation(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        act: Activation,
    );
    /// Self-attention over `[batch, len, heads, head_dim]` operands (see `attention`);
    /// `position_bias` `[heads, len, len]` and `rope` (cos and sin stacked, `[2, len, head_dim]`)
    /// are read only when `options` says they are present.
    fn fused_attention => attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_mask: FloatTensor<Self>,
        position_bias: FloatTensor<Self>,
        rope: FloatTensor<Self>,
        options: AttentionOptions,
    );
    /// Inverted dropout with a seeded mask (see `dropout`).
    fn fused_dropout => dropout(x: FloatTensor<Self>, p: f64, seed: u64, keys: MaskKeys);
    /// An LSTM / GRU layer's time loop (see `recurrence`).
    fn fused_recurrence => recurrence(
        xproj: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        options: RecurrenceOptions,
    );
    /// Mean softmax cross-entropy of `logits` `[rows, classes]` against `targets` `[rows]`.
    fn fused_cross_entropy => cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>);
}
