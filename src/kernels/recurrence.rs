//! The time loop of an LSTM or GRU layer (PyTorch's equations and gate order) as one kernel with
//! a hand-written backward pass through time.
//!
//! The recurrence is inherently sequential, so the kernel is built around what is not: the
//! input projections of every time step arrive as one matrix product computed before the loop
//! (`xproj = x W_ihᵀ + b_ih`, done by the caller with the fused linear layer), and each step is
//! one small product `h_{t-1} W_hhᵀ` plus one fused pass over the gates. For up to 256 rows that
//! product is our own register-tiled loop over a once-transposed `W_hh` (gemm would repack
//! `W_hh` at every step); the two directions of a bidirectional layer are independent and run on
//! two threads. The backward pass walks time in reverse, saving each step's gate gradients, and
//! forms `dW_hh` as one product over all steps at the end. No crate offers a CPU LSTM / GRU with
//! a backward pass for burn, hence this file.
//!
//! Padding: rows are right-padded; at a padded step the state is carried unchanged and the
//! output is 0, so the reverse direction starts at each row's last real token (what PyTorch's
//! packed sequences compute).
//!
//! LSTM, gates `[i, f, g, o]`:  c' = σ(f)·c + σ(i)·tanh(g),  h' = σ(o)·tanh(c').
//! GRU, gates `[r, z, n]`:  n = tanh(x_n + σ(r)·(W_hn h + b_hn)),  h' = (1 − σ(z))·n + σ(z)·h.

use super::gemm::{matmul, matmul_all_cores, Mat};
use super::math::{simd, tanh, FastMath};
use super::tensor::{dims, register, tensor, values, with_real};
use super::{use_fused, FusedOps};
use burn::backend::{tensor::FloatTensor, Autodiff, Dispatch, Flex};
use burn::tensor::activation::sigmoid;
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;

/// Which recurrent cell a layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
        }
    }

    /// Gate blocks per hidden unit (rows of `W_hh` per hidden unit).
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// The shape of one recurrence: cell, directions (1, or 2 for a bidirectional layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecurrenceOptions {
    pub cell: Cell,
    pub directions: usize,
}

/// Runs the recurrence over `xproj` `[batch, len, directions·G·H]` (each direction's input
/// projection including `b_ih`, direction 0 first) with `w_hh` `[directions·G·H, H]` and `b_hh`
/// `[directions·G·H]`; `mask` `[batch, len]` is 1 for a token, 0 for padding. Returns the hidden
/// states `[batch, len, directions·H]` (forward direction first, as PyTorch concatenates).
pub fn recurrence(
    xproj: Tensor<3>,
    w_hh: Tensor<2>,
    b_hh: Tensor<1>,
    mask: Tensor<2>,
    options: RecurrenceOptions,
) -> Tensor<3> {
    if !use_fused(&xproj, &[w_hh.dtype(), b_hh.dtype()]) {
        return recurrence_composite(xproj, w_hh, b_hh, mask, options);
    }
    let mask = mask.cast(xproj.dtype());
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_recurrence(
        xproj.into_dispatch(),
        w_hh.into_dispatch(),
        b_hh.into_dispatch(),
        mask.into_dispatch(),
        options,
    ))
}

/// The composite twin, one burn operation at a time: the reference for the fused kernel and
/// the path on other devices.
pub fn recurrence_composite(
    xproj: Tensor<3>,
    w_hh: Tensor<2>,
    b_hh: Tensor<1>,
    mask: Tensor<2>,
    options: RecurrenceOptions,
) -> Tensor<3> {
    let [b, len, _] = xproj.dims();
    let h = w_hh.dims()[1];
    let gh = options.cell.gates() * h;
    let mask = mask.cast(xproj.dtype());
    let mut directions = Vec::with_capacity(options.directions);
    for d in 0..options.directions {
        let w = w_hh.clone().narrow(0, d * gh, gh).transpose();
        let bias = b_hh.clone().narrow(0, d * gh, gh).unsqueeze::<2>();
        let mut state = Tensor::<2>::zeros([b, h], &xproj.device()).cast(xproj.dtype());
        let mut cell = state.clone();
        let mut outputs = vec![None; len];
        for s in 0..len {
            let t = if d == 0 { s } else { len - 1 - s };
            let x = xproj
                .clone()
                .narrow(1, t, 1)
                .narrow(2, d * gh, gh)
                .reshape([b, gh]);
            let m = mask.clone().narrow(1, t, 1); // [b, 1]
            let hh = super::product(state.clone(), w.clone()) + bias.clone();
            let (h_new, c_new) = match options.cell {
                Cell::Lstm => {
                    let a = x + hh;
                    let i = sigmoid(a.clone().narrow(1, 0, h));
                    let f = sigmoid(a.clone().narrow(1, h, h));
                    let g = a.clone().narrow(1, 2 * h, h).tanh();
                    let o = sigmoid(a.narrow(1, 3 * h, h));
                    let c_new = f * cell.clone() + i * g;
                    (o * c_new.clone().tanh(), c_new)
                }
                Cell::Gru => {
                    let r = sigmoid(x.clone().narrow(1, 0, h) + hh.clone().narrow(1, 0, h));
                    let z = sigmoid(x.clone().narrow(1, h, h) + hh.clone().narrow(1, h, h));
                    let n = (x.narrow(1, 2 * h, h) + r * hh.narrow(1, 2 * h, h)).tanh();
                    let h_new = (z.clone().neg() + 1.0) * n + z * state.clone();
                    (h_new, cell.clone())
                }
            };
            let keep = m.clone().neg() + 1.0;
            outputs[t] = Some(h_new.clone() * m.clone());
            state = h_new * m.clone() + state * keep.clone();
            cell = c_new * m + cell * keep;
        }
        let steps: Vec<Tensor<3>> = outputs
            .into_iter()
            .map(|o| o.expect("every step").unsqueeze_dim(1))
            .collect();
        directions.push(Tensor::cat(steps, 1));
    }
    Tensor::cat(directions, 2)
}

#[inline(always)]
fn sigm<T: FastMath>(x: T) -> T {
    T::one() / (T::one() + (-x).fexp())
}

/// Sizes of one call.
#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    len: usize,
    hidden: usize,
    directions: usize,
    cell: Cell,
}

impl Dims {
    fn gh(&self) -> usize {
        self.cell.gates() * self.hidden
    }
    /// Time index of processing step `s` in direction `d`.
    fn time(&self, d: usize, s: usize) -> usize {
        if d == 0 {
            s
        } else {
            self.len - 1 - s
        }
    }
}

/// What one direction's forward pass keeps for its backward pass, by processing step.
#[derive(Debug)]
struct Saved<T> {
    /// `[steps, batch, G·H]`: activated gates (LSTM σi σf tanh g σo; GRU σr σz n).
    gates: Vec<T>,
    /// `[steps, batch, H]`: the state before each step.
    h_prev: Vec<T>,
    /// `[steps, batch, H]`: LSTM the cell after each step; GRU `W_hn h + b_hn`.
    extra: Vec<T>,
}

/// `n` consecutive slices of `len` elements at the start of `v`.
#[inline(always)]
fn blocks<T, const N: usize>(v: &[T], len: usize) -> [&[T]; N] {
    std::array::from_fn(|k| &v[k * len..(k + 1) * len])
}

/// The same, mutable.
#[inline(always)]
fn blocks_mut<T, const N: usize>(v: &mut [T], len: usize) -> [&mut [T]; N] {
    let mut rest = &mut v[..N * len];
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        head
    })
}

simd! {
    /// One step's gates for `rows` rows: `hh` holds `b_hh + h W_hhᵀ` `[rows, G·H]`, `x` the input
    /// projection rows; writes the activated gates, the new state into `h` (and `c`) where the
    /// mask is 1, and the output row (0 where the mask is 0).
    fn step_forward<T: FastMath>(
        cell: Cell,
        hidden: usize,
        x_rows: &[&[T]],
        hh: &[T],
        mask: &[T],
        gates: &mut [T],
        extra: &mut [T],
        h: &mut [T],
        c: &mut [T],
        out: &mut [&mut [T]],
    ) {
        let (hd, gh) = (hidden, cell.gates() * hidden);
        for (row, x) in x_rows.iter().enumerate() {
            let hh = &hh[row * gh..(row + 1) * gh];
            let g = &mut gates[row * gh..(row + 1) * gh];
            let hr = &mut h[row * hd..(row + 1) * hd];
            let cr = &mut c[row * hd..(row + 1) * hd];
            let e = &mut extra[row * hd..(row + 1) * hd];
            let o = &mut out[row][..hd];
            match cell {
                Cell::Lstm => {
                    let [xi, xf, xg, xo] = blocks(x, hd);
                    let [hi, hf, hg, ho] = blocks(hh, hd);
                    let [gi, gf, gg, go] = blocks_mut(g, hd);
                    for j in 0..hd {
                        let i = sigm(xi[j] + hi[j]);
                        let f = sigm(xf[j] + hf[j]);
                        let cand = tanh(xg[j] + hg[j]);
                        let og = sigm(xo[j] + ho[j]);
                        let c_new = f * cr[j] + i * cand;
                        gi[j] = i;
                        gf[j] = f;
                        gg[j] = cand;
                        go[j] = og;
                        e[j] = c_new;
                        o[j] = og * tanh(c_new);
                    }
                    if mask[row] > T::zero() {
                        cr.copy_from_slice(e);
                        hr.copy_from_slice(o);
                    } else {
                        e.copy_from_slice(cr);
                        o.fill(T::zero());
                    }
                }
                Cell::Gru => {
                    let [xr, xz, xn] = blocks(x, hd);
                    let [hr_, hz, hn] = blocks(hh, hd);
                    let [gr, gz, gn] = blocks_mut(g, hd);
                    for j in 0..hd {
                        let r = sigm(xr[j] + hr_[j]);
                        let z = sigm(xz[j] + hz[j]);
                        let n = tanh(xn[j] + r * hn[j]);
                        gr[j] = r;
                        gz[j] = z;
                        gn[j] = n;
                        e[j] = hn[j];
                        o[j] = (T::one() - z) * n + z * hr[j];
                    }
                    if mask[row] > T::zero() {
                        hr.copy_from_slice(o);
                    } else {
                        o.fill(T::zero());
                    }
                }
            }
        }
    }
}

/// `out (+)= a b` on all cores, or on this thread when the two directions already share the cores.
fn product<T: FastMath>(out: &mut [T], a: Mat<T>, b: Mat<T>, accumulate: bool, all_cores: bool) {
    if all_cores {
        matmul_all_cores(out, a, b, T::one(), accumulate);
    } else {
        matmul(out, a, b, T::one(), accumulate);
    }
}

/// Up to this many rows per step, the hidden product runs as `small_product` (faster than
/// gemm for every batch of Study A: 4 … 256 rows, BiLSTM inference 88 → 82 ms at 256 rows).
const FEW_ROWS: usize = 256;

/// Rows × columns of `small_product`'s register tile (16 accumulators of 16 f32 lanes).
const TILE_ROWS: usize = 4;
const TILE_COLS: usize = 64;

simd! {
    /// `out += a b` for few rows: `a` `[rows, K]`, `b` `[K, N]`, `out` `[rows, N]`, row-major.
    /// A 4 × 64 tile of `out` is held in registers while `k` runs, each 64-wide slice of a row
    /// of `b` read once per tile (gemm would repack all of `b` at every time step, which costs
    /// more than the product when only a few rows share it).
    fn small_product<T: FastMath>(out: &mut [T], a: &[T], b: &[T], rows: usize) {
        let k_dim = a.len() / rows.max(1);
        let n = out.len() / rows.max(1);
        let mut r0 = 0;
        while r0 < rows {
            let rr = TILE_ROWS.min(rows - r0);
            let mut c0 = 0;
            while c0 < n {
                let cw = TILE_COLS.min(n - c0);
                if rr == TILE_ROWS && cw == TILE_COLS {
                    let mut acc = [[T::zero(); TILE_COLS]; TILE_ROWS];
                    for (r, acc) in acc.iter_mut().enumerate() {
                        acc.copy_from_slice(&out[(r0 + r) * n + c0..][..TILE_COLS]);
                    }
                    for k in 0..k_dim {
                        let w: &[T; TILE_COLS] = b[k * n + c0..][..TILE_COLS].try_into().unwrap();
                        let coef: [T; TILE_ROWS] = std::array::from_fn(|r| a[(r0 + r) * k_dim + k]);
                        for j in 0..TILE_COLS {
                            for r in 0..TILE_ROWS {
                                acc[r][j] = coef[r].mul_add(w[j], acc[r][j]);
                            }
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        out[(r0 + r) * n + c0..][..TILE_COLS].copy_from_slice(acc);
                    }
                } else {
                    for r in r0..r0 + rr {
                        for k in 0..k_dim {
                            let coef = a[r * k_dim + k];
                            let o = &mut out[r * n + c0..r * n + c0 + cw];
                            for (o, &v) in o.iter_mut().zip(&b[k * n + c0..k * n + c0 + cw]) {
                                *o = coef.mul_add(v, *o);
                            }
                        }
                    }
                }
                c0 += cw;
            }
            r0 += rr;
        }
    }
}

/// One direction's forward pass; returns its outputs `[batch, len, H]` and, when `keep` (a
/// backward pass will follow), what backward needs (else one step's scratch space).
#[allow(clippy::too_many_arguments)]
fn direction_forward<T: FastMath>(
    x: &[T],
    w: &[T],
    b: &[T],
    mask: &[T],
    dm: Dims,
    d: usize,
    all_cores: bool,
    keep: bool,
) -> (Vec<T>, Saved<T>) {
    let (bs, len, hd, gh) = (dm.batch, dm.len, dm.hidden, dm.gh());
    let stride = dm.directions * gh;
    let mut out = vec![T::zero(); bs * len * hd];
    let kept = if keep { len } else { 1 };
    let mut saved = Saved {
        gates: vec![T::zero(); kept * bs * gh],
        h_prev: vec![T::zero(); kept * bs * hd],
        extra: vec![T::zero(); kept * bs * hd],
    };
    let (mut h, mut c) = (vec![T::zero(); bs * hd], vec![T::zero(); bs * hd]);
    let mut hh = vec![T::zero(); bs * gh];
    // Few rows: W_hhᵀ `[H, G·H]` once, for `small_product` (gemm would repack W every step).
    let w_t = (bs <= FEW_ROWS).then(|| {
        let mut t = vec![T::zero(); hd * gh];
        for (g, row) in w.chunks_exact(hd).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                t[k * gh + g] = v;
            }
        }
        t
    });
    let mut step_mask = vec![T::zero(); bs];
    for s in 0..len {
        let t = dm.time(d, s);
        let k = if keep { s } else { 0 };
        if keep {
            saved.h_prev[s * bs * hd..(s + 1) * bs * hd].copy_from_slice(&h);
        }
        for row in hh.chunks_exact_mut(gh) {
            row.copy_from_slice(b);
        }
        if s > 0 {
            match &w_t {
                Some(w_t) => small_product(&mut hh, &h, w_t, bs),
                None => product(
                    &mut hh,
                    Mat::rows(&h, bs, hd),
                    Mat::rows(w, gh, hd).t(),
                    true,
                    all_cores,
                ),
            }
        }
        let x_rows: Vec<&[T]> = (0..bs)
            .map(|row| &x[(row * len + t) * stride + d * gh..][..gh])
            .collect();
        for (row, m) in step_mask.iter_mut().enumerate() {
            *m = mask[row * len + t];
        }
        let mut out_rows: Vec<&mut [T]> = out
            .chunks_exact_mut(len * hd)
            .map(|r| &mut r[t * hd..(t + 1) * hd])
            .collect();
        step_forward(
            dm.cell,
            hd,
            &x_rows,
            &hh,
            &step_mask,
            &mut saved.gates[k * bs * gh..(k + 1) * bs * gh],
            &mut saved.extra[k * bs * hd..(k + 1) * bs * hd],
            &mut h,
            &mut c,
            &mut out_rows,
        );
    }
    (out, saved)
}

simd! {
    /// One step backward for `rows` rows. `dh` / `dc` hold the gradient flowing into the state
    /// after the step; on return `dh` holds the part of the gradient into the state before the
    /// step that does not pass through `W_hh` and `dc` the cell's. Writes the pre-activation
    /// gradients for the input projection (`dx`) and for the hidden product (`dhh`).
    fn step_backward<T: FastMath>(
        cell: Cell,
        hidden: usize,
        dy_rows: &[&[T]],
        mask: &[T],
        gates: &[T],
        extra: &[T],
        extra_prev: &[T],
        h_prev: &[T],
        dh: &mut [T],
        dc: &mut [T],
        dx: &mut [&mut [T]],
        dhh: &mut [T],
    ) {
        let (hd, gh) = (hidden, cell.gates() * hidden);
        for (row, dy) in dy_rows.iter().enumerate() {
            let dy = &dy[..hd];
            let g = &gates[row * gh..(row + 1) * gh];
            let e = &extra[row * hd..(row + 1) * hd];
            let ep = &extra_prev[row * hd..(row + 1) * hd];
            let hp = &h_prev[row * hd..(row + 1) * hd];
            let dhr = &mut dh[row * hd..(row + 1) * hd];
            let dcr = &mut dc[row * hd..(row + 1) * hd];
            let dxr = &mut dx[row][..gh];
            let dhhr = &mut dhh[row * gh..(row + 1) * gh];
            if mask[row] <= T::zero() {
                // The state passed through unchanged and the output was a constant 0.
                dxr.fill(T::zero());
                dhhr.fill(T::zero());
                continue;
            }
            match cell {
                Cell::Lstm => {
                    let [gi, gf, gg, go] = blocks(g, hd);
                    let [di, df, dg, d_o] = blocks_mut(dxr, hd);
                    for j in 0..hd {
                        let (i, f, cand, o) = (gi[j], gf[j], gg[j], go[j]);
                        let dht = dhr[j] + dy[j];
                        let tc = tanh(e[j]);
                        let dct = dcr[j] + dht * o * (T::one() - tc * tc);
                        di[j] = dct * cand * i * (T::one() - i);
                        df[j] = dct * ep[j] * f * (T::one() - f);
                        dg[j] = dct * i * (T::one() - cand * cand);
                        d_o[j] = dht * tc * o * (T::one() - o);
                        dcr[j] = dct * f;
                        dhr[j] = T::zero();
                    }
                    dhhr.copy_from_slice(dxr);
                }
                Cell::Gru => {
                    let [gr, gz, gn] = blocks(g, hd);
                    let [dr, dz, dn] = blocks_mut(dxr, hd);
                    let [hr_, hz, hn] = blocks_mut(dhhr, hd);
                    for j in 0..hd {
                        let (r, z, n) = (gr[j], gz[j], gn[j]);
                        let dht = dhr[j] + dy[j];
                        let dan = dht * (T::one() - z) * (T::one() - n * n);
                        let dar = dan * e[j] * r * (T::one() - r);
                        let daz = dht * (hp[j] - n) * z * (T::one() - z);
                        dr[j] = dar;
                        dz[j] = daz;
                        dn[j] = dan;
                        hr_[j] = dar;
                        hz[j] = daz;
                        hn[j] = dan * r;
                        dhr[j] = dht * z;
                    }
                }
            }
        }
    }
}

/// One direction's backward pass: (dx `[batch, len, G·H]`, dW_hh `[G·H, H]`, db_hh `[G·H]`).
#[allow(clippy::too_many_arguments)]
fn direction_backward<T: FastMath>(
    dy: &[T],
    w: &[T],
    mask: &[T],
    saved: &Saved<T>,
    dm: Dims,
    d: usize,
    all_cores: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (bs, len, hd, gh) = (dm.batch, dm.len, dm.hidden, dm.gh());
    let out_stride = dm.directions * hd;
    let mut dx = vec![T::zero(); bs * len * gh];
    let mut dhh = vec![T::zero(); len * bs * gh];
    let (mut dh, mut dc) = (vec![T::zero(); bs * hd], vec![T::zero(); bs * hd]);
    let zeros = vec![T::zero(); bs * hd];
    let mut step_mask = vec![T::zero(); bs];
    for s in (0..len).rev() {
        let t = dm.time(d, s);
        let dy_rows: Vec<&[T]> = (0..bs)
            .map(|row| &dy[(row * len + t) * out_stride + d * hd..][..hd])
            .collect();
        for (row, m) in step_mask.iter_mut().enumerate() {
            *m = mask[row * len + t];
        }
        let mut dx_rows: Vec<&mut [T]> = dx
            .chunks_exact_mut(len * gh)
            .map(|r| &mut r[t * gh..(t + 1) * gh])
            .collect();
        let extra_prev = if s > 0 {
            &saved.extra[(s - 1) * bs * hd..s * bs * hd]
        } else {
            &zeros[..]
        };
        let dhh_s = &mut dhh[s * bs * gh..(s + 1) * bs * gh];
        step_backward(
            dm.cell,
            hd,
            &dy_rows,
            &step_mask,
            &saved.gates[s * bs * gh..(s + 1) * bs * gh],
            &saved.extra[s * bs * hd..(s + 1) * bs * hd],
            extra_prev,
            &saved.h_prev[s * bs * hd..(s + 1) * bs * hd],
            &mut dh,
            &mut dc,
            &mut dx_rows,
            dhh_s,
        );
        if s > 0 {
            // dh_{t-1} += dhh W_hh (the state before the first step is a constant 0).
            if bs <= FEW_ROWS {
                small_product(&mut dh, dhh_s, w, bs);
            } else {
                let (a, wm) = (Mat::rows(dhh_s, bs, gh), Mat::rows(w, gh, hd));
                product(&mut dh, a, wm, true, all_cores);
            }
        }
    }
    // dW_hh = Σ_steps dhhᵀ h_prev, one product over all steps and rows.
    let mut dw = vec![T::zero(); gh * hd];
    let (a, hp) = (
        Mat::rows(&dhh, len * bs, gh).t(),
        Mat::rows(&saved.h_prev, len * bs, hd),
    );
    product(&mut dw, a, hp, false, all_cores);
    let mut db = vec![T::zero(); gh];
    for row in dhh.chunks_exact(gh) {
        db.iter_mut().zip(row).for_each(|(a, &g)| *a = *a + g);
    }
    (dx, dw, db)
}

/// Rows of `width` from each direction's part, side by side: `[rows, directions·width]`.
fn interleave<T: FastMath>(parts: &[Vec<T>], width: usize) -> Vec<T> {
    let stride = parts.len() * width;
    let mut out = vec![T::zero(); parts.first().map_or(0, Vec::len) * parts.len()];
    for (d, part) in parts.iter().enumerate() {
        for (dst, src) in out.chunks_exact_mut(stride).zip(part.chunks_exact(width)) {
            dst[d * width..(d + 1) * width].copy_from_slice(src);
        }
    }
    out
}

/// Runs `f(d)` for every direction: two directions on two threads.
fn per_direction<R: Send>(directions: usize, f: impl Fn(usize, bool) -> R + Sync) -> Vec<R> {
    if directions == 2 && rayon::current_num_threads() > 1 {
        let (a, b) = rayon::join(|| f(0, false), || f(1, false));
        vec![a, b]
    } else {
        (0..directions).map(|d| f(d, true)).collect()
    }
}

#[derive(Debug, Clone)]
struct Inputs {
    xproj: FlexTensor,
    w_hh: FlexTensor,
    b_hh: FlexTensor,
    mask: FlexTensor,
    options: RecurrenceOptions,
}

impl Inputs {
    fn dims(&self) -> Dims {
        let [batch, len, _] = dims(&self.xproj)[..] else {
            unreachable!("xproj is [batch, len, directions·G·H]")
        };
        Dims {
            batch,
            len,
            hidden: dims(&self.w_hh)[1],
            directions: self.options.directions,
            cell: self.options.cell,
        }
    }
}

/// Forward on raw values: the output `[batch, len, directions·H]` and each direction's saved
/// state (when `keep`).
fn forward_values<T: FastMath>(inputs: &Inputs, keep: bool) -> (Vec<T>, Vec<Saved<T>>) {
    let dm = inputs.dims();
    let (x, w, b, mask) = (
        values::<T>(&inputs.xproj),
        values::<T>(&inputs.w_hh),
        values::<T>(&inputs.b_hh),
        values::<T>(&inputs.mask),
    );
    let (gh, hd) = (dm.gh(), dm.hidden);
    let runs = per_direction(dm.directions, |d, all| {
        direction_forward(
            &x,
            &w[d * gh * hd..(d + 1) * gh * hd],
            &b[d * gh..(d + 1) * gh],
            &mask,
            dm,
            d,
            all,
            keep,
        )
    });
    let (outs, saved): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
    (interleave(&outs, hd), saved)
}

fn output_shape(inputs: &Inputs) -> Vec<usize> {
    let dm = inputs.dims();
    vec![dm.batch, dm.len, dm.directions * dm.hidden]
}

pub(super) fn primal(
    xproj: FlexTensor,
    w_hh: FlexTensor,
    b_hh: FlexTensor,
    mask: FlexTensor,
    options: RecurrenceOptions,
) -> FlexTensor {
    let inputs = Inputs {
        xproj,
        w_hh,
        b_hh,
        mask,
        options,
    };
    with_real!(inputs.xproj.dtype(), T => {
        tensor(forward_values::<T>(&inputs, false).0, output_shape(&inputs))
    })
}

/// Each direction's saved state, in the input's float type.
#[derive(Debug)]
enum SavedAny {
    F32(Vec<Saved<f32>>),
    F64(Vec<Saved<f64>>),
}

/// Gradients (of `xproj`, `w_hh`, `b_hh`) from the output's gradient `grad`.
fn backward_values<T: FastMath>(
    inputs: &Inputs,
    grad: &FlexTensor,
    saved: &[Saved<T>],
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dm = inputs.dims();
    let (gh, hd) = (dm.gh(), dm.hidden);
    let (dy, w, mask) = (
        values::<T>(grad),
        values::<T>(&inputs.w_hh),
        values::<T>(&inputs.mask),
    );
    let parts = per_direction(dm.directions, |d, all| {
        direction_backward(
            &dy,
            &w[d * gh * hd..(d + 1) * gh * hd],
            &mask,
            &saved[d],
            dm,
            d,
            all,
        )
    });
    let mut dxs = Vec::with_capacity(dm.directions);
    let (mut dw, mut db) = (Vec::new(), Vec::new());
    for (x, w, b) in parts {
        dxs.push(x);
        dw.extend(w);
        db.extend(b);
    }
    (
        tensor(interleave(&dxs, gh), dims(&inputs.xproj)),
        tensor(dw, dims(&inputs.w_hh)),
        tensor(db, dims(&inputs.b_hh)),
    )
}

#[derive(Debug)]
struct RecurrenceBackward;

impl Backward<Flex, 3> for RecurrenceBackward {
    type State = (Inputs, std::sync::Arc<SavedAny>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (inputs, saved) = ops.state;
        let (dx, dw, db) = match &*saved {
            SavedAny::F32(s) => backward_values::<f32>(&inputs, &grad, s),
            SavedAny::F64(s) => backward_values::<f64>(&inputs, &grad, s),
        };
        register(grads, parents, [dx, dw, db]);
    }
}

pub(super) fn autodiff<C: CheckpointStrategy>(
    xproj: FloatTensor<Autodiff<Flex, C>>,
    w_hh: FloatTensor<Autodiff<Flex, C>>,
    b_hh: FloatTensor<Autodiff<Flex, C>>,
    mask: FloatTensor<Autodiff<Flex, C>>,
    options: RecurrenceOptions,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = RecurrenceBackward
        .prepare::<C>([xproj.node(), w_hh.node(), b_hh.node()])
        .compute_bound();
    let inputs = Inputs {
        xproj: xproj.into_primitive(),
        w_hh: w_hh.into_primitive(),
        b_hh: b_hh.into_primitive(),
        mask: mask.into_primitive(),
        options,
    };
    let shape = output_shape(&inputs);
    match prep.stateful() {
        OpsKind::Tracked(prep) => {
            let (out, saved) = match inputs.xproj.dtype() {
                burn::tensor::DType::F64 => {
                    let (o, s) = forward_values::<f64>(&inputs, true);
                    (tensor(o, shape), SavedAny::F64(s))
                }
                _ => {
                    let (o, s) = forward_values::<f32>(&inputs, true);
                    (tensor(o, shape), SavedAny::F32(s))
                }
            };
            prep.finish((inputs, std::sync::Arc::new(saved)), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(primal(
            inputs.xproj,
            inputs.w_hh,
            inputs.b_hh,
            inputs.mask,
            inputs.options,
        )),
    }
}
