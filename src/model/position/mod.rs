//! Positional encodings, one file per family, and the three hooks they plug into:
//!
//! - added to the token embeddings ([`add_to_embeddings`]): `absolute` (a learned table, the
//!   `position_embeddings` of [`crate::model::embeddings::Embeddings`]) and `sinusoidal`;
//! - a bias on the attention scores ([`attention_hooks`]): `alibi`, `t5_bias`;
//! - a rotation of queries and keys ([`attention_hooks`]): `rope`;
//! - `none`: nothing.
//!
//! A new encoding that fits a hook is a new file here and one arm in that hook; the encoder
//! itself does not change.

mod alibi;
mod rope;
mod sinusoidal;
mod t5;

pub use crate::kernels::attention::apply_rope;
pub use alibi::{alibi_bias, alibi_slopes};
pub use rope::Rope;
pub use sinusoidal::sinusoidal_table;
pub use t5::{t5_bucket, t5_buckets};

use crate::kernels::RopeTables;
use crate::model::config::{ModelConfig, PositionKind};
use burn::nn::Embedding;
use burn::tensor::{Int, Tensor, TensorData};

/// Adds the encodings that act on the input: `x` `[batch, len, hidden]` token (+ segment)
/// embeddings; `table` the learned absolute table when the model has one.
pub fn add_to_embeddings(kind: PositionKind, x: Tensor<3>, table: Option<&Embedding>) -> Tensor<3> {
    let [_, s, h] = x.dims();
    let device = x.device();
    match (kind, table) {
        (PositionKind::Absolute, Some(table)) => {
            let positions = Tensor::<1, Int>::arange(0..s as i64, &device).unsqueeze::<2>();
            x + table.forward(positions)
        }
        (PositionKind::Sinusoidal, _) => {
            // As Vaswani et al., the token embeddings are scaled by sqrt(d): the table's entries
            // are of order 1, and next to embeddings initialised at std 0.02 they would drown
            // the tokens (the LayerNorm after the sum cannot undo the ratio).
            let table =
                Tensor::<2>::from_data(TensorData::new(sinusoidal_table(s, h), [s, h]), &device);
            let dtype = x.dtype();
            x * (h as f64).sqrt() + table.cast(dtype).unsqueeze::<3>()
        }
        _ => x,
    }
}

/// What the encodings that act inside attention need for a sequence of `len`: a score bias
/// `[heads, len, len]` (ALiBi, T5) and RoPE's `(cos, sin)` tables. `t5_table` is the learned
/// `[buckets, heads]` table of a `t5_bias` model.
pub fn attention_hooks(
    c: &ModelConfig,
    t5_table: Option<&Embedding>,
    len: usize,
    device: &burn::tensor::Device,
) -> (Option<Tensor<3>>, Option<RopeTables>) {
    match c.position_embedding_type {
        PositionKind::Alibi => (Some(alibi_bias(c.num_attention_heads, len, device)), None),
        PositionKind::T5Bias => {
            let table = t5_table.expect("a t5_bias model has its relative_attention_bias table");
            let buckets = t5_buckets(
                len,
                !c.causal,
                c.relative_attention_num_buckets,
                c.relative_attention_max_distance,
                device,
            );
            (Some(table.forward(buckets).permute([2, 0, 1])), None)
        }
        PositionKind::Rope => (
            None,
            Some(Rope::new(c.head_dim(), c.rope_theta, c.rope_scaling).tables(len, device)),
        ),
        PositionKind::Absolute | PositionKind::Sinusoidal | PositionKind::None => (None, None),
    }
}
