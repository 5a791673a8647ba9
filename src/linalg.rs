//! Matrix products. Every product in the crate goes through this module.
//!
//! All matrices are row-major slices. The three variants the layers need:
//!
//! ```text
//! matmul       C[m,n] = β·C + A[m,k] · B[k,n]
//! matmul_at_b  C[m,n] = β·C + A[k,m]ᵀ · B[k,n]
//! matmul_a_bt  C[m,n] = β·C + A[m,k] · B[n,k]ᵀ
//! ```
//!
//! The kernel is `matrixmultiply`'s single-threaded GEMM (the role BLAS plays
//! for NumPy). Large products are split across the rayon pool by blocks of
//! rows of C (unless called from inside a parallel loop, where they stay on
//! the calling thread); each element of C is still computed by one thread with the same
//! summation order, so results do not depend on the number of threads.
//! [`matmul_naive`] is the reference the tests compare against.
//!
//! The dense layer's two products have their own entry points on [`Scalar`],
//! on strided rows and always on the calling thread:
//!
//! ```text
//! gemm_nt      C[m,n] += A[m,k] · B[n,k]ᵀ       (forward X·Wᵀ)
//! gemm_tn      C[m,n]  = A[k,m]ᵀ · B[k,n]       (∂W = δᵀ·X)
//! ```
//!
//! For f32 on CPUs with AVX-512 they run the packing-free kernels of
//! `linalg/avx512.rs`; elsewhere, `matrixmultiply`.

use rayon::prelude::*;

use crate::layers::conv2d::Conv2d;
use crate::layers::{conv_wide, dense_narrow};

#[cfg(target_arch = "x86_64")]
mod avx512;

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

    /// y ← y + a·x
    fn axpy(y: &mut [Self], a: Self, x: &[Self]) {
        axpy_generic(y, a, x);
    }

    /// Σ aᵢ·bᵢ, summed in eight interleaved partial sums (a fixed order).
    fn dot(a: &[Self], b: &[Self]) -> Self {
        dot_generic(a, b)
    }

    /// Whether [`Scalar::conv_wide_forward`] and [`Scalar::conv_wide_d_weight`]
    /// have fast kernels on this CPU (then the convolution uses them for every shape).
    fn conv_wide_fast() -> bool {
        false
    }

    /// A convolution's output maps with their epilogue, `[F, OS, OS]`
    /// ([`conv_wide`]; `wide` is scratch of F·L values, which a kernel may not use).
    fn conv_wide_forward(
        c: &Conv2d,
        img: &[Self],
        w: &[Self],
        epi: conv_wide::Epilogue<Self>,
        wide: &mut [Self],
        out: &mut [Self],
    ) {
        conv_wide::forward_compact_portable(c, img, w, epi, wide, out)
    }

    /// δ laid out wide, with ReLU's backward when `h` is given ([`conv_wide`]).
    fn conv_wide_delta(c: &Conv2d, d_z: &[Self], h: Option<&[Self]>, wide: &mut [Self]) {
        conv_wide::delta_portable(c, d_z, h, wide)
    }

    /// A convolution's ∂W partial sums in 16 lanes ([`conv_wide`]).
    fn conv_wide_d_weight(c: &Conv2d, img: &[Self], delta: &[Self], lanes: &mut [Self]) {
        conv_wide::d_weight_portable(c, img, delta, lanes)
    }

    /// A convolution's ∂W partial sums in 16 lanes from δ in the compact
    /// layout, masked in place by ReLU's backward when `h` is given
    /// ([`conv_wide::d_weight_compact_portable`]).
    fn conv_compact_d_weight(
        c: &Conv2d,
        img: &[Self],
        delta: &mut [Self],
        h: Option<&[Self]>,
        lanes: &mut [Self],
    ) {
        conv_wide::d_weight_compact_portable(c, img, delta, h, lanes)
    }

    /// Y += X·Wᵀ for a dense layer with ten outputs ([`dense_narrow`]).
    fn narrow_forward(batch: usize, x: &[Self], w: &[Self], y: &mut [Self]) {
        dense_narrow::forward_generic(batch, x, w, y)
    }

    /// ∂W = δᵀ·X for a dense layer with ten outputs ([`dense_narrow`]).
    fn narrow_d_weight(batch: usize, x: &[Self], d_y: &[Self], d_w: &mut [Self]) {
        dense_narrow::d_weight_generic(batch, x, d_y, d_w)
    }

    /// ∂X = δ·W for a dense layer with ten outputs ([`dense_narrow`]).
    fn narrow_d_input(batch: usize, d_y: &[Self], w: &[Self], d_x: &mut [Self]) {
        dense_narrow::d_input_generic(batch, d_y, w, d_x)
    }

    /// z ← σ(z) for every value ([`crate::layers::sigmoid`]).
    fn sigmoid_slice(z: &mut [Self]) {
        for v in z {
            *v = crate::layers::sigmoid::sigmoid(*v);
        }
    }

    /// C[i, j] += Σ_k A[i, k]·B[j, k] (i < m, j < n): a dense layer's forward
    /// X·Wᵀ, on row-major matrices with row strides `lda`, `ldb`, `ldc`.
    /// On the calling thread; each element's sum runs in an order that does
    /// not depend on m or n, so a product cut into blocks of rows or columns
    /// gives the same bits as the whole.
    #[allow(clippy::too_many_arguments)]
    fn gemm_nt(
        m: usize,
        n: usize,
        k: usize,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        c: &mut [Self],
        ldc: usize,
    ) {
        gemm_nt_portable(m, n, k, a, lda, b, ldb, c, ldc)
    }

    /// C[i, j] = Σ_p A[p, i]·B[p, j] (i < m, j < n, p < kp; C overwritten): a
    /// dense layer's ∂W = δᵀ·X. Same conventions as [`gemm_nt`](Self::gemm_nt).
    #[allow(clippy::too_many_arguments)]
    fn gemm_tn(
        m: usize,
        n: usize,
        kp: usize,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        c: &mut [Self],
        ldc: usize,
    ) {
        gemm_tn_portable(m, n, kp, a, lda, b, ldb, c, ldc)
    }
}

/// [`Scalar::gemm_nt`] through `matrixmultiply`.
#[allow(clippy::too_many_arguments)]
fn gemm_nt_portable<T: Scalar>(
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

/// [`Scalar::gemm_tn`] through `matrixmultiply`.
#[allow(clippy::too_many_arguments)]
fn gemm_tn_portable<T: Scalar>(
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
    // SAFETY: as in gemm_nt_portable; A[p, i] is read as the m×kp matrix Aᵀ.
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
fn check_nt<T>(m: usize, n: usize, k: usize, a: &[T], lda: usize, b: &[T], ldb: usize, c: &[T], ldc: usize) {
    check_strided("A", m, k, lda, a.len());
    check_strided("B", n, k, ldb, b.len());
    check_strided("C", m, n, ldc, c.len());
}

/// Panics unless A `[kp, m]`, B `[kp, n]` and C `[m, n]` fit in their slices at their strides.
#[allow(clippy::too_many_arguments)]
fn check_tn<T>(m: usize, n: usize, kp: usize, a: &[T], lda: usize, b: &[T], ldb: usize, c: &[T], ldc: usize) {
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

#[inline(always)]
fn axpy_generic<T: Scalar>(y: &mut [T], a: T, x: &[T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[inline(always)]
fn dot_generic<T: Scalar>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: T = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&x, &y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().copied().sum::<T>() + tail
}

/// The same loops compiled for AVX2 (8 floats a step), chosen at run time. The
/// arithmetic is identical (no fused multiply-add), so results do not depend
/// on which version runs.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        super::axpy_generic(y, a, x)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_generic(a, b)
    }

    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx2")
    }
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

    fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            // SAFETY: the CPU supports AVX2.
            return unsafe { avx2::axpy(y, a, x) };
        }
        axpy_generic(y, a, x)
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            // SAFETY: the CPU supports AVX2.
            return unsafe { avx2::dot(a, b) };
        }
        dot_generic(a, b)
    }

    fn conv_wide_fast() -> bool {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            return true;
        }
        false
    }

    fn conv_wide_forward(
        c: &Conv2d,
        img: &[f32],
        w: &[f32],
        epi: conv_wide::Epilogue<f32>,
        wide: &mut [f32],
        out: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { conv_wide::avx512::forward(c, img, w, epi, wide, out) };
        }
        conv_wide::forward_compact_portable(c, img, w, epi, wide, out)
    }

    fn conv_wide_delta(c: &Conv2d, d_z: &[f32], h: Option<&[f32]>, wide: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { conv_wide::avx512::delta(c, d_z, h, wide) };
        }
        conv_wide::delta_portable(c, d_z, h, wide)
    }

    fn conv_wide_d_weight(c: &Conv2d, img: &[f32], delta: &[f32], lanes: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { conv_wide::avx512::d_weight(c, img, delta, lanes) };
        }
        conv_wide::d_weight_portable(c, img, delta, lanes)
    }

    fn conv_compact_d_weight(
        c: &Conv2d,
        img: &[f32],
        delta: &mut [f32],
        h: Option<&[f32]>,
        lanes: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { conv_wide::avx512::d_weight_compact(c, img, delta, h, lanes) };
        }
        conv_wide::d_weight_compact_portable(c, img, delta, h, lanes)
    }

    fn narrow_forward(batch: usize, x: &[f32], w: &[f32], y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { dense_narrow::avx512::forward(batch, x, w, y) };
        }
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            // SAFETY: the CPU supports AVX2.
            return unsafe { dense_narrow::avx2::forward(batch, x, w, y) };
        }
        dense_narrow::forward_generic(batch, x, w, y)
    }

    fn narrow_d_weight(batch: usize, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { dense_narrow::avx512::d_weight(batch, x, d_y, d_w) };
        }
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            // SAFETY: the CPU supports AVX2.
            return unsafe { dense_narrow::avx2::d_weight(batch, x, d_y, d_w) };
        }
        dense_narrow::d_weight_generic(batch, x, d_y, d_w)
    }

    fn narrow_d_input(batch: usize, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { dense_narrow::avx512::d_input(batch, d_y, w, d_x) };
        }
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            // SAFETY: the CPU supports AVX2.
            return unsafe { dense_narrow::avx2::d_input(batch, d_y, w, d_x) };
        }
        dense_narrow::d_input_generic(batch, d_y, w, d_x)
    }

    fn sigmoid_slice(z: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { avx512::sigmoid(z) };
        }
        for v in z {
            *v = crate::layers::sigmoid::sigmoid(*v);
        }
    }

    fn gemm_nt(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            check_nt(m, n, k, a, lda, b, ldb, c, ldc);
            // SAFETY: the CPU supports AVX-512F and the check above keeps every
            // access inside the slices.
            return unsafe {
                avx512::gemm_nt(m, n, k, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc)
            };
        }
        gemm_nt_portable(m, n, k, a, lda, b, ldb, c, ldc)
    }

    fn gemm_tn(
        m: usize,
        n: usize,
        kp: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            check_tn(m, n, kp, a, lda, b, ldb, c, ldc);
            // SAFETY: as in gemm_nt.
            return unsafe {
                avx512::gemm_tn(m, n, kp, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc)
            };
        }
        gemm_tn_portable(m, n, kp, a, lda, b, ldb, c, ldc)
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

/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 18;

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
    let threads = rayon::current_num_threads();
    // Called from inside a parallel loop (a pool worker), the product stays on
    // that thread: parallelism is never nested.
    let nested = rayon::current_thread_index().is_some();
    let blocks = if m * n * k < PARALLEL_MIN_WORK || threads == 1 || nested {
        1
    } else {
        threads.min(m)
    };
    let rows_per = m.div_ceil(blocks);
    let run = |(i, c_block): (usize, &mut [T])| {
        let r0 = i * rows_per;
        let rows = c_block.len() / n;
        let a_off = r0 as isize * rsa;
        // SAFETY: rows r0..r0+rows of A (offset a_off) lie inside `a`, B is whole,
        // and c_block is exactly rows×n of C with row stride n.
        unsafe {
            T::gemm(
                rows,
                k,
                n,
                a.as_ptr().offset(a_off),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                beta,
                c_block.as_mut_ptr(),
                n as isize,
            )
        }
    };
    if blocks == 1 {
        run((0, c));
    } else {
        c.par_chunks_mut(rows_per * n).enumerate().for_each(run);
    }
}

/// C[m,n] = β·C + A[m,k]·B[k,n]
pub fn matmul<T: Scalar>(m: usize, k: usize, n: usize, a: &[T], b: &[T], beta: T, c: &mut [T]) {
    gemm_rows(m, k, n, a, Layout::Normal, b, Layout::Normal, beta, c);
}

/// C[m,n] = β·C + A[k,m]ᵀ·B[k,n]  (A is stored k×m)
pub fn matmul_at_b<T: Scalar>(m: usize, k: usize, n: usize, a: &[T], b: &[T], beta: T, c: &mut [T]) {
    gemm_rows(m, k, n, a, Layout::Transposed, b, Layout::Normal, beta, c);
}

/// C[m,n] = β·C + A[m,k]·B[n,k]ᵀ  (B is stored n×k)
pub fn matmul_a_bt<T: Scalar>(m: usize, k: usize, n: usize, a: &[T], b: &[T], beta: T, c: &mut [T]) {
    gemm_rows(m, k, n, a, Layout::Normal, b, Layout::Transposed, beta, c);
}

/// Reference: C[i,j] = β·C[i,j] + Σ_p A(i,p)·B(p,j) with `at`/`bt` saying
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn vector_kernels_match_their_portable_versions_exactly() {
        let mut rng = Rng::new(13, 0);
        for n in [0, 1, 7, 8, 9, 610, 1000] {
            let a = random(n, &mut rng);
            let b = random(n, &mut rng);
            assert_eq!(f32::dot(&a, &b).to_bits(), dot_generic(&a, &b).to_bits());
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((f32::dot(&a, &b) as f64 - want).abs() < 1e-4 * (n as f64).sqrt().max(1.0));
            let (mut y1, mut y2) = (b.clone(), b.clone());
            f32::axpy(&mut y1, 0.37, &a);
            axpy_generic(&mut y2, 0.37, &a);
            assert_eq!(y1, y2);
        }
    }

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

    /// A[rows, cols] embedded at row stride `ld` in a larger random buffer.
    fn strided(rows: usize, cols: usize, ld: usize, rng: &mut Rng) -> Vec<f32> {
        random(if rows == 0 { 0 } else { (rows - 1) * ld + cols }, rng)
    }

    #[test]
    fn strided_dense_products_match_naive_and_do_not_depend_on_blocking() {
        let mut rng = Rng::new(14, 0);
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (5, 6, 16),
            (9, 70, 33),
            (128, 129, 784),
            (17, 200, 64),
        ] {
            let (lda, ldb, ldc) = (k + 3, k + 1, n + 2);
            let a = strided(m, k, lda, &mut rng);
            let b = strided(n, k, ldb, &mut rng);
            let c0 = strided(m, n, ldc, &mut rng);
            // nt: C += A·Bᵀ, against f64 sums; the padding between rows untouched.
            let mut c = c0.clone();
            f32::gemm_nt(m, n, k, &a, lda, &b, ldb, &mut c, ldc);
            let mut portable = c0.clone();
            gemm_nt_portable(m, n, k, &a, lda, &b, ldb, &mut portable, ldc);
            for i in 0..m {
                for j in 0..n {
                    let want = c0[i * ldc + j] as f64
                        + (0..k)
                            .map(|p| a[i * lda + p] as f64 * b[j * ldb + p] as f64)
                            .sum::<f64>();
                    close(&[c[i * ldc + j]], &[want as f32], k);
                    close(&[portable[i * ldc + j]], &[want as f32], k);
                }
                assert_eq!(
                    c[i * ldc + n..(i * ldc + ldc).min(c.len())],
                    c0[i * ldc + n..(i * ldc + ldc).min(c.len())]
                );
            }
            // The same product cut into a block of rows and a block of columns: the same bits.
            if m > 2 && n > 2 {
                let mut cut = c0.clone();
                let (m1, n1) = (m / 2 + 1, n / 3 + 1);
                f32::gemm_nt(m1, n, k, &a, lda, &b, ldb, &mut cut, ldc);
                f32::gemm_nt(
                    m - m1,
                    n1,
                    k,
                    &a[m1 * lda..],
                    lda,
                    &b,
                    ldb,
                    &mut cut[m1 * ldc..],
                    ldc,
                );
                f32::gemm_nt(
                    m - m1,
                    n - n1,
                    k,
                    &a[m1 * lda..],
                    lda,
                    &b[n1 * ldb..],
                    ldb,
                    &mut cut[m1 * ldc + n1..],
                    ldc,
                );
                assert_eq!(cut, c);
            }
            // tn: C = Aᵀ·B with A [k, m] and B [k, n].
            let (at, bt) = (strided(k, m, m + 1, &mut rng), strided(k, n, n + 5, &mut rng));
            let mut c = c0.clone();
            f32::gemm_tn(m, n, k, &at, m + 1, &bt, n + 5, &mut c, ldc);
            let mut portable = c0.clone();
            gemm_tn_portable(m, n, k, &at, m + 1, &bt, n + 5, &mut portable, ldc);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|p| at[p * (m + 1) + i] as f64 * bt[p * (n + 5) + j] as f64)
                        .sum();
                    close(&[c[i * ldc + j]], &[want as f32], k);
                    close(&[portable[i * ldc + j]], &[want as f32], k);
                }
            }
            if m > 2 && n > 2 {
                let mut cut = c0.clone();
                let (m1, n1) = (m / 2 + 1, n / 3 + 1);
                f32::gemm_tn(m1, n, k, &at, m + 1, &bt, n + 5, &mut cut, ldc);
                f32::gemm_tn(
                    m - m1,
                    n1,
                    k,
                    &at[m1..],
                    m + 1,
                    &bt,
                    n + 5,
                    &mut cut[m1 * ldc..],
                    ldc,
                );
                f32::gemm_tn(
                    m - m1,
                    n - n1,
                    k,
                    &at[m1..],
                    m + 1,
                    &bt[n1..],
                    n + 5,
                    &mut cut[m1 * ldc + n1..],
                    ldc,
                );
                assert_eq!(cut, c);
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn strided_product_refuses_a_short_slice() {
        let a = [0.0f32; 10];
        let mut c = [0.0f32; 4];
        f32::gemm_nt(2, 2, 6, &a, 6, &a, 6, &mut c, 2);
    }

    #[test]
    fn result_does_not_depend_on_thread_count() {
        let mut rng = Rng::new(12, 0);
        let (m, k, n) = (256, 300, 200);
        let a = random(m * k, &mut rng);
        let b = random(k * n, &mut rng);
        let mut one = vec![0.0; m * n];
        let mut two = vec![0.0; m * n];
        let p1 = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let p3 = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        p1.install(|| matmul(m, k, n, &a, &b, 0.0, &mut one));
        p3.install(|| matmul(m, k, n, &a, &b, 0.0, &mut two));
        assert_eq!(one, two);
    }
}
