//! T5's relative position bias: log-spaced distance buckets index a learned per-head table,
//! shared by all layers, added to the attention scores.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// T5's relative position bucket for `relative_position = key_pos - query_pos`
/// (`_relative_position_bucket` of Hugging Face's `modeling_t5.py`, computed in f32 like it):
/// exact buckets for small distances, logarithmic ones up to `max_distance`, and, when
/// bidirectional, separate halves for keys after and before the query.
pub fn t5_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let n = if bidirectional {
        buckets /= 2;
        if relative_position > 0 {
            bucket += buckets;
        }
        relative_position.abs()
    } else {
        (-relative_position).max(0)
    };
    let max_exact = buckets / 2;
    if n < max_exact {
        return (bucket + n) as usize;
    }
    let scaled = ((n as f32 / max_exact as f32).ln()
        / (max_distance as f64 / max_exact as f64).ln() as f32
        * (buckets - max_exact) as f32) as i64;
    (bucket + (max_exact + scaled).min(buckets - 1)) as usize
}

/// Bucket indices `[len, len]` (query × key) for the T5 bias table.
pub fn t5_buckets(
    len: usize,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
    device: &Device,
) -> Tensor<2, Int> {
    let mut v = Vec::with_capacity(len * len);
    for i in 0..len as i64 {
        for j in 0..len as i64 {
            v.push(t5_bucket(j - i, bidirectional, num_buckets, max_distance) as i64);
        }
    }
    Tensor::from_data(TensorData::new(v, [len, len]), device)
}
