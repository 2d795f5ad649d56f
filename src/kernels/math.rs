//! Vectorisable math for the fused kernels, and runtime selection of the widest SIMD level.
//!
//! burn's CPU backend calls libm's scalar `expf`/`erff`; written branch-free over plain slices,
//! these compile to AVX-512 / AVX2 loops. Each kernel body is an `#[inline(always)]` generic
//! function; [`simd!`] instantiates it once per instruction set and picks one at run time.

use super::tensor::Real;

/// `e^x` to within 2 ulp for f32 (Cephes' polynomial on `x - n ln 2`, then `2^n` by exponent
/// bits); inputs below -87.3 give ~1e-38 rather than 0, which no softmax sum can notice.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting it rounds to integer
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    // n sits in the low mantissa bits of t; taking it from there (instead of `n as i32`, whose
    // NaN / saturation rules block vectorisation) keeps the whole function in SIMD registers.
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    y * f32::from_bits(((n + 127) << 23) as u32)
}

/// `erf(x)` to within 5e-7 absolute (a rational minimax approximation on [-4, 4], beyond
/// which erf is ±1 in f32), branch-free.
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_6e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_473_9e-2;
    x * p / q
}

/// Float operations with a fast path for f32 and exact std math for f64 (the f64 instances
/// serve the finite-difference checks).
pub(crate) trait FastMath: Real {
    fn fexp(self) -> Self;
    fn ferf(self) -> Self;
}

impl FastMath for f32 {
    #[inline(always)]
    fn fexp(self) -> f32 {
        exp_f32(self)
    }
    #[inline(always)]
    fn ferf(self) -> f32 {
        erf_f32(self)
    }
}

impl FastMath for f64 {
    #[inline(always)]
    fn fexp(self) -> f64 {
        self.exp()
    }
    #[inline(always)]
    fn ferf(self) -> f64 {
        libm::erf(self)
    }
}

/// `tanh(x) = 1 − 2 / (e^{2x} + 1)`, the exponent clamped at 40 so that `e^{2x}` stays finite
/// (beyond it the result is exactly 1 in f32 and f64 alike).
#[inline(always)]
pub(crate) fn tanh<T: FastMath>(x: T) -> T {
    let two = T::one() + T::one();
    T::one() - two / ((two * x).min(T::from(40.0).unwrap()).fexp() + T::one())
}

/// Lanes for explicit reductions: LLVM keeps one vector accumulator per lane group.
pub(crate) const LANES: usize = 16;

/// Maximum of a slice (vectorised reduction).
#[inline(always)]
pub fn max<T: Real>(v: &[T]) -> T {
    let mut acc = [T::neg_infinity(); LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = acc[l].max(c[l]);
        }
    }
    let mut m = tail.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    for a in acc {
        m = m.max(a);
    }
    m
}

/// Sum of `f(x)` over a slice (vectorised reduction).
#[inline(always)]
pub(crate) fn sum_map<T: Real>(v: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::zero(); LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = acc[l] + f(c[l]);
        }
    }
    tail.iter()
        .fold(acc.iter().fold(T::zero(), |s, &a| s + a), |s, &x| s + f(x))
}

/// Element-wise sum of per-task partial vectors, in task order: rayon's own fold/reduce would
/// combine them in a schedule-dependent order, and training must give the same bits every run.
pub(crate) fn sum_in_order<T: Real>(partials: Vec<Vec<T>>) -> Vec<T> {
    let mut it = partials.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for p in it {
        acc.iter_mut().zip(p).for_each(|(a, b)| *a = *a + b);
    }
    acc
}

/// Defines `$name`, which runs `$body` compiled for AVX-512, AVX2+FMA or the baseline,
/// whichever this CPU has (detected once, cached by the standard library).
macro_rules! simd {
    ($(#[$meta:meta])* $vis:vis fn $name:ident<$T:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$T: $bound>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic<$T: $bound>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512<$T: $bound>($($arg: $ty),*) $(-> $ret)? { generic::<$T>($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<$T: $bound>($($arg: $ty),*) $(-> $ret)? { generic::<$T>($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU supports every feature the function was compiled for.
                    return unsafe { avx512::<$T>($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2::<$T>($($arg),*) };
                }
            }
            generic::<$T>($($arg),*)
        }
    };
}
pub(crate) use simd;

simd! {
    /// `a · b` (vectorised, for whichever SIMD this CPU has).
    pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
        let mut acc = [T::zero(); LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail = ca.remainder().iter().zip(cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..LANES {
                acc[l] = acc[l] + x[l] * y[l];
            }
        }
        tail.fold(acc.iter().fold(T::zero(), |s, &a| s + a), |s, (&x, &y)| s + x * y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_double_precision_sum_at_every_tail_length() {
        for n in [0, 1, 15, 16, 17, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let got = dot(&a, &b) as f64;
            assert!(
                (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                "{n}: {got} vs {exact}"
            );
        }
    }

    /// Relative error in units of f32 epsilon over a dense sweep.
    #[test]
    fn exp_is_accurate_to_two_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = (x as f64).exp();
            let rel = ((exp_f32(x) as f64 - exact) / exact).abs() / f32::EPSILON as f64;
            worst = worst.max(rel);
            x += 0.001;
        }
        assert!(worst < 2.0, "worst relative error {worst} ulp");
        assert!(exp_f32(-1e30) < 1e-37 && exp_f32(-1e30) >= 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn erf_is_accurate() {
        let mut worst = 0f64;
        let mut x = -6.0f32;
        while x < 6.0 {
            worst = worst.max((erf_f32(x) as f64 - libm::erf(x as f64)).abs());
            x += 0.0005;
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
    }

    #[test]
    fn reductions_cover_tails() {
        let v: Vec<f64> = (0..37).map(|i| ((i * 7919) % 101) as f64 - 50.0).collect();
        assert_eq!(max(&v), v.iter().cloned().fold(f64::MIN, f64::max));
        assert_eq!(sum_map(&v, |x| x * 2.0), v.iter().sum::<f64>() * 2.0);
    }
}
