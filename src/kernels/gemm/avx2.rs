//! The dense layer's forward product for AVX2 with FMA, without packing: the
//! algorithm of `avx512.rs`'s `gemm_nt` at 8 lanes with 16 registers. A 4×3
//! block of C is twelve dot products over k: each step loads 8 values of k
//! from four rows of A and three rows of B and does 12 fused multiply-adds
//! into 12 accumulators; the 8 lanes of each are summed at the end by a fixed
//! tree. Each element's sum runs in a fixed order whatever block it is
//! computed in, so a product cut by rows or columns gives the same bits as
//! the whole. Edges reuse the last row or column and store only the valid
//! results; the last k < 8 values are read with masked loads. Tested in
//! `kernels::gemm` against f64 sums and cut into blocks.

// Register blocks are indexed by row and column.
#![allow(clippy::needless_range_loop)]
use std::arch::x86_64::*;

/// A lane mask selecting the first `n` (≤ 8) of 8 lanes.
#[target_feature(enable = "avx2")]
fn first_lanes(n: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx)
}

/// Σ of the 8 lanes of `v`, by a fixed tree.
#[target_feature(enable = "avx2")]
fn sum8(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}

/// C[i, j] += Σ_k A[i, k]·B[j, k] for i < m, j < n.
///
/// # Safety
/// The CPU must support AVX2 and FMA; A must hold m rows of k values at
/// stride `lda`, B n rows of k at stride `ldb`, C m rows of n at stride
/// `ldc`, and C must not overlap A or B.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_nt(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let main = k / 8 * 8;
    let tail = first_lanes(k - main);
    unsafe {
        for j0 in (0..n).step_by(3) {
            let bj: [*const f32; 3] = std::array::from_fn(|j| b.add((j0 + j).min(n - 1) * ldb));
            for i0 in (0..m).step_by(4) {
                let ai: [*const f32; 4] = std::array::from_fn(|i| a.add((i0 + i).min(m - 1) * lda));
                let mut acc = [[_mm256_setzero_ps(); 3]; 4];
                let mut kk = 0;
                while kk < main {
                    let bv: [__m256; 3] = std::array::from_fn(|j| _mm256_loadu_ps(bj[j].add(kk)));
                    for i in 0..4 {
                        let av = _mm256_loadu_ps(ai[i].add(kk));
                        for j in 0..3 {
                            acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
                        }
                    }
                    kk += 8;
                }
                if k > main {
                    let bv: [__m256; 3] = std::array::from_fn(|j| _mm256_maskload_ps(bj[j].add(main), tail));
                    for i in 0..4 {
                        let av = _mm256_maskload_ps(ai[i].add(main), tail);
                        for j in 0..3 {
                            acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
                        }
                    }
                }
                let cols = (n - j0).min(3);
                for (i, acc) in acc.iter().enumerate().take((m - i0).min(4)) {
                    let row = c.add((i0 + i) * ldc + j0);
                    for (j, &v) in acc.iter().enumerate().take(cols) {
                        *row.add(j) += sum8(v);
                    }
                }
            }
        }
    }
}

/// C[i, j] = Σ_p A[p, i]·B[p, j] for i < m, j < n, p < kp (C is overwritten):
/// `super::tn` in blocks of 6 rows × 16 columns (12 accumulators).
///
/// # Safety
/// The CPU must support AVX2 and FMA; A must hold kp rows of m values at
/// stride `lda`, B kp rows of n at stride `ldb`, C m rows of n at stride
/// `ldc`, and C must not overlap A or B.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_tn(
    m: usize,
    n: usize,
    kp: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: as this function's; AVX2 and FMA are enabled here.
    unsafe { super::tn::gemm_tn::<crate::kernels::simd::Avx2, 6, 1>(m, n, kp, a, lda, b, ldb, c, ldc) }
}
