//! Scaled dot-product self-attention with everything a positional encoding adds: rotary
//! rotation of queries and keys, an additive per-head position bias, the padding mask, the
//! causal mask and dropout on the probabilities:
//!
//! `softmax(R(q) R(k)^T / sqrt(d) + bias + mask) v`.
//!
//! The fused kernel works on `[batch, len, heads, head_dim]` tensors as the projections produce
//! them (no transposes), one (batch, head) pair per task: two small matrix products forward,
//! four backward, with the softmax, masks, dropout and rotation applied in between. Dropout masks
//! come from a counter-based hash of a per-call seed, so the backward pass regenerates them
//! instead of storing them.

use super::dropout::{keep, mask_keys, next_seed, MaskKeys, ROW_SHIFT};
use super::gemm::{matmul, Mat};
use super::math::{max, simd, sum_map, FastMath};
use super::tensor::{dims, tensor, values, with_real};
use super::{use_fused, FusedOps};
use burn::backend::{tensor::FloatTensor, Autodiff, Dispatch, Flex};
use burn::nn::Dropout;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use num_traits::Zero;
use rayon::prelude::*;

/// The score given to a masked key: its softmax weight underflows to exactly 0, and, unlike
/// -inf, sums of several masks stay finite (no NaN from -inf - -inf).
pub const MASKED: f32 = -1e30;

/// Everything added to the attention scores before the softmax.
#[derive(Debug, Clone)]
pub struct ScoreBias {
    /// `[batch, len]`: 0 for a real token, [`MASKED`] for padding.
    pub key_mask: Tensor<2>,
    /// Mask keys after the query (decoder-style language modelling).
    pub causal: bool,
    /// `[heads, len, len]` position bias (ALiBi, T5), added to every batch element.
    pub position: Option<Tensor<3>>,
}

impl ScoreBias {
    /// From an attention mask of 1 (token) / 0 (padding), `[batch, len]`.
    pub fn new(
        attention_mask: &[Vec<u8>],
        causal: bool,
        position: Option<Tensor<3>>,
        device: &Device,
    ) -> Self {
        let (b, s) = (
            attention_mask.len(),
            attention_mask.first().map_or(0, Vec::len),
        );
        let v: Vec<f32> = attention_mask
            .iter()
            .flatten()
            .map(|&m| if m == 0 { MASKED } else { 0.0 })
            .collect();
        ScoreBias {
            key_mask: Tensor::from_data(TensorData::new(v, [b, s]), device),
            causal,
            position,
        }
    }

    /// The full additive bias, broadcastable to `[batch, heads, len, len]`.
    fn dense(&self, dtype: burn::tensor::DType) -> Tensor<4> {
        let [b, s] = self.key_mask.dims();
        let device = self.key_mask.device();
        let mut bias = self.key_mask.clone().cast(dtype).reshape([b, 1, 1, s]);
        if self.causal {
            let v: Vec<f32> = (0..s * s)
                .map(|i| if i % s > i / s { MASKED } else { 0.0 })
                .collect();
            let causal = Tensor::<2>::from_data(TensorData::new(v, [s, s]), &device).cast(dtype);
            bias = bias + causal.unsqueeze::<4>();
        }
        if let Some(p) = &self.position {
            bias = bias + p.clone().cast(dtype).unsqueeze::<4>();
        }
        bias
    }
}

/// Rotary tables `(cos, sin)`, each `[len, head_dim]`.
pub type RopeTables = (Tensor<2>, Tensor<2>);

/// Attention over `q`, `k`, `v`: `[batch, len, heads, head_dim]` → `[batch, len, heads, head_dim]`.
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: &ScoreBias,
    rope: Option<&RopeTables>,
    dropout: &Dropout,
) -> Tensor<4> {
    let dtype = q.dtype();
    if !use_fused(&q, &[k.dtype(), v.dtype()]) {
        return attention_composite(q, k, v, bias, rope, dropout);
    }
    let p = if super::dropout::active(dropout, &q) {
        dropout.prob
    } else {
        0.0
    };
    let device = q.device();
    // Absent operands travel as a 1-element placeholder: the extension mechanism takes no
    // optional tensors.
    let placeholder = || Tensor::<3>::zeros([1, 1, 1], (&device, dtype));
    let options = AttentionOptions {
        causal: bias.causal,
        dropout: p,
        seed: if p > 0.0 { next_seed() } else { 0 },
        mask_keys: mask_keys(q.dims()[0]),
        has_bias: bias.position.is_some(),
        has_rope: rope.is_some(),
    };
    let position = bias
        .position
        .clone()
        .map_or_else(placeholder, |t| t.cast(dtype));
    let rope = rope.map_or_else(placeholder, |(c, s)| {
        Tensor::stack::<3>(vec![c.clone(), s.clone()], 0).cast(dtype)
    });
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        bias.key_mask.clone().cast(dtype).into_dispatch(),
        position.into_dispatch(),
        rope.into_dispatch(),
        options,
    ))
}

/// The composite twin, from differentiable burn operations.
pub fn attention_composite(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: &ScoreBias,
    rope: Option<&RopeTables>,
    dropout: &Dropout,
) -> Tensor<4> {
    let heads = |t: Tensor<4>| t.swap_dims(1, 2);
    let (mut q, mut k, v) = (heads(q), heads(k), heads(v));
    if let Some((cos, sin)) = rope {
        q = apply_rope(q, cos, sin);
        k = apply_rope(k, cos, sin);
    }
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let scores = super::product(q, k.swap_dims(2, 3)) * scale + bias.dense(v.dtype());
    let probs = dropout.forward(softmax(scores, 3));
    super::product(probs, v).swap_dims(1, 2)
}

/// Scalar settings of one fused attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionOptions {
    pub causal: bool,
    /// Dropout probability on the attention probabilities (0 when not training).
    pub dropout: f64,
    /// Seed of this call's dropout masks.
    pub seed: u64,
    /// How the dropout mask's elements are keyed: by row, a probability `[b, head, q, k]` is
    /// `(global row b) << 40 | head << 32 | q << 16 | k`, whatever the padded length.
    pub mask_keys: MaskKeys,
    /// Whether the position-bias operand is real (else a placeholder).
    pub has_bias: bool,
    /// Whether the RoPE operand is real (else a placeholder).
    pub has_rope: bool,
}

/// Shapes and the per-task views of one call.
#[derive(Clone, Copy)]
struct Geometry {
    b: usize,
    s: usize,
    h: usize,
    d: usize,
}

impl Geometry {
    fn of(q: &FlexTensor) -> Self {
        let [b, s, h, d] = dims(q)[..] else {
            panic!("attention expects [batch, len, heads, head_dim]")
        };
        Geometry { b, s, h, d }
    }

    /// Rows of one head of one batch element inside a `[batch, len, heads, head_dim]` buffer.
    fn head<'a, T>(&self, x: &'a [T], task: usize) -> Mat<'a, T> {
        let (b, h) = (task / self.h, task % self.h);
        let start = b * self.s * self.h * self.d + h * self.d;
        Mat {
            data: &x[start..],
            rows: self.s,
            cols: self.d,
            rs: self.h * self.d,
            cs: 1,
        }
    }

    /// Copies per-task `[len, head_dim]` blocks back into `[batch, len, heads, head_dim]`.
    fn scatter<T: Copy + Zero + Send + Sync>(&self, blocks: &[T]) -> Vec<T> {
        let Geometry { b, s, h, d } = *self;
        let mut out = vec![T::zero(); b * s * h * d];
        out.par_chunks_mut(s * h * d)
            .enumerate()
            .for_each(|(bi, out)| {
                for hi in 0..h {
                    let block = &blocks[(bi * h + hi) * s * d..][..s * d];
                    for si in 0..s {
                        out[(si * h + hi) * d..][..d].copy_from_slice(&block[si * d..][..d]);
                    }
                }
            });
        out
    }
}

/// Rotate-half RoPE of rows (`transpose` applies the inverse, for gradients).
fn rotate<T: FastMath>(x: Mat<T>, cos: &[T], sin: &[T], transpose: bool, out: &mut [T]) {
    let d = x.cols;
    let half = d / 2;
    for r in 0..x.rows {
        let row = &x.data[r * x.rs..];
        let (c, s) = (&cos[r * d..][..d], &sin[r * d..][..d]);
        let o = &mut out[r * d..][..d];
        for i in 0..half {
            let (a, b) = (row[i], row[i + half]);
            if transpose {
                o[i] = a * c[i] + b * s[i + half];
                o[i + half] = b * c[i + half] - a * s[i];
            } else {
                o[i] = a * c[i] - b * s[i];
                o[i + half] = b * c[i + half] + a * s[i + half];
            }
        }
    }
}

/// A row-major contiguous copy of a view.
fn gather<T: Copy>(x: Mat<T>, out: &mut [T]) {
    for r in 0..x.rows {
        out[r * x.cols..][..x.cols].copy_from_slice(&x.data[r * x.rs..][..x.cols]);
    }
}

simd! {
    /// Softmax of score rows in place: `row = softmax(row + bias_row + mask)`, keys past the
    /// query masked when causal.
    fn softmax_rows<T: FastMath>(scores: &mut [T], s: usize, bias: &[T], mask: &[T], causal: bool) {
        for (i, row) in scores.chunks_exact_mut(s).enumerate() {
            let visible = if causal { i + 1 } else { s };
            let (row, hidden) = row.split_at_mut(visible);
            for (x, &m) in row.iter_mut().zip(mask) {
                *x = *x + m;
            }
            if !bias.is_empty() {
                for (x, &b) in row.iter_mut().zip(&bias[i * s..]) {
                    *x = *x + b;
                }
            }
            let m = max(row);
            for x in row.iter_mut() {
                *x = (*x - m).fexp();
            }
            let inv = T::one() / sum_map(row, |x| x);
            for x in row.iter_mut() {
                *x = *x * inv;
            }
            hidden.fill(T::zero());
        }
    }
}

simd! {
    /// Softmax backward in place: `dp ← p ⊙ (dp − Σ_j dp ⊙ p)`.
    fn softmax_backward_rows<T: FastMath>(dp: &mut [T], p: &[T], s: usize) {
        for (dr, pr) in dp.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
            let dot = dr.iter().zip(pr).fold(T::zero(), |a, (&g, &p)| a + g * p);
            for (g, &p) in dr.iter_mut().zip(pr) {
                *g = p * (*g - dot);
            }
        }
    }
}

/// Applies (or, for gradients, re-applies) the dropout mask of one task to an `[s, s]` block.
fn apply_dropout<T: FastMath>(
    x: &mut [T],
    task: usize,
    (s, heads): (usize, usize),
    opts: AttentionOptions,
) {
    let scale = T::from(1.0 / (1.0 - opts.dropout)).unwrap();
    let keys = opts.mask_keys;
    let (b, head) = ((task / heads) as u64, (task % heads) as u64);
    let row_base = ((keys.first_row + b) << ROW_SHIFT) | (head << 32);
    for (q, row) in x.chunks_mut(s).enumerate() {
        let start = if keys.by_row {
            row_base | ((q as u64) << 16)
        } else {
            (task * s * s + q * s) as u64
        };
        for (k, v) in row.iter_mut().enumerate() {
            *v = if keep(opts.seed, start + k as u64, opts.dropout) {
                *v * scale
            } else {
                T::zero()
            };
        }
    }
}

/// The inputs of one call as slices.
struct Inputs<'a, T> {
    q: &'a [T],
    k: &'a [T],
    v: &'a [T],
    mask: &'a [T],
    bias: Option<&'a [T]>,
    rope: Option<(&'a [T], &'a [T])>,
}

/// Queries and keys of one task, rotated when RoPE is on, as contiguous `[s, d]` blocks.
fn qk<T: FastMath>(g: &Geometry, x: &Inputs<T>, task: usize) -> (Vec<T>, Vec<T>) {
    let mut q = vec![T::zero(); g.s * g.d];
    let mut k = vec![T::zero(); g.s * g.d];
    match x.rope {
        Some((cos, sin)) => {
            rotate(g.head(x.q, task), cos, sin, false, &mut q);
            rotate(g.head(x.k, task), cos, sin, false, &mut k);
        }
        None => {
            gather(g.head(x.q, task), &mut q);
            gather(g.head(x.k, task), &mut k);
        }
    }
    (q, k)
}

/// Forward: the output `[b, s, h, d]` and, when `keep_probs` (for the backward pass), the
/// probabilities `[b·h, s, s]` (before dropout). Without, each worker reuses one `[s, s]`
/// scratch block: inference neither allocates nor writes the whole `[b·h, s, s]` (25 MB a
/// layer for 32 × 128 tokens and 12 heads).
fn forward_kernel<T: FastMath>(
    g: Geometry,
    x: &Inputs<T>,
    opts: AttentionOptions,
    keep_probs: bool,
) -> (Vec<T>, Vec<T>) {
    let Geometry { b, s, h, d } = g;
    let scale = T::from(1.0 / (d as f64).sqrt()).unwrap();
    let mut out = vec![T::zero(); b * h * s * d];
    // One (batch, head): scores into `p`, softmax in place, `o = p v`.
    let head = |task: usize, p: &mut [T], o: &mut [T]| {
        let (q, k) = qk(&g, x, task);
        matmul(
            p,
            Mat::rows(&q, s, d),
            Mat::rows(&k, s, d).t(),
            scale,
            false,
        );
        let bias = x
            .bias
            .map_or(&[][..], |bias| &bias[(task % h) * s * s..][..s * s]);
        softmax_rows(p, s, bias, &x.mask[(task / h) * s..][..s], opts.causal);
        if opts.dropout > 0.0 {
            let mut dropped = p.to_vec();
            apply_dropout(&mut dropped, task, (s, h), opts);
            matmul(
                o,
                Mat::rows(&dropped, s, s),
                g.head(x.v, task),
                T::one(),
                false,
            );
        } else {
            matmul(o, Mat::rows(p, s, s), g.head(x.v, task), T::one(), false);
        }
    };
    let mut probs = Vec::new();
    if keep_probs {
        probs = vec![T::zero(); b * h * s * s];
        probs
            .par_chunks_mut(s * s)
            .zip(out.par_chunks_mut(s * d))
            .enumerate()
            .for_each(|(task, (p, o))| head(task, p, o));
    } else {
        out.par_chunks_mut(s * d)
            .enumerate()
            .for_each_init(|| vec![T::zero(); s * s], |p, (task, o)| head(task, p, o));
    }
    (g.scatter(&out), probs)
}

/// Gradients `(dq, dk, dv, dbias)`; `dbias` `[h, s, s]` only when `want_bias`.
fn backward_kernel<T: FastMath>(
    g: Geometry,
    x: &Inputs<T>,
    probs: &[T],
    grad: &[T],
    opts: AttentionOptions,
    want_bias: bool,
) -> (Vec<T>, Vec<T>, Vec<T>, Option<Vec<T>>) {
    let Geometry { b, s, h, d } = g;
    let scale = T::from(1.0 / (d as f64).sqrt()).unwrap();
    let (mut dq, mut dk, mut dv) = (
        vec![T::zero(); b * h * s * d],
        vec![T::zero(); b * h * s * d],
        vec![T::zero(); b * h * s * d],
    );
    let mut ds_all = if want_bias {
        vec![T::zero(); b * h * s * s]
    } else {
        Vec::new()
    };
    let ds_chunks: Vec<&mut [T]> = if want_bias {
        ds_all.chunks_mut(s * s).collect()
    } else {
        Vec::new()
    };
    let mut ds_iter = ds_chunks
        .into_iter()
        .map(Some)
        .chain(std::iter::repeat_with(|| None))
        .take(b * h)
        .collect::<Vec<_>>();
    dq.par_chunks_mut(s * d)
        .zip(dk.par_chunks_mut(s * d))
        .zip(dv.par_chunks_mut(s * d))
        .zip(ds_iter.par_iter_mut())
        .enumerate()
        .for_each(|(task, (((dq, dk), dv), ds_out))| {
            let p = &probs[task * s * s..][..s * s];
            let go = g.head(grad, task);
            let (q, k) = qk(&g, x, task);
            // dV = P_drop^T dO; dP_drop = dO V^T.
            let mut dp = vec![T::zero(); s * s];
            matmul(&mut dp, go, g.head(x.v, task).t(), T::one(), false);
            if opts.dropout > 0.0 {
                let mut dropped = p.to_vec();
                apply_dropout(&mut dropped, task, (s, h), opts);
                matmul(dv, Mat::rows(&dropped, s, s).t(), go, T::one(), false);
                apply_dropout(&mut dp, task, (s, h), opts);
            } else {
                matmul(dv, Mat::rows(p, s, s).t(), go, T::one(), false);
            }
            softmax_backward_rows(&mut dp, p, s);
            // dQ_r = dS K_r · scale, dK_r = dS^T Q_r · scale.
            let mut dq_r = vec![T::zero(); s * d];
            let mut dk_r = vec![T::zero(); s * d];
            matmul(
                &mut dq_r,
                Mat::rows(&dp, s, s),
                Mat::rows(&k, s, d),
                scale,
                false,
            );
            matmul(
                &mut dk_r,
                Mat::rows(&dp, s, s).t(),
                Mat::rows(&q, s, d),
                scale,
                false,
            );
            match x.rope {
                Some((cos, sin)) => {
                    rotate(Mat::rows(&dq_r, s, d), cos, sin, true, dq);
                    rotate(Mat::rows(&dk_r, s, d), cos, sin, true, dk);
                }
                None => {
                    dq.copy_from_slice(&dq_r);
                    dk.copy_from_slice(&dk_r);
                }
            }
            if let Some(out) = ds_out {
                out.copy_from_slice(&dp);
            }
        });
    drop(ds_iter);
    let dbias = want_bias.then(|| {
        let mut acc = vec![T::zero(); h * s * s];
        for (task, ds) in ds_all.chunks(s * s).enumerate() {
            let a = &mut acc[(task % h) * s * s..][..s * s];
            a.iter_mut().zip(ds).for_each(|(a, &v)| *a = *a + v);
        }
        acc
    });
    (g.scatter(&dq), g.scatter(&dk), g.scatter(&dv), dbias)
}

/// The operands of a call, kept for its backward pass.
#[derive(Debug, Clone)]
pub(super) struct Saved {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    mask: FlexTensor,
    bias: FlexTensor,
    rope: FlexTensor,
    options: AttentionOptions,
}

impl Saved {
    /// The operands as slices of `T`, for the duration of `f`.
    fn with_inputs<T: FastMath, R>(&self, f: impl FnOnce(&Inputs<T>) -> R) -> R {
        let (q, k, v, mask) = (
            values::<T>(&self.q),
            values::<T>(&self.k),
            values::<T>(&self.v),
            values::<T>(&self.mask),
        );
        let bias = values::<T>(&self.bias);
        let rope = values::<T>(&self.rope);
        let half = rope.len() / 2;
        f(&Inputs {
            q: &q,
            k: &k,
            v: &v,
            mask: &mask,
            bias: self.options.has_bias.then_some(&bias[..]),
            rope: self
                .options
                .has_rope
                .then(|| (&rope[..half], &rope[half..])),
        })
    }
}

/// The output, and the probabilities when `keep_probs`.
fn forward(saved: &Saved, keep_probs: bool) -> (FlexTensor, Option<FlexTensor>) {
    let g = Geometry::of(&saved.q);
    with_real!(saved.q.dtype(), T => {
        let (out, probs) = saved.with_inputs::<T, _>(|x| {
            forward_kernel::<T>(g, x, saved.options, keep_probs)
        });
        let probs = keep_probs.then(|| tensor(probs, vec![g.b * g.h, g.s, g.s]));
        (tensor(out, dims(&saved.q)), probs)
    })
}

pub(super) fn primal(
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    mask: FlexTensor,
    bias: FlexTensor,
    rope: FlexTensor,
    options: AttentionOptions,
) -> FlexTensor {
    forward(
        &Saved {
            q,
            k,
            v,
            mask,
            bias,
            rope,
            options,
        },
        false,
    )
    .0
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 4> for AttentionBackward {
    /// (operands, probabilities)
    type State = (Saved, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nq, nk, nv, nbias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (saved, probs) = ops.state;
        let g = Geometry::of(&saved.q);
        let has_bias = saved.options.has_bias;
        let want_bias = has_bias && nbias.is_some();
        let shape = dims(&saved.q);
        let (dq, dk, dv, dbias) = with_real!(saved.q.dtype(), T => {
            let (dq, dk, dv, db) = saved.with_inputs::<T, _>(|x| backward_kernel::<T>(g, x, &values(&probs), &values(&grad), saved.options, want_bias));
            (
                tensor(dq, shape.clone()),
                tensor(dk, shape.clone()),
                tensor(dv, shape.clone()),
                db.map(|db| tensor(db, vec![g.h, g.s, g.s])),
            )
        });
        for (node, grad) in [
            (nq, Some(dq)),
            (nk, Some(dk)),
            (nv, Some(dv)),
            (nbias.filter(|_| has_bias), dbias),
        ] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

type AdTensor<C> = FloatTensor<Autodiff<Flex, C>>;

pub(super) fn autodiff<C: CheckpointStrategy>(
    q: AdTensor<C>,
    k: AdTensor<C>,
    v: AdTensor<C>,
    mask: AdTensor<C>,
    bias: AdTensor<C>,
    rope: AdTensor<C>,
    options: AttentionOptions,
) -> AdTensor<C> {
    // The position bias may be learned (T5's table); the mask and RoPE tables are constants.
    let prep = AttentionBackward
        .prepare::<C>([q.node(), k.node(), v.node(), bias.node()])
        .compute_bound();
    let saved = Saved {
        q: q.into_primitive(),
        k: k.into_primitive(),
        v: v.into_primitive(),
        mask: mask.into_primitive(),
        bias: bias.into_primitive(),
        rope: rope.into_primitive(),
        options,
    };
    match prep.stateful() {
        OpsKind::Tracked(prep) => {
            let (out, probs) = forward(&saved, true);
            let probs = probs.expect("kept for the backward pass");
            prep.finish((saved, probs), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&saved, false).0),
    }
}

/// Applies the rotation to `x` `[batch, heads, len, head_dim]`:
/// `x * cos + rotate_half(x) * sin`, `rotate_half([a, b]) = [-b, a]`.
pub fn apply_rope(x: Tensor<4>, cos: &Tensor<2>, sin: &Tensor<2>) -> Tensor<4> {
    let d = x.dims()[3];
    let first = x.clone().narrow(3, 0, d / 2);
    let second = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    let dtype = x.dtype();
    let cast = |t: &Tensor<2>| t.clone().cast(dtype).unsqueeze::<4>();
    x * cast(cos) + rotated * cast(sin)
}
