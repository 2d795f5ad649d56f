//! Raw access to `flex` tensors for the fused kernels.

use burn::backend::Flex;
use burn::tensor::{Element, TensorData};
use burn_autodiff::grads::Gradients;
use burn_autodiff::NodeId;
use burn_flex::FlexTensor;

/// The float types the kernels are written for (f64 serves the gradient checks).
pub(crate) trait Real:
    num_traits::Float + bytemuck::Pod + Element + Send + Sync + std::iter::Sum + 'static
{
}
impl Real for f32 {}
impl Real for f64 {}

/// A tensor's values in row-major order (copies only when the tensor is a strided view).
pub(crate) fn values<T: Real>(t: &FlexTensor) -> std::borrow::Cow<'_, [T]> {
    match t.as_slice::<T>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<T>()
                .expect("contiguous")
                .to_vec(),
        ),
    }
}

/// Maps `t`'s rows (of `width` values) in place, `f(input row, output row)`, when `t` is a
/// contiguous tensor nothing else holds: without autodiff the input of a row-wise kernel is a
/// temporary, and overwriting it saves allocating and filling an output. Returns whether it
/// could (otherwise the caller writes a new tensor).
pub(crate) fn map_rows_in_place<T: Real>(
    t: &mut FlexTensor,
    width: usize,
    rows_per_task: usize,
    f: impl Fn(&[T], &mut [T]) + Sync,
) -> bool {
    use rayon::prelude::*;
    let n = t.layout().num_elements();
    let whole = t.layout().contiguous_offsets() == Some((0, n));
    match t.try_storage_mut::<T>() {
        Some(values) if whole && values.len() == n && width > 0 && n.is_multiple_of(width) => {
            values
                .par_chunks_mut(width * rows_per_task)
                .for_each(|rows| {
                    let mut input = vec![T::zero(); width];
                    for row in rows.chunks_exact_mut(width) {
                        input.copy_from_slice(row);
                        f(&input, row);
                    }
                });
            true
        }
        _ => false,
    }
}

/// A new contiguous tensor from values.
pub(crate) fn tensor<T: Real>(values: Vec<T>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// An integer tensor's values as indices (negative values become `usize::MAX`, out of any range).
pub(crate) fn int_values(t: &FlexTensor) -> Vec<usize> {
    let t = t.to_contiguous();
    match t.dtype() {
        burn::tensor::DType::I64 => t
            .as_slice::<i64>()
            .unwrap()
            .iter()
            .map(|&v| usize::try_from(v).unwrap_or(usize::MAX))
            .collect(),
        burn::tensor::DType::I32 => t
            .as_slice::<i32>()
            .unwrap()
            .iter()
            .map(|&v| usize::try_from(v).unwrap_or(usize::MAX))
            .collect(),
        other => unreachable!("integer tensor of dtype {other:?}"),
    }
}

/// Hands each parent its gradient; a parent that needs none (`None`: not tracked) is skipped.
pub(crate) fn register<const N: usize>(
    grads: &mut Gradients,
    parents: [Option<NodeId>; N],
    gradients: [FlexTensor; N],
) {
    for (parent, g) in parents.into_iter().zip(gradients) {
        if let Some(id) = parent {
            grads.register::<Flex>(id, g);
        }
    }
}

pub(crate) fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

/// Runs `$body` with `$T` bound to the tensor's float type.
macro_rules! with_real {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            burn::tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            burn::tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            other => unreachable!("fused kernels are only selected for f32/f64, got {other:?}"),
        }
    };
}
pub(crate) use with_real;
