//! Dynamic int8 linear layers for inference (`--precision int8`), as ONNX Runtime's
//! `quantize_dynamic(per_channel=True)`: each weight matrix is quantized once, per output
//! channel (symmetric i8, scale = max|w| / 127); activations are quantized at run time, per row
//! (asymmetric u8 with a zero point; ORT uses one scale for the whole tensor); products
//! accumulate exactly in i32 and are scaled back to f32 with the bias:
//!
//! `y[r, c] = sx[r] · sw[c] · (Σ_j qx[r, j] · qw[c, j] − zx[r] · Σ_j qw[c, j]) + b[c]`
//!
//! Written here because no crate does u8×i8 products with per-row and per-channel scales on
//! stable Rust. Three kernels compute the same exact integers (`Kernel`), the best the CPU has
//! chosen once:
//! - AMX (Intel Sapphire Rapids and later, when `k` is a multiple of 64): `tdpbusd` multiplies
//!   a 16 × 64 tile of u8 activations by a 64 × 16 tile of i8 weights into 16 × 16 i32 in one
//!   instruction; 2 × 2 accumulator tiles (32 rows × 32 channels) share each operand load. The
//!   weight layout below is already AMX's (a 16-channel block's 16 groups of 4 `k` are one
//!   contiguous 1 KiB tile). Linux grants the tile registers on request
//!   (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); without the grant the next kernel runs.
//! - AVX-512 VNNI (`vpdpbusd`: 64 u8×i8 products into 16 i32 per instruction), tiles of 4 rows
//!   × 64 output channels (16 zmm accumulators, each weight load feeding 4 rows), a 64-channel
//!   weight panel (24 KiB for k = 384) kept in L1 while a chunk of rows passes over it.
//! - Portable Rust for other CPUs (same results, slower).
//!
//! Training never runs here: [`super::packed`] takes the path only for untracked f32 tensors on
//! the CPU backend.

use super::packed::PackedWeight;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Output channels per packed block (one zmm of i32 accumulators).
const LANES: usize = 16;
/// Blocks per tile: a tile covers 64 output channels.
const BLOCKS_PER_TILE: usize = 4;
/// Rows per tile: each weight load feeds this many products.
const ROWS_PER_TILE: usize = 4;
/// Rows per parallel task (their tiles share each weight panel while it is in L1).
const ROWS_PER_TASK: usize = 64;
/// Rows (and channels) an AMX block covers: two 16-row tiles.
const AMX_BLOCK: usize = 32;
/// The `k` bytes of one AMX tile row.
const AMX_K: usize = 64;

/// Which kernel computes the integer products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Amx,
    Vnni,
    Portable,
}

impl Kernel {
    /// Whether this CPU runs the kernel on products of depth `k4`.
    fn available(self, k4: usize) -> bool {
        match self {
            Kernel::Amx => amx() && k4.is_multiple_of(AMX_K),
            Kernel::Vnni => vnni(),
            Kernel::Portable => true,
        }
    }

    /// The fastest kernel this CPU (and `k4`) allows.
    fn best(k4: usize) -> Kernel {
        [Kernel::Amx, Kernel::Vnni]
            .into_iter()
            .find(|k| k.available(k4))
            .unwrap_or(Kernel::Portable)
    }

    /// Rows of activations are padded to a multiple of this.
    fn rows_per_tile(self) -> usize {
        match self {
            Kernel::Amx => AMX_BLOCK,
            Kernel::Vnni | Kernel::Portable => ROWS_PER_TILE,
        }
    }
}

/// A weight `W` (`n × k`, rows are output channels) quantized per channel and packed for the
/// kernel: blocks of 16 channels, within a block groups of 4 consecutive `k`, each group
/// 16 × 4 bytes (channel-major), so one 64-byte load feeds one `vpdpbusd`. Channels are padded
/// with zeros to whole tiles of 64.
pub struct PackedInt8 {
    n: usize,
    k: usize,
    /// `k` rounded up to a multiple of 4.
    k4: usize,
    packed: Vec<i8>,
    scale: Vec<f32>,
    /// `Σ_j qw[c, j]`, which the activations' zero point multiplies.
    sums: Vec<i32>,
}

impl std::fmt::Debug for PackedInt8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedInt8 {{ n: {}, k: {} }}", self.n, self.k)
    }
}

impl PackedWeight for PackedInt8 {
    /// Quantizes `w` (`n × k`, row-major) per output channel.
    fn pack(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight size");
        let k4 = k.div_ceil(4) * 4;
        let padded = n.div_ceil(LANES * BLOCKS_PER_TILE) * LANES * BLOCKS_PER_TILE;
        let mut packed = vec![0i8; padded * k4];
        let mut scale = vec![1f32; padded];
        let mut sums = vec![0i32; padded];
        for (c, row) in w.chunks_exact(k.max(1)).take(n).enumerate() {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            scale[c] = s;
            for (j, v) in row.iter().enumerate() {
                let q = (v / s).round().clamp(-127.0, 127.0) as i8;
                sums[c] += i32::from(q);
                packed[Self::at(c, j, k4)] = q;
            }
        }
        PackedInt8 {
            n,
            k,
            k4,
            packed,
            scale,
            sums,
        }
    }

    fn outputs(&self) -> usize {
        self.n
    }

    fn product(&self, x: &[f32], rows: usize, bias: Option<&[f32]>) -> Vec<f32> {
        product_by(Kernel::best(self.k4), x, rows, self, bias)
    }
}

impl PackedInt8 {
    /// Where `qw[c, j]` lives in `packed`.
    fn at(c: usize, j: usize, k4: usize) -> usize {
        (c / LANES) * LANES * k4 + (j / 4) * LANES * 4 + (c % LANES) * 4 + j % 4
    }

    /// Channels including the zero padding (a multiple of 64).
    fn padded(&self) -> usize {
        self.scale.len()
    }
}

/// Rows of activations quantized to u8, each padded to `k4` with its zero point; the row count
/// is padded to whole tiles (the padding rows' results are never stored).
struct QuantizedRows {
    q: Vec<u8>,
    scale: Vec<f32>,
    zero: Vec<i32>,
}

impl QuantizedRows {
    /// `rows` rows of `x` (`rows × k`), the row count padded to a multiple of `tile`.
    fn new(x: &[f32], rows: usize, k: usize, k4: usize, tile: usize) -> Self {
        let padded = rows.div_ceil(tile) * tile;
        let mut q = vec![0u8; padded * k4];
        let mut scale = vec![1f32; padded];
        let mut zero = vec![0i32; padded];
        let vnni = vnni();
        q.par_chunks_mut(k4)
            .zip(scale.par_iter_mut().zip(zero.par_iter_mut()))
            .zip(x.par_chunks(k.max(1)))
            .for_each(|((q, (s, z)), x)| {
                // SAFETY: `vnni()` checked the CPU features (AVX-512 F among them).
                let (lo, hi) = if vnni {
                    unsafe { range_avx512(x) }
                } else {
                    range(x)
                };
                *s = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
                *z = (-lo / *s).round_ties_even().clamp(0.0, 255.0) as i32;
                let (q, padding) = q.split_at_mut(x.len());
                if vnni {
                    // SAFETY: as above; `q` and `x` have the same length.
                    unsafe { quantize_avx512(x, 1.0 / *s, *z, q) };
                } else {
                    quantize(x, 1.0 / *s, *z, q);
                }
                padding.fill(*z as u8);
            });
        QuantizedRows { q, scale, zero }
    }
}

/// The smallest and largest value of `x` and 0 (the range always holds 0, so that zero, the
/// padding, is exact); NaN is skipped.
fn range(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((0f32, 0f32), |(lo, hi), v| (lo.min(*v), hi.max(*v)))
}

#[target_feature(enable = "avx512f")]
unsafe fn range_avx512(x: &[f32]) -> (f32, f32) {
    use std::arch::x86_64::*;
    let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        let v = _mm512_loadu_ps(c.as_ptr());
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
    }
    let (l, h) = range(chunks.remainder());
    (
        _mm512_reduce_min_ps(lo).min(l),
        _mm512_reduce_max_ps(hi).max(h),
    )
}

/// `q = clamp(round(x · inv) + zero, 0, 255)`, rounding half to even as the vector code does.
fn quantize(x: &[f32], inv: f32, zero: i32, q: &mut [u8]) {
    for (d, v) in q.iter_mut().zip(x) {
        *d = ((v * inv).round_ties_even() as i32 + zero).clamp(0, 255) as u8;
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn quantize_avx512(x: &[f32], inv: f32, zero: i32, q: &mut [u8]) {
    use std::arch::x86_64::*;
    let (vinv, vzero) = (_mm512_set1_ps(inv), _mm512_set1_epi32(zero));
    let (lo, hi) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
    let whole = x.len() / 16 * 16;
    for i in (0..whole).step_by(16) {
        // cvtps rounds half to even (the default rounding mode).
        let v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x.as_ptr().add(i)), vinv));
        let v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, vzero), lo), hi);
        _mm_storeu_si128(q.as_mut_ptr().add(i) as *mut _, _mm512_cvtepi32_epi8(v));
    }
    quantize(&x[whole..], inv, zero, &mut q[whole..]);
}

/// `x Wᵀ (+ b)` for `rows` rows of `x` (`rows × k`), on all cores, by the kernel given.
fn product_by(
    kernel: Kernel,
    x: &[f32],
    rows: usize,
    w: &PackedInt8,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert!(kernel.available(w.k4), "{kernel:?} is not available here");
    assert_eq!(x.len(), rows * w.k, "input size");
    let mut y: Vec<f32> = Vec::with_capacity(rows * w.n);
    if rows * w.n == 0 {
        return y;
    }
    let a = QuantizedRows::new(x, rows, w.k, w.k4, kernel.rows_per_tile());
    // Not zero-filled first: the tiles write every element (a fill was 18 % of an int8 pass).
    y.spare_capacity_mut()[..rows * w.n]
        .par_chunks_mut(ROWS_PER_TASK * w.n)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * ROWS_PER_TASK;
            if kernel == Kernel::Amx {
                // SAFETY: `available` checked the CPU, got the tile registers and that `k4`
                // is a multiple of 64; rows are padded to whole blocks of 32 (`rows_per_tile`) and
                // channels to whole panels of 64; the blocks write only within `out`.
                unsafe { task_amx(&a, w, bias, first, out) };
                return;
            }
            for panel in (0..w.padded()).step_by(LANES * BLOCKS_PER_TILE) {
                for (i, out) in out.chunks_mut(ROWS_PER_TILE * w.n).enumerate() {
                    let tile = Tile {
                        a: &a,
                        w,
                        bias,
                        r0: first + i * ROWS_PER_TILE,
                        panel,
                    };
                    if kernel == Kernel::Vnni {
                        // SAFETY: `available` checked the CPU features; the tile reads rows
                        // r0..r0+4 of `a` (padded to whole tiles) and channels panel..panel+64
                        // of `w` (padded to whole tiles), and writes only within `out`.
                        unsafe { tile_vnni(tile, out) };
                    } else {
                        tile_portable(tile, out);
                    }
                }
            }
        });
    // SAFETY: the tiles wrote all rows × n elements (every row, every channel below n).
    unsafe { y.set_len(rows * w.n) };
    y
}

fn vnni() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni")
}

/// Whether the CPU has AMX tiles with int8 products (CPUID leaf 7: EDX bits 24 and 25) and
/// Linux lets this process use them (asked once).
fn amx() -> bool {
    static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GRANTED.get_or_init(|| {
        // CPUID leaf 7 exists on every x86-64 CPU with AVX-512 (checked first).
        let edx =
            is_x86_feature_detected!("avx512f").then(|| std::arch::x86_64::__cpuid_count(7, 0).edx);
        let tiles = edx.is_some_and(|d| d & (1 << 24) != 0 && d & (1 << 25) != 0);
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with these arguments only changes which state the kernel lets
        // this process use; it fails cleanly (non-zero) where AMX is unknown.
        tiles
            && unsafe {
                libc::syscall(
                    libc::SYS_arch_prctl,
                    ARCH_REQ_XCOMP_PERM,
                    XFEATURE_XTILEDATA,
                )
            } == 0
    })
}

/// AMX's tile configuration (palette 1): tiles 0–7 of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

const TILES: TileConfig = {
    let mut bytes_per_row = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut t = 0;
    while t < 8 {
        bytes_per_row[t] = 64;
        rows[t] = 16;
        t += 1;
    }
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        bytes_per_row,
        rows,
    }
};

/// The rows of one task (from row `first`, as many as `out` holds) through AMX, in blocks of
/// 32 rows × 32 channels: accumulators tmm0–3, activations tmm4–5, weights tmm6–7.
#[target_feature(enable = "avx512f")]
unsafe fn task_amx(
    a: &QuantizedRows,
    w: &PackedInt8,
    bias: Option<&[f32]>,
    first: usize,
    out: &mut [MaybeUninit<f32>],
) {
    use std::arch::asm;
    let (k4, n) = (w.k4, w.n);
    let rows = out.len() / n;
    asm!("ldtilecfg [{}]", in(reg) &TILES, options(nostack, readonly));
    // Four 16 × 16 accumulator tiles, stored row by row.
    let mut acc = [[0i32; LANES]; 4 * LANES];
    for r in (0..rows).step_by(AMX_BLOCK) {
        let a0 = a.q.as_ptr().add((first + r) * k4);
        let a1 = a0.add(LANES * k4);
        for c0 in (0..n).step_by(AMX_BLOCK) {
            // Block c0 / 16 of `w` starts at byte c0 · k4; its groups of 4 `k` are 64 bytes.
            let b0 = w.packed.as_ptr().add(c0 * k4);
            let b1 = b0.add(LANES * k4);
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            for kk in (0..k4).step_by(AMX_K) {
                asm!(
                    "tileloadd tmm4, [{a0} + {sa} * 1]",
                    "tileloadd tmm5, [{a1} + {sa} * 1]",
                    "tileloadd tmm6, [{b0} + {sb} * 1]",
                    "tileloadd tmm7, [{b1} + {sb} * 1]",
                    "tdpbusd tmm0, tmm4, tmm6",
                    "tdpbusd tmm1, tmm4, tmm7",
                    "tdpbusd tmm2, tmm5, tmm6",
                    "tdpbusd tmm3, tmm5, tmm7",
                    a0 = in(reg) a0.add(kk),
                    a1 = in(reg) a1.add(kk),
                    sa = in(reg) k4,
                    b0 = in(reg) b0.add(kk * LANES),
                    b1 = in(reg) b1.add(kk * LANES),
                    sb = in(reg) AMX_K,
                    options(nostack, readonly)
                );
            }
            let p = acc.as_mut_ptr() as *mut i32;
            asm!(
                "tilestored [{p0} + {s} * 1], tmm0",
                "tilestored [{p1} + {s} * 1], tmm1",
                "tilestored [{p2} + {s} * 1], tmm2",
                "tilestored [{p3} + {s} * 1], tmm3",
                p0 = in(reg) p,
                p1 = in(reg) p.add(LANES * LANES),
                p2 = in(reg) p.add(2 * LANES * LANES),
                p3 = in(reg) p.add(3 * LANES * LANES),
                s = in(reg) LANES * 4,
                options(nostack)
            );
            // Tile 2·i + j holds rows r + 16 i.., channels c0 + 16 j...
            for i in 0..2 {
                let top = r + i * LANES;
                for row in 0..LANES.min(rows.saturating_sub(top)) {
                    let dst = out.as_mut_ptr().add((top + row) * n);
                    for j in 0..2 {
                        let c = c0 + j * LANES;
                        if c < n {
                            let products = std::arch::x86_64::_mm512_loadu_si512(
                                acc[(2 * i + j) * LANES + row].as_ptr() as *const _,
                            );
                            store_dequantized(products, a, w, bias, first + top + row, c, dst);
                        }
                    }
                }
            }
        }
    }
    asm!("tilerelease", options(nostack, nomem));
}

/// Row `r` of the output, channels `c..c + 16` (those below n): `(acc − zx · Σqw) · sx · sw
/// + b`, written at `dst` (the row's start).
#[target_feature(enable = "avx512f")]
unsafe fn store_dequantized(
    acc: std::arch::x86_64::__m512i,
    a: &QuantizedRows,
    w: &PackedInt8,
    bias: Option<&[f32]>,
    r: usize,
    c: usize,
    dst: *mut MaybeUninit<f32>,
) {
    use std::arch::x86_64::*;
    let n = w.n;
    let (sx, zx) = (a.scale[r], a.zero[r]);
    let sums = _mm512_loadu_si512(w.sums.as_ptr().add(c) as *const _);
    let exact = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(zx), sums));
    let scale = _mm512_mul_ps(_mm512_set1_ps(sx), _mm512_loadu_ps(w.scale.as_ptr().add(c)));
    let keep = super::packed::lanes_below(n - c);
    let b = match bias {
        Some(b) => _mm512_maskz_loadu_ps(keep, b.as_ptr().add(c)),
        None => _mm512_setzero_ps(),
    };
    let y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), scale, b);
    _mm512_mask_storeu_ps(dst.add(c) as *mut f32, keep, y);
}

/// One tile's operands: rows `r0..` of `a` (as many as the output holds, at most 4) times
/// channels `panel..panel + 64` of `w`.
struct Tile<'a> {
    a: &'a QuantizedRows,
    w: &'a PackedInt8,
    bias: Option<&'a [f32]>,
    r0: usize,
    panel: usize,
}

#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_vnni(tile: Tile, out: &mut [MaybeUninit<f32>]) {
    use std::arch::x86_64::*;
    let Tile {
        a,
        w,
        bias,
        r0,
        panel,
    } = tile;
    let (k4, n) = (w.k4, w.n);
    let block_bytes = LANES * k4;
    let base = w.packed.as_ptr().add(panel * k4);
    let rows = a.q.as_ptr().add(r0 * k4);
    let mut acc = [_mm512_setzero_si512(); ROWS_PER_TILE * BLOCKS_PER_TILE];
    for g in 0..k4 / 4 {
        let b = [
            _mm512_loadu_si512(base.add(g * 64) as *const _),
            _mm512_loadu_si512(base.add(block_bytes + g * 64) as *const _),
            _mm512_loadu_si512(base.add(2 * block_bytes + g * 64) as *const _),
            _mm512_loadu_si512(base.add(3 * block_bytes + g * 64) as *const _),
        ];
        for r in 0..ROWS_PER_TILE {
            let x4 = std::ptr::read_unaligned(rows.add(r * k4 + 4 * g) as *const i32);
            let x4 = _mm512_set1_epi32(x4);
            for (t, b) in b.iter().enumerate() {
                let acc = &mut acc[r * BLOCKS_PER_TILE + t];
                *acc = _mm512_dpbusd_epi32(*acc, x4, *b);
            }
        }
    }
    // Dequantize, 16 channels at a time.
    for r in 0..out.len() / n {
        for t in 0..BLOCKS_PER_TILE {
            let c = panel + t * LANES;
            if c >= n {
                break;
            }
            let dst = out.as_mut_ptr().add(r * n);
            store_dequantized(acc[r * BLOCKS_PER_TILE + t], a, w, bias, r0 + r, c, dst);
        }
    }
}

/// The same tile in portable Rust, for CPUs without AVX-512 VNNI.
fn tile_portable(tile: Tile, out: &mut [MaybeUninit<f32>]) {
    let (a, w, r0) = (tile.a, tile.w, tile.r0);
    let (k4, n) = (w.k4, w.n);
    for r in 0..out.len() / n {
        let x = &a.q[(r0 + r) * k4..(r0 + r + 1) * k4];
        for c in tile.panel..(tile.panel + LANES * BLOCKS_PER_TILE).min(n) {
            let dot: i32 = x
                .iter()
                .enumerate()
                .map(|(j, &q)| i32::from(q) * i32::from(w.packed[PackedInt8::at(c, j, k4)]))
                .sum();
            let exact = dot - a.zero[r0 + r] * w.sums[c];
            let b = tile.bias.map_or(0.0, |b| b[c]);
            out[r * n + c].write(exact as f32 * (a.scale[r0 + r] * w.scale[c]) + b);
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

    /// The exact integer result of the quantized operands, computed without packing.
    fn reference(x: &[f32], w: &[f32], b: &[f32], rows: usize, k: usize, n: usize) -> Vec<f32> {
        let packed = PackedInt8::pack(w, n, k);
        let a = QuantizedRows::new(x, rows, k, packed.k4, ROWS_PER_TILE);
        let mut out = vec![0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let sw = packed.scale[c];
                let exact: i32 = (0..k)
                    .map(|j| {
                        let qw = (w[c * k + j] / sw).round().clamp(-127.0, 127.0) as i32;
                        (i32::from(a.q[r * packed.k4 + j]) - a.zero[r]) * qw
                    })
                    .sum();
                out[r * n + c] = exact as f32 * (a.scale[r] * sw) + b[c];
            }
        }
        out
    }

    #[test]
    fn products_are_the_quantized_operands_exact_products_and_close_to_f32() {
        // Every kernel this CPU has computes the same exact products.
        let kernels = [Kernel::Portable, Kernel::Vnni, Kernel::Amx];
        // Odd sizes: k not a multiple of 4, channels not a multiple of 16, 32 or 64, rows not
        // a multiple of 4, 32 or a task; AMX takes the shapes whose k is a multiple of 64.
        let shapes = [
            (5, 38, 21),
            (70, 97, 130),
            (1, 4, 1),
            (3, 384, 64),
            (70, 128, 130),
            (33, 64, 17),
            (129, 192, 48),
        ];
        for (rows, k, n) in shapes {
            let (x, w, b) = (values(rows * k, 3), values(n * k, 0), values(n, 11));
            let want = reference(&x, &w, &b, rows, k, n);
            let packed = PackedInt8::pack(&w, n, k);
            for kernel in kernels.into_iter().filter(|k| k.available(packed.k4)) {
                let got = product_by(kernel, &x, rows, &packed, Some(&b));
                for (g, w_) in got.iter().zip(&want) {
                    assert!(
                        (g - w_).abs() <= 1e-5 * (1.0 + w_.abs()),
                        "{kernel:?} {rows}×{k}×{n}: {g} vs {w_}"
                    );
                }
            }
            // Within quantization error of the f32 product.
            let got = packed.product(&x, rows, Some(&b));
            for r in 0..rows {
                for c in 0..n {
                    let f: f32 = (0..k).map(|j| x[r * k + j] * w[c * k + j]).sum::<f32>() + b[c];
                    let err = (got[r * n + c] - f).abs();
                    assert!(err < 0.01 * (k as f32).sqrt(), "{rows}×{k}×{n}: {err}");
                }
            }
        }
    }

    #[test]
    fn vector_and_portable_quantization_agree() {
        if !vnni() {
            return;
        }
        // Ties (x · inv = n + 0.5) included: both round them to even.
        let mut x = values(1003, 5);
        x.extend([0.5, 1.5, 2.5, -0.5, -1.5, 127.5, -127.5]);
        let range_ = range(&x);
        // SAFETY: the features were checked above.
        assert_eq!(unsafe { range_avx512(&x) }, range_);
        let (mut a, mut b) = (vec![0u8; x.len()], vec![0u8; x.len()]);
        quantize(&x, 1.0, 128, &mut a);
        unsafe { quantize_avx512(&x, 1.0, 128, &mut b) };
        assert_eq!(a, b);
        quantize(&x, 97.3, 3, &mut a);
        unsafe { quantize_avx512(&x, 97.3, 3, &mut b) };
        assert_eq!(a, b);
    }

    #[test]
    fn without_bias_and_with_zero_rows() {
        let (k, n) = (8, 3);
        let packed = PackedInt8::pack(&values(n * k, 1), n, k);
        assert!(packed.product(&[], 0, None).is_empty());
        let x = values(2 * k, 2);
        let with = packed.product(&x, 2, Some(&[0.0; 3]));
        assert_eq!(packed.product(&x, 2, None), with);
    }
}

#[cfg(test)]
mod timing {
    /// A rough timing against the f32 product on all cores (`cargo test --release --lib
    /// kernels::int8::timing -- --ignored --nocapture`): MiniLM's FFN shapes at 32 × 128 tokens.
    #[test]
    #[ignore]
    fn int8_against_f32() {
        use super::super::packed::timing::{fp32, operands, seconds};
        use super::*;
        for (rows, k, n) in [(4096, 384, 1536), (4096, 1536, 384), (4096, 384, 384)] {
            let (x, w) = operands(rows, k, n);
            let packed = PackedInt8::pack(&w, n, k);
            let int8 = seconds(&mut || {
                std::hint::black_box(packed.product(&x, rows, None));
            });
            let (f32t, gop) = fp32(&x, &w, rows, k, n);
            let vnni_only = if Kernel::Vnni.available(packed.k4) {
                seconds(&mut || {
                    std::hint::black_box(product_by(Kernel::Vnni, &x, rows, &packed, None));
                })
            } else {
                f64::NAN
            };
            println!(
                "{rows}×{k}→{n}: int8 ({:?}) {:.2} ms ({:.0} GOP/s; VNNI {:.2} ms), f32 {:.2} ms ({:.0} GFLOP/s)",
                Kernel::best(packed.k4),
                int8 * 1e3,
                gop / int8,
                vnni_only * 1e3,
                f32t * 1e3,
                gop / f32t
            );
        }
    }
}
