//! The dense layer's two large products for AVX-512, without packing.
//!
//! ```text
//! nt (forward)   C[i, j] += Σ_k A[i, k] · B[j, k]     A [m, k]  B [n, k]  (X·Wᵀ: both rows run along k)
//! tn (∂W)        C[i, j]  = Σ_p A[p, i] · B[p, j]     A [p, m]  B [p, n]  (δᵀ·X: both rows run along the batch p)
//! ```
//! A general GEMM first copies ("packs") both operands into blocks; for the
//! MLP's shapes (784 inputs, a few hundred units, batches of 64–128) that copy
//! costs a fifth of the time. Here both products read their operands where
//! they lie, because each already has the access pattern its loop wants:
//!
//! - `nt`: a 4×4 block of C is sixteen dot products over k. Each step loads
//!   16 values of k from four rows of A and four rows of B and does 16 fused
//!   multiply-adds into 16 accumulators; the 16 lanes of each are summed at
//!   the end. The four rows of B (W) stay in L1 while every row of A streams past.
//! - `tn`: a 4×64 block of C is 4 broadcasts of A[p, i] times 64 contiguous
//!   values of B's row p, accumulated over p in registers and stored once
//!   (the body every vector level shares, `tn.rs`).
//!
//! Each element's sum runs in a fixed order (by 16-lane chunks of k, then a
//! fixed tree; or sequentially over p), whatever block, thread or call it is
//! computed in, so a product cut by rows or columns gives the same bits as the
//! whole. Edges reuse the last row or column in the unused slots of a block
//! and store only the valid results; the last k < 16 values are read with
//! masked loads. Tested in `kernels::gemm` against f64 sums and cut into
//! blocks (the same bits as the whole).

use std::arch::x86_64::*;

/// C[i, j] += Σ_k A[i, k]·B[j, k] for i < m, j < n.
///
/// # Safety
/// The CPU must support AVX-512F; A must hold m rows of k values at stride
/// `lda`, B n rows of k at stride `ldb`, C m rows of n at stride `ldc`, and C
/// must not overlap A or B.
#[target_feature(enable = "avx512f")]
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
    let main = k / 16 * 16;
    let tail: __mmask16 = ((1u32 << (k - main)) - 1) as __mmask16;
    unsafe {
        for j0 in (0..n).step_by(4) {
            let bj: [*const f32; 4] = std::array::from_fn(|j| b.add((j0 + j).min(n - 1) * ldb));
            for i0 in (0..m).step_by(4) {
                let ai: [*const f32; 4] = std::array::from_fn(|i| a.add((i0 + i).min(m - 1) * lda));
                let mut acc = [[_mm512_setzero_ps(); 4]; 4];
                let mut kk = 0;
                while kk < main {
                    let bv: [__m512; 4] = std::array::from_fn(|j| _mm512_loadu_ps(bj[j].add(kk)));
                    for i in 0..4 {
                        let av = _mm512_loadu_ps(ai[i].add(kk));
                        for j in 0..4 {
                            acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
                        }
                    }
                    kk += 16;
                }
                if tail != 0 {
                    let bv: [__m512; 4] =
                        std::array::from_fn(|j| _mm512_maskz_loadu_ps(tail, bj[j].add(main)));
                    for i in 0..4 {
                        let av = _mm512_maskz_loadu_ps(tail, ai[i].add(main));
                        for j in 0..4 {
                            acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
                        }
                    }
                }
                let cols = (n - j0).min(4);
                for (i, acc) in acc.iter().enumerate().take((m - i0).min(4)) {
                    let sums = reduce4(acc);
                    let row = c.add((i0 + i) * ldc + j0);
                    if cols == 4 {
                        _mm_storeu_ps(row, _mm_add_ps(_mm_loadu_ps(row), sums));
                    } else {
                        let mut s = [0.0f32; 4];
                        _mm_storeu_ps(s.as_mut_ptr(), sums);
                        for (j, s) in s.iter().enumerate().take(cols) {
                            *row.add(j) += s;
                        }
                    }
                }
            }
        }
    }
}

/// The lane sums of four vectors, [Σ v₀, Σ v₁, Σ v₂, Σ v₃], by a fixed tree.
#[target_feature(enable = "avx512f")]
fn reduce4(v: &[__m512; 4]) -> __m128 {
    // Pairwise interleaves halve the lanes: after two rounds each 128-bit
    // quarter holds partial sums of v₀..v₃ in its four lanes.
    let s01 = _mm512_add_ps(_mm512_unpacklo_ps(v[0], v[1]), _mm512_unpackhi_ps(v[0], v[1]));
    let s23 = _mm512_add_ps(_mm512_unpacklo_ps(v[2], v[3]), _mm512_unpackhi_ps(v[2], v[3]));
    let lo = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(s01), _mm512_castps_pd(s23)));
    let hi = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(s01), _mm512_castps_pd(s23)));
    let s = _mm512_add_ps(lo, hi);
    // Then the four quarters are added.
    let q01 = _mm_add_ps(_mm512_castps512_ps128(s), _mm512_extractf32x4_ps::<1>(s));
    let q23 = _mm_add_ps(_mm512_extractf32x4_ps::<2>(s), _mm512_extractf32x4_ps::<3>(s));
    _mm_add_ps(q01, q23)
}

/// C[i, j] = Σ_p A[p, i]·B[p, j] for i < m, j < n, p < kp (C is overwritten):
/// `super::tn` in blocks of 4 rows × 64 columns.
///
/// # Safety
/// The CPU must support AVX-512F; A must hold kp rows of m values at stride
/// `lda`, B kp rows of n at stride `ldb`, C m rows of n at stride `ldc`, and C
/// must not overlap A or B.
#[target_feature(enable = "avx512f")]
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
    // SAFETY: as this function's; AVX-512F is enabled here.
    unsafe { super::tn::gemm_tn::<crate::kernels::simd::Avx512, 4, 4>(m, n, kp, a, lda, b, ldb, c, ldc) }
}
