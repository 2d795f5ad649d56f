//! bf16 linear layers on the CPU (`--precision bf16`): operands rounded to bf16 (round to
//! nearest even, as PyTorch's `.to(bf16)`) and products accumulated in fp32, so a layer computes
//! `round(x) · round(W)ᵀ + b` — what PyTorch's autocast computes for a Linear. In inference the
//! weight is rounded once ([`PackedBf16`]); in training (`linear_forward`,
//! `linear_backward`, called by the fused linear kernel) every step, and the gradients are
//! `round(dy) · round(W)` and `round(dy)ᵀ · round(x)`, as autocast's backward. The bias and
//! everything outside the linear layers stay fp32.
//!
//! Written here because the `gemm` crate that burn's CPU backend uses has no bf16 kernel (burn
//! runs bf16 products 2.7 times slower than fp32 on the CPU). Two kernels, the best the CPU has:
//! - AVX-512 BF16 (`vdpbf16ps`: 32 bf16 products into 16 fp32 sums per instruction, twice
//!   an fp32 FMA's work): tiles of 4 rows × 64 output channels (16 zmm accumulators, each weight
//!   load feeding 4 rows), as the int8 kernel's; AMD Zen 4 and later, Intel Cooper Lake and
//!   Sapphire Rapids.
//! - Elsewhere, the rounded operands as fp32 through the fp32 product: the same numbers up to
//!   the order of the sums, at fp32's speed.
//!
//! The rounding flushes subnormal numbers to zero, as `vcvtneps2bf16` and `vdpbf16ps` do.

use super::gemm::{matmul_all_cores, Mat};
use super::packed::PackedWeight;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Output channels per packed block (one zmm of fp32 sums).
const LANES: usize = 16;
/// Blocks per tile: a tile covers 64 output channels.
const BLOCKS_PER_TILE: usize = 4;
/// Rows per tile: each weight load feeds this many products.
const ROWS_PER_TILE: usize = 4;
/// The most rows per parallel task (their tiles share each weight panel while it is cached).
const ROWS_PER_TASK: usize = 64;
/// Row pairs per parallel task of a transposition ([`column_weight_pairs`]).
const PAIRS_PER_TASK: usize = 32;

/// `v` rounded to the nearest bf16 (ties to even), as its 16 bits; subnormals become zero and
/// NaN stays NaN.
fn to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    if v.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    if v.is_subnormal() {
        return ((bits >> 16) & 0x8000) as u16;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Every value of `v` rounded to bf16, as f32 (on all cores).
fn rounded_all(v: &[f32]) -> Vec<f32> {
    v.par_iter().map(|v| rounded(*v)).collect()
}

/// `v` rounded to bf16, as an f32.
fn rounded(v: f32) -> f32 {
    f32::from_bits(u32::from(to_bf16(v)) << 16)
}

/// Which kernel computes the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Avx512Bf16,
    Fp32,
}

impl Kernel {
    fn available(self) -> bool {
        match self {
            Kernel::Avx512Bf16 => avx512_bf16(),
            Kernel::Fp32 => true,
        }
    }

    fn best() -> Kernel {
        if avx512_bf16() {
            Kernel::Avx512Bf16
        } else {
            Kernel::Fp32
        }
    }
}

fn avx512_bf16() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512bf16")
}

/// A weight `W` (`n × k`) rounded to bf16, in its kernel's layout.
pub struct PackedBf16 {
    n: usize,
    k: usize,
    weights: Layout,
}

enum Layout {
    /// For `vdpbf16ps`: blocks of 16 channels, within a block the pairs of consecutive `k` (the
    /// even one in the low half), each pair 16 × 4 bytes (channel-major), so one 64-byte load
    /// feeds one instruction. Channels are padded with zeros to whole tiles of 64, `k` to even.
    Pairs(Vec<u32>),
    /// Row-major, rounded, as f32.
    Rounded(Vec<f32>),
}

impl std::fmt::Debug for PackedBf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedBf16 {{ n: {}, k: {} }}", self.n, self.k)
    }
}

/// `x[2g]` and `x[2g + 1]` (0 past the end) rounded, as one pair.
fn pair(x: &[f32], g: usize) -> u32 {
    let lo = u32::from(to_bf16(x[2 * g]));
    let hi = x.get(2 * g + 1).map_or(0, |v| u32::from(to_bf16(*v)));
    lo | hi << 16
}

impl PackedBf16 {
    fn pack_for(kernel: Kernel, w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight size");
        let weights = match kernel {
            Kernel::Avx512Bf16 => {
                let k2 = k.div_ceil(2);
                let padded = n.div_ceil(LANES * BLOCKS_PER_TILE) * LANES * BLOCKS_PER_TILE;
                let mut pairs = vec![0u32; padded * k2];
                for (c, row) in w.chunks_exact(k.max(1)).take(n).enumerate() {
                    for g in 0..k2 {
                        pairs[(c / LANES) * LANES * k2 + g * LANES + c % LANES] = pair(row, g);
                    }
                }
                Layout::Pairs(pairs)
            }
            Kernel::Fp32 => Layout::Rounded(rounded_all(w)),
        };
        PackedBf16 { n, k, weights }
    }

    #[cfg(test)]
    fn kernel(&self) -> Kernel {
        match self.weights {
            Layout::Pairs(_) => Kernel::Avx512Bf16,
            Layout::Rounded(_) => Kernel::Fp32,
        }
    }
}

impl PackedWeight for PackedBf16 {
    fn pack(w: &[f32], n: usize, k: usize) -> Self {
        Self::pack_for(Kernel::best(), w, n, k)
    }

    fn outputs(&self) -> usize {
        self.n
    }

    fn product(&self, x: &[f32], rows: usize, bias: Option<&[f32]>) -> Vec<f32> {
        assert_eq!(x.len(), rows * self.k, "input size");
        let (n, k) = (self.n, self.k);
        if rows * n * k > 0 {
            if let Layout::Pairs(pairs) = &self.weights {
                return product_pairs(&row_pairs(x, rows, k), rows, pairs, n, bias);
            }
        }
        let mut y = vec![0f32; rows * n];
        if let Some(b) = bias {
            y.par_chunks_mut(n.max(1))
                .for_each(|row| row.copy_from_slice(b));
        }
        if let (Layout::Rounded(w), true) = (&self.weights, rows * n * k > 0) {
            let xr = rounded_all(x);
            let (x, w) = (Mat::rows(&xr, rows, k), Mat::rows(w, n, k).t());
            matmul_all_cores(&mut y, x, w, 1.0, true);
        }
        y
    }
}

/// A linear layer's forward product in training (`--precision bf16` on the CPU), `x` `rows ×
/// d_in`: `round(x) round(W)ᵀ + b`. (The weight changes every step, so it is rounded anew.)
pub(crate) fn linear_forward(x: &[f32], w: &[f32], b: &[f32], rows: usize) -> Vec<f32> {
    let (d_out, d_in) = (b.len(), w.len() / b.len().max(1));
    PackedBf16::pack(w, d_out, d_in).product(x, rows, Some(b))
}

/// Its gradients `(dx, dW)`: `round(dy) round(W)` and `round(dy)ᵀ round(x)`, summed in fp32, as
/// autocast's backward computes them (bf16 operands).
pub(crate) fn linear_backward(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    rows: usize,
) -> (Vec<f32>, Vec<f32>) {
    backward_by(Kernel::best(), dy, x, w, rows)
}

fn backward_by(
    kernel: Kernel,
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    rows: usize,
) -> (Vec<f32>, Vec<f32>) {
    let d_out = dy.len() / rows.max(1);
    let d_in = w.len() / d_out.max(1);
    if rows * d_in * d_out == 0 {
        return (vec![0.0; rows * d_in], vec![0.0; d_out * d_in]);
    }
    match kernel {
        Kernel::Avx512Bf16 => {
            let w_t = column_weight_pairs(w, d_out, d_in);
            let dx = product_pairs(&row_pairs(dy, rows, d_out), rows, &w_t, d_in, None);
            let x_t = column_weight_pairs(x, rows, d_in);
            let dw = product_pairs(&column_pairs(dy, rows, d_out), d_out, &x_t, d_in, None);
            (dx, dw)
        }
        Kernel::Fp32 => super::linear::gradient_products(
            &rounded_all(dy),
            &rounded_all(x),
            &rounded_all(w),
            rows,
        ),
    }
}

/// The rows of a product's left operand as bf16 pairs: pair `g` of row `r` at
/// `pairs[r · rs + g · gs]`, the row count padded with zero rows to whole tiles.
struct RowPairs {
    pairs: Vec<u32>,
    rs: usize,
    gs: usize,
    /// Pairs per row.
    k2: usize,
}

/// The rows of `x` (`rows × k`, row-major), each `k.div_ceil(2)` pairs in a row.
fn row_pairs(x: &[f32], rows: usize, k: usize) -> RowPairs {
    let k2 = k.div_ceil(2);
    let mut q = vec![0u32; rows.div_ceil(ROWS_PER_TILE) * ROWS_PER_TILE * k2];
    q.par_chunks_mut(k2.max(1))
        .zip(x.par_chunks(k.max(1)))
        .for_each(|(q, x)| {
            if k.is_multiple_of(2) {
                // SAFETY: `product_pairs` runs only where `avx512_bf16()` holds; `q` holds
                // k / 2 pairs, as many as `x` has values / 2.
                unsafe { row_pairs_avx512(x, q) };
            } else {
                for (g, q) in q.iter_mut().enumerate() {
                    *q = pair(x, g);
                }
            }
        });
    RowPairs {
        pairs: q,
        rs: k2,
        gs: 1,
        k2,
    }
}

/// The rows of `xᵀ` for `x` `rows × cols` (row-major): row `c` is column `c`, its pair `g`
/// `(x[2g][c], x[2g + 1][c])`, stored pair-major (`gs` = `cols` padded to whole tiles) so that
/// each pair of `x`'s rows is read once, in order.
fn column_pairs(x: &[f32], rows: usize, cols: usize) -> RowPairs {
    let (k2, padded) = (
        rows.div_ceil(2),
        cols.div_ceil(ROWS_PER_TILE) * ROWS_PER_TILE,
    );
    let mut q = vec![0u32; k2 * padded];
    q.par_chunks_mut(padded.max(1))
        .enumerate()
        .for_each(|(g, q)| {
            for c in (0..cols).step_by(LANES) {
                // SAFETY: as in `row_pairs`; rows 2g (and 2g + 1 when there is one) hold
                // `cols` values, of which `c..` are read, at most 16, and 16 pairs are written
                // from `c`, within the padded row when fewer remain (padded to 4 ≤ 16: the
                // masked store writes only the lanes below `cols - c`).
                unsafe { interleave(x, rows, cols, 2 * g, c, &mut q[c..]) };
            }
        });
    RowPairs {
        pairs: q,
        rs: 1,
        gs: padded,
        k2,
    }
}

/// `xᵀ` for `x` `rows × cols` (row-major) as a weight's pairs: `cols` channels, each of
/// `rows.div_ceil(2)` pairs, in [`Layout::Pairs`]'s order. Each task takes a run of row pairs
/// across all channels, so that it reads its rows in order and writes one short run per block:
/// a block at a time over all rows touched a new page on every load (rows of a 1,536-wide
/// activation are 6 KiB apart), and took 13 % of a training step in `perf`.
fn column_weight_pairs(x: &[f32], rows: usize, cols: usize) -> Vec<u32> {
    let k2 = rows.div_ceil(2);
    let padded = cols.div_ceil(LANES * BLOCKS_PER_TILE) * LANES * BLOCKS_PER_TILE;
    let mut pairs = vec![0u32; padded * k2];
    // tasks[t][block]: the block's pairs of task t's row pairs.
    let mut tasks: Vec<Vec<&mut [u32]>> = (0..k2.div_ceil(PAIRS_PER_TASK))
        .map(|_| Vec::new())
        .collect();
    for block in pairs
        .chunks_mut(LANES * k2.max(1))
        .take(cols.div_ceil(LANES))
    {
        for (task, part) in tasks
            .iter_mut()
            .zip(block.chunks_mut(LANES * PAIRS_PER_TASK))
        {
            task.push(part);
        }
    }
    tasks
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut blocks)| {
            for i in 0..blocks.first().map_or(0, |b| b.len() / LANES) {
                let g = task * PAIRS_PER_TASK + i;
                for (block, out) in blocks.iter_mut().enumerate() {
                    // SAFETY: as in `column_pairs`; 16 pairs written at i · 16 within this
                    // task's part of the block.
                    unsafe {
                        interleave(x, rows, cols, 2 * g, block * LANES, &mut out[i * LANES..])
                    };
                }
            }
        });
    pairs
}

/// Columns `c..c + 16` (those below `cols`) of rows `r` and `r + 1` of `x` (`rows × cols`;
/// row `r + 1` as zeros past the end) as 16 pairs at the start of `out`, lanes past `cols` not
/// written.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn interleave(x: &[f32], rows: usize, cols: usize, r: usize, c: usize, out: &mut [u32]) {
    use std::arch::x86_64::*;
    let keep = super::packed::lanes_below(cols - c);
    assert!(r < rows && x.len() >= rows * cols && out.len() >= (cols - c).min(LANES));
    let lo = _mm512_maskz_loadu_ps(keep, x.as_ptr().add(r * cols + c));
    let hi = if r + 1 < rows {
        _mm512_maskz_loadu_ps(keep, x.as_ptr().add((r + 1) * cols + c))
    } else {
        _mm512_setzero_ps()
    };
    // Words 0..16 are row r's, 16..32 row r + 1's; the permutation interleaves them.
    let both = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
    let order = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
        19, 3, 18, 2, 17, 1, 16, 0,
    );
    let pairs = _mm512_permutexvar_epi16(order, both);
    _mm512_mask_storeu_epi32(out.as_mut_ptr() as *mut i32, keep, pairs);
}

/// Whole rows of even length, 16 values at a time by `vcvtneps2bf16` (the same rounding).
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn row_pairs_avx512(x: &[f32], q: &mut [u32]) {
    use std::arch::x86_64::*;
    let whole = x.len() / 16 * 16;
    for i in (0..whole).step_by(16) {
        let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(x.as_ptr().add(i)));
        _mm256_storeu_si256(
            q.as_mut_ptr().add(i / 2) as *mut __m256i,
            std::mem::transmute::<__m256bh, __m256i>(v),
        );
    }
    for (g, q) in q.iter_mut().enumerate().skip(whole / 2) {
        *q = pair(x, g);
    }
}

/// `A Wᵀ (+ b)` by `vdpbf16ps` for the `rows` rows of `a` and a weight's pairs `w` (`n`
/// channels), on all cores: tasks of up to 64 rows, fewer when the rows are too few to keep
/// every core busy.
fn product_pairs(a: &RowPairs, rows: usize, w: &[u32], n: usize, bias: Option<&[f32]>) -> Vec<f32> {
    assert!(
        Kernel::Avx512Bf16.available(),
        "AVX-512 BF16 is not available here"
    );
    let k2 = a.k2;
    let mut y: Vec<f32> = Vec::with_capacity(rows * n);
    if rows * n == 0 {
        return y;
    }
    let per_task = rows
        .div_ceil(rayon::current_num_threads() * ROWS_PER_TILE)
        .next_multiple_of(ROWS_PER_TILE)
        .clamp(ROWS_PER_TILE, ROWS_PER_TASK);
    let padded = w.len() / k2.max(1);
    // Not zero-filled first: the tiles write every element.
    y.spare_capacity_mut()[..rows * n]
        .par_chunks_mut(per_task * n)
        .enumerate()
        .for_each(|(task, out)| {
            for panel in (0..padded).step_by(LANES * BLOCKS_PER_TILE) {
                for (i, out) in out.chunks_mut(ROWS_PER_TILE * n).enumerate() {
                    let tile = Tile {
                        a: &a.pairs[(task * per_task + i * ROWS_PER_TILE) * a.rs..],
                        rs: a.rs,
                        gs: a.gs,
                        w: &w[panel * k2..],
                        k2,
                        n,
                        bias,
                        panel,
                    };
                    // SAFETY: checked above that the CPU has AVX-512 BF16; `a` holds whole
                    // tiles of 4 rows of k2 pairs, `w` whole panels of 64 channels, and the
                    // tile writes only within `out` (its rows, channels below n).
                    unsafe { tile_avx512(tile, out) };
                }
            }
        });
    // SAFETY: the tiles wrote all rows × n elements (every row, every channel below n).
    unsafe { y.set_len(rows * n) };
    y
}

/// One tile's operands: 4 rows of pairs from the start of `a` (pair `g` of row `r` at
/// `r · rs + g · gs`), times the 64 channels of `w` from its start (channels `panel..panel + 64`
/// of the layer).
struct Tile<'a> {
    a: &'a [u32],
    rs: usize,
    gs: usize,
    w: &'a [u32],
    k2: usize,
    n: usize,
    bias: Option<&'a [f32]>,
    panel: usize,
}

#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn tile_avx512(tile: Tile, out: &mut [MaybeUninit<f32>]) {
    use std::arch::x86_64::*;
    let Tile {
        a,
        rs,
        gs,
        w,
        k2,
        n,
        bias,
        panel,
    } = tile;
    assert!(k2 == 0 || a.len() > (ROWS_PER_TILE - 1) * rs + (k2 - 1) * gs);
    assert!(w.len() >= BLOCKS_PER_TILE * LANES * k2);
    let block = LANES * k2;
    let (a, w) = (a.as_ptr(), w.as_ptr());
    let mut acc = [_mm512_setzero_ps(); ROWS_PER_TILE * BLOCKS_PER_TILE];
    for g in 0..k2 {
        let mut b = [_mm512_setzero_ps(); BLOCKS_PER_TILE];
        for (t, b) in b.iter_mut().enumerate() {
            *b = _mm512_loadu_ps(w.add(t * block + g * LANES) as *const f32);
        }
        for r in 0..ROWS_PER_TILE {
            let x: __m512bh =
                std::mem::transmute(_mm512_set1_epi32(*a.add(r * rs + g * gs) as i32));
            for (t, b) in b.iter().enumerate() {
                let acc = &mut acc[r * BLOCKS_PER_TILE + t];
                *acc = _mm512_dpbf16_ps(*acc, x, std::mem::transmute::<__m512, __m512bh>(*b));
            }
        }
    }
    for r in 0..out.len() / n {
        for t in 0..BLOCKS_PER_TILE {
            let c = panel + t * LANES;
            if c >= n {
                break;
            }
            let keep = super::packed::lanes_below(n - c);
            let b = match bias {
                Some(b) => _mm512_maskz_loadu_ps(keep, b.as_ptr().add(c)),
                None => _mm512_setzero_ps(),
            };
            let y = _mm512_add_ps(acc[r * BLOCKS_PER_TILE + t], b);
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(r * n + c) as *mut f32, keep, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.5)
            .collect()
    }

    #[test]
    fn rounding_is_to_nearest_even_and_flushes_subnormals() {
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: to even (1); 1 + 3·2⁻⁸ goes up to 1 + 2⁻⁶.
        assert_eq!(rounded(1.0 + 2f32.powi(-8)), 1.0);
        assert_eq!(rounded(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        assert_eq!(
            rounded(1.0 + 2f32.powi(-8) + 2f32.powi(-20)),
            1.0 + 2f32.powi(-7)
        );
        assert_eq!(rounded(-2.5), -2.5);
        assert_eq!(rounded(f32::MIN_POSITIVE / 2.0), 0.0);
        assert!(rounded(f32::NAN).is_nan());
        assert_eq!(rounded(f32::INFINITY), f32::INFINITY);
        // The largest finite values round up to infinity, as in PyTorch.
        assert_eq!(rounded(f32::MAX), f32::INFINITY);
    }

    #[test]
    fn vector_and_scalar_rounding_agree() {
        if !avx512_bf16() {
            return;
        }
        let mut x = values(1000, 3);
        let tie = 1.0 + 2f32.powi(-8);
        x.extend([tie, -tie, 3.0 * tie, 1e-40, -1e-40, 65504.0, 1e30, -0.0]);
        x.extend(values(14, 9));
        let want: Vec<u32> = (0..x.len() / 2).map(|g| pair(&x, g)).collect();
        let mut got = vec![0u32; x.len() / 2];
        // SAFETY: the features were checked above; `got` holds len / 2 pairs.
        unsafe { row_pairs_avx512(&x, &mut got) };
        assert_eq!(got, want);
    }

    #[test]
    fn products_are_the_rounded_operands_products_and_close_to_f32() {
        // Odd sizes: k odd, channels not a multiple of 16 or 64, rows not a multiple of 4 or
        // of a task.
        let shapes = [
            (5, 38, 21),
            (70, 97, 130),
            (1, 1, 1),
            (3, 384, 64),
            (129, 192, 48),
            (8, 64, 200),
        ];
        for (rows, k, n) in shapes {
            let (x, w, b) = (values(rows * k, 3), values(n * k, 0), values(n, 11));
            for kernel in [Kernel::Fp32, Kernel::Avx512Bf16] {
                if !kernel.available() {
                    continue;
                }
                let packed = PackedBf16::pack_for(kernel, &w, n, k);
                assert_eq!(packed.kernel(), kernel);
                let got = packed.product(&x, rows, Some(&b));
                assert_eq!(packed.product(&x, rows, None).len(), rows * n);
                for r in 0..rows {
                    for c in 0..n {
                        let (xr, wr) = (&x[r * k..(r + 1) * k], &w[c * k..(c + 1) * k]);
                        let exact: f64 = xr
                            .iter()
                            .zip(wr)
                            .map(|(a, b)| f64::from(rounded(*a)) * f64::from(rounded(*b)))
                            .sum::<f64>()
                            + f64::from(b[c]);
                        let g = f64::from(got[r * n + c]);
                        // fp32 sums of k exact products (bf16 × bf16 fits in fp32).
                        let tol = 1e-6 * k as f64 * (1.0 + exact.abs());
                        assert!(
                            (g - exact).abs() <= tol,
                            "{kernel:?} {rows}×{k}×{n} [{r}, {c}]: {g} vs {exact}"
                        );
                        let f: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>() + b[c];
                        assert!((got[r * n + c] - f).abs() < 4e-3 * (k as f32).sqrt());
                    }
                }
            }
        }
    }

    #[test]
    fn gradients_are_the_rounded_operands_products() {
        // Odd row counts (a pair of rows with one missing), d_out not a multiple of 4 or 16,
        // d_in not a multiple of 16 or 64.
        for (rows, d_in, d_out) in [(7, 38, 21), (130, 70, 17), (1, 1, 1), (64, 96, 130)] {
            let (dy, x, w) = (
                values(rows * d_out, 3),
                values(rows * d_in, 5),
                values(d_out * d_in, 7),
            );
            let r = |v: f32| f64::from(rounded(v));
            for kernel in [Kernel::Fp32, Kernel::Avx512Bf16] {
                if !kernel.available() {
                    continue;
                }
                let (dx, dw) = backward_by(kernel, &dy, &x, &w, rows);
                // got[i][j] = Σ_t a(i, t) b(t, j) over `terms` terms, for i < m, j < n.
                let product = |got: &[f32],
                               (m, n, terms): (usize, usize, usize),
                               a: &dyn Fn(usize, usize) -> f64,
                               b: &dyn Fn(usize, usize) -> f64,
                               what: &str| {
                    for i in 0..m {
                        for j in 0..n {
                            let want: f64 = (0..terms).map(|t| a(i, t) * b(t, j)).sum();
                            let tol = 1e-6 * terms as f64 * (1.0 + want.abs());
                            assert!(
                                (f64::from(got[i * n + j]) - want).abs() <= tol,
                                "{kernel:?} {rows}×{d_in}×{d_out} {what}: {} vs {want}",
                                got[i * n + j]
                            );
                        }
                    }
                };
                let dy_at = |i: usize, o: usize| r(dy[i * d_out + o]);
                let w_at = |o: usize, j: usize| r(w[o * d_in + j]);
                let x_at = |i: usize, j: usize| r(x[i * d_in + j]);
                product(&dx, (rows, d_in, d_out), &dy_at, &w_at, "dx");
                product(&dw, (d_out, d_in, rows), &|o, i| dy_at(i, o), &x_at, "dW");
            }
        }
    }

    #[test]
    fn without_rows() {
        let packed = PackedBf16::pack(&values(12, 1), 3, 4);
        assert!(packed.product(&[], 0, None).is_empty());
    }
}

#[cfg(test)]
mod timing {
    /// A rough timing against the f32 product on all cores (`cargo test --release --lib
    /// kernels::bf16::timing -- --ignored --nocapture`): MiniLM's FFN shapes at 32 × 128 tokens.
    #[test]
    #[ignore]
    fn bf16_against_f32() {
        use super::super::packed::timing::{fp32, operands, seconds};
        use super::*;
        for (rows, k, n) in [
            (4096, 384, 1536),
            (4096, 1536, 384),
            (4096, 384, 384),
            (8, 384, 1536),
        ] {
            let (x, w) = operands(rows, k, n);
            let packed = PackedBf16::pack(&w, n, k);
            let bf16 = seconds(&mut || {
                std::hint::black_box(packed.product(&x, rows, None));
            });
            let (f32t, gop) = fp32(&x, &w, rows, k, n);
            println!(
                "{rows}×{k}→{n}: bf16 ({:?}) {:.2} ms ({:.0} GFLOP/s), f32 {:.2} ms ({:.0} GFLOP/s)",
                packed.kernel(),
                bf16 * 1e3,
                gop / bf16,
                f32t * 1e3,
                gop / f32t
            );
        }
    }
}
