//! Strided matrix products through the `gemm` crate that burn's CPU backend uses too: many
//! small ones for the attention kernel (one thread each), large ones for the linear layers (all
//! cores).

use super::tensor::Real;

/// A matrix view: a slice with row and column strides (in elements).
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `rows × cols` matrix.
    pub fn rows(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    pub fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            assert!(
                (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len(),
                "matrix view out of bounds"
            );
        }
    }
}

/// `out = scale · a b` (or `out += scale · a b` when `accumulate`) on the calling thread; `out`
/// is row-major `m × n`. For the many small products of a kernel that already runs its tasks in
/// parallel.
pub(crate) fn matmul<T: Real>(out: &mut [T], a: Mat<T>, b: Mat<T>, scale: T, accumulate: bool) {
    product(out, a, b, scale, accumulate, gemm::Parallelism::None);
}

/// The same on every thread of the rayon pool, for one large product.
pub(crate) fn matmul_all_cores<T: Real>(
    out: &mut [T],
    a: Mat<T>,
    b: Mat<T>,
    scale: T,
    accumulate: bool,
) {
    product(out, a, b, scale, accumulate, gemm::Parallelism::Rayon(0));
}

fn product<T: Real>(
    out: &mut [T],
    a: Mat<T>,
    b: Mat<T>,
    scale: T,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions");
    assert_eq!(out.len(), m * n, "output size");
    a.check();
    b.check();
    // SAFETY: the views were bounds-checked above, `out` holds exactly m × n elements, and
    // gemm supports f32 and f64 (the only `Real` types).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            T::one(),
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}
