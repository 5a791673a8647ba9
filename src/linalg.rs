//! Matrix products: the textbook wing's only arithmetic kernels, in plain
//! Rust over `matrixmultiply` (the role BLAS plays for NumPy in the report).
//!
//! All matrices are row-major slices. The three products the layers need:
//!
//! ```text
//! matmul       C[m,n] = β·C + A[m,k] · B[k,n]
//! matmul_at_b  C[m,n] = β·C + A[k,m]ᵀ · B[k,n]
//! matmul_a_bt  C[m,n] = β·C + A[m,k] · B[n,k]ᵀ
//! ```
//! and the same two on strided rows, as the dense layer uses them:
//!
//! ```text
//! gemm_nt      C[m,n] += A[m,k] · B[n,k]ᵀ       (forward X·Wᵀ)
//! gemm_tn      C[m,n]  = A[k,m]ᵀ · B[k,n]       (∂W = δᵀ·X)
//! ```
//! Every product runs on the calling thread (the training step decides how
//! work is spread, `train`). [`matmul_naive`] is the triple loop the tests
//! compare against. The few scalar helpers both wings share (the ReLU mask,
//! the fixed-order lane sum) live here too, so they are written once.

use crate::rng::Rng;

/// Floating-point element type of tensors: f32 for training, f64 for gradient checks.
pub trait Scalar:
    num_traits::Float
    + num_traits::FromPrimitive
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + Default
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// Raw strided GEMM: C = α·A·B + β·C.
    ///
    /// # Safety
    /// The pointers and strides must describe valid, non-overlapping m×k, k×n
    /// and m×n matrices.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
    );

    fn of(v: f64) -> Self {
        Self::from_f64(v).expect("representable")
    }
}

/// C[i, j] += Σ_k A[i, k]·B[j, k] (i < m, j < n): a dense layer's forward
/// X·Wᵀ, on row-major matrices with row strides `lda`, `ldb`, `ldc`.
/// Each element's sum runs in an order that does not depend on m or n, so a
/// product cut into blocks of rows or columns gives the same bits as the whole.
#[allow(clippy::too_many_arguments)]
pub fn gemm_nt<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
) {
    check_nt(m, n, k, a, lda, b, ldb, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the checks above keep every access inside the slices; C is a
    // distinct &mut slice. B[j, k] is read as the k×n matrix Bᵀ.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            a.as_ptr(),
            lda as isize,
            1,
            b.as_ptr(),
            1,
            ldb as isize,
            T::one(),
            c.as_mut_ptr(),
            ldc as isize,
        )
    }
}

/// C[i, j] = Σ_p A[p, i]·B[p, j] (i < m, j < n, p < kp; C overwritten): a
/// dense layer's ∂W = δᵀ·X. Same conventions as [`gemm_nt`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_tn<T: Scalar>(
    m: usize,
    n: usize,
    kp: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
) {
    check_tn(m, n, kp, a, lda, b, ldb, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: as in gemm_nt; A[p, i] is read as the m×kp matrix Aᵀ.
    unsafe {
        T::gemm(
            m,
            kp,
            n,
            a.as_ptr(),
            1,
            lda as isize,
            b.as_ptr(),
            ldb as isize,
            1,
            T::zero(),
            c.as_mut_ptr(),
            ldc as isize,
        )
    }
}

/// Panics unless A `[m, k]`, B `[n, k]` and C `[m, n]` fit in their slices at their strides.
#[allow(clippy::too_many_arguments)]
pub fn check_nt<T>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &[T],
    ldc: usize,
) {
    check_strided("A", m, k, lda, a.len());
    check_strided("B", n, k, ldb, b.len());
    check_strided("C", m, n, ldc, c.len());
}

/// Panics unless A `[kp, m]`, B `[kp, n]` and C `[m, n]` fit in their slices at their strides.
#[allow(clippy::too_many_arguments)]
pub fn check_tn<T>(
    m: usize,
    n: usize,
    kp: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &[T],
    ldc: usize,
) {
    check_strided("A", kp, m, lda, a.len());
    check_strided("B", kp, n, ldb, b.len());
    check_strided("C", m, n, ldc, c.len());
}

/// Panics unless a slice of `len` holds `rows` rows of `cols` values at stride `ld`.
fn check_strided(name: &str, rows: usize, cols: usize, ld: usize, len: usize) {
    assert!(
        rows == 0 || cols == 0 || (ld >= cols && (rows - 1) * ld + cols <= len),
        "{name}: {rows}×{cols} at row stride {ld} does not fit in {len} elements"
    );
}

impl Scalar for f32 {
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
    ) {
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, 1) }
    }
}

impl Scalar for f64 {
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
    ) {
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, 1) }
    }
}

/// How A is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// stored as written
    Normal,
    /// stored transposed
    Transposed,
}

#[allow(clippy::too_many_arguments)]
fn gemm_rows<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    la: Layout,
    b: &[T],
    lb: Layout,
    beta: T,
    c: &mut [T],
) {
    assert_eq!(a.len(), m * k, "A has {} elements, expected {m}×{k}", a.len());
    assert_eq!(b.len(), k * n, "B has {} elements, expected {k}×{n}", b.len());
    assert_eq!(c.len(), m * n, "C has {} elements, expected {m}×{n}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    // (row stride, column stride) of A as an m×k and of B as a k×n matrix.
    let (rsa, csa) = match la {
        Layout::Normal => (k as isize, 1),
        Layout::Transposed => (1, m as isize),
    };
    let (rsb, csb) = match lb {
        Layout::Normal => (n as isize, 1),
        Layout::Transposed => (1, k as isize),
    };
    // SAFETY: A, B and C are whole m×k, k×n and m×n matrices at these strides
    // (checked above), and C is a distinct &mut slice.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
        )
    }
}

/// C\[m,n\] = β·C + A\[m,k\]·B\[k,n\]
pub fn matmul<T: Scalar>(m: usize, k: usize, n: usize, a: &[T], b: &[T], beta: T, c: &mut [T]) {
    gemm_rows(m, k, n, a, Layout::Normal, b, Layout::Normal, beta, c);
}

/// C\[m,n\] = β·C + A\[k,m\]ᵀ·B\[k,n\]  (A is stored k×m)
pub fn matmul_at_b<T: Scalar>(m: usize, k: usize, n: usize, a: &[T], b: &[T], beta: T, c: &mut [T]) {
    gemm_rows(m, k, n, a, Layout::Transposed, b, Layout::Normal, beta, c);
}

/// C\[m,n\] = β·C + A\[m,k\]·B\[n,k\]ᵀ  (B is stored n×k)
pub fn matmul_a_bt<T: Scalar>(m: usize, k: usize, n: usize, a: &[T], b: &[T], beta: T, c: &mut [T]) {
    gemm_rows(m, k, n, a, Layout::Normal, b, Layout::Transposed, beta, c);
}

/// Reference: C\[i,j\] = β·C\[i,j\] + Σ_p A(i,p)·B(p,j) with `at`/`bt` saying
/// whether A / B are stored transposed. Triple loop, no blocking.
#[allow(clippy::too_many_arguments)]
pub fn matmul_naive<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    at: bool,
    b: &[T],
    bt: bool,
    beta: T,
    c: &mut [T],
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = T::zero();
            for p in 0..k {
                let av = if at { a[p * m + i] } else { a[i * k + p] };
                let bv = if bt { b[j * k + p] } else { b[p * n + j] };
                s += av * bv;
            }
            c[i * n + j] = if beta == T::zero() {
                s
            } else {
                beta * c[i * n + j] + s
            };
        }
    }
}

/// What ReLU's backward keeps of the gradient g at a unit whose output is h:
/// g where h > 0, else 0 (NaN counts as not positive). Every ReLU mask in the
/// crate, textbook or fast, computes this.
#[inline(always)]
pub fn relu_mask<T: Scalar>(h: T, g: T) -> T {
    if h > T::zero() { g } else { T::zero() }
}

/// Interleaved partial sums per lane of a fixed-order reduction.
pub const LANES: usize = 16;

/// Σ v in [`LANES`] interleaved partial sums, then the partial sums in order:
/// a fixed order that vectorises (a plain left-to-right sum is one long
/// dependency chain).
pub fn lane_sum<T: Scalar>(v: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += x;
    }
    fold_lanes(&acc)
}

/// The lanes of a partial sum added in order, from zero.
#[inline(always)]
pub fn fold_lanes<T: Scalar>(lanes: &[T]) -> T {
    lanes.iter().fold(T::zero(), |s, &a| s + a)
}

/// N(0, 1) values (test inputs).
pub fn random_vec<T: Scalar>(n: usize, rng: &mut Rng) -> Vec<T> {
    (0..n).map(|_| T::of(rng.normal())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    fn close(a: &[f32], b: &[f32], k: usize) {
        // f32 sums of k products of N(0,1) values: rounding error grows like √k·ε·|terms|.
        let tol = 1e-5 * (k as f32).sqrt() * 4.0;
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn all_variants_match_naive_on_odd_and_parallel_shapes() {
        let mut rng = Rng::new(11, 0);
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (17, 33, 9), (128, 784, 64), (200, 64, 130)] {
            let a = random(m * k, &mut rng);
            let b = random(k * n, &mut rng);
            let c0 = random(m * n, &mut rng);
            for (at, bt) in [(false, false), (true, false), (false, true)] {
                for beta in [0.0f32, 1.0] {
                    let mut want = c0.clone();
                    matmul_naive(m, k, n, &a, at, &b, bt, beta, &mut want);
                    let mut got = c0.clone();
                    match (at, bt) {
                        (false, false) => matmul(m, k, n, &a, &b, beta, &mut got),
                        (true, false) => matmul_at_b(m, k, n, &a, &b, beta, &mut got),
                        _ => matmul_a_bt(m, k, n, &a, &b, beta, &mut got),
                    }
                    close(&got, &want, k);
                }
            }
        }
    }

    // The strided products (gemm_nt, gemm_tn) are the portable level's, and
    // `kernels::gemm`'s tests check every level against f64 sums and cut
    // into blocks.

    #[test]
    #[should_panic(expected = "does not fit")]
    fn strided_product_refuses_a_short_slice() {
        let a = [0.0f32; 10];
        let mut c = [0.0f32; 4];
        gemm_nt(2, 2, 6, &a, 6, &a, 6, &mut c, 2);
    }
}
