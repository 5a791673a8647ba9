//! The dense layer's forward product for aarch64 NEON, without packing: the
//! algorithm of `avx2.rs` at 4 lanes with 32 registers. A 4×4 block of C is
//! sixteen dot products over k, each step loading 4 values of k from four
//! rows of A and four rows of B into 16 accumulators; the last k mod 4
//! values are read zero-padded, and each accumulator's lanes are summed by
//! `vaddvq_f32` at the end. The ∂W product is the shared body of `tn.rs`
//! (`gemm_tn` below).
//!
//! Each element's sum runs in a fixed order whatever block it is computed
//! in, so a product cut by rows or columns gives the same bits as the whole
//! (tested in `kernels::gemm`, under emulation in CI).

// Register blocks are indexed by row and column.
#![allow(clippy::needless_range_loop)]
use std::arch::aarch64::*;

/// Four values at `p`, of which only the first `n` (≤ 4) are read; the rest are 0.
#[inline(always)]
unsafe fn load_partial(p: *const f32, n: usize) -> float32x4_t {
    let mut buf = [0.0f32; 4];
    unsafe {
        std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
        vld1q_f32(buf.as_ptr())
    }
}

/// C[i, j] += Σ_k A[i, k]·B[j, k] for i < m, j < n.
///
/// # Safety
/// A must hold m rows of k values at stride `lda`, B n rows of k at stride
/// `ldb`, C m rows of n at stride `ldc`, and C must not overlap A or B.
#[target_feature(enable = "neon")]
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
    let main = k / 4 * 4;
    unsafe {
        for j0 in (0..n).step_by(4) {
            let bj: [*const f32; 4] = std::array::from_fn(|j| b.add((j0 + j).min(n - 1) * ldb));
            for i0 in (0..m).step_by(4) {
                let ai: [*const f32; 4] = std::array::from_fn(|i| a.add((i0 + i).min(m - 1) * lda));
                let mut acc = [[vdupq_n_f32(0.0); 4]; 4];
                let mut kk = 0;
                while kk < main {
                    let bv: [float32x4_t; 4] = std::array::from_fn(|j| vld1q_f32(bj[j].add(kk)));
                    for i in 0..4 {
                        let av = vld1q_f32(ai[i].add(kk));
                        for j in 0..4 {
                            acc[i][j] = vfmaq_f32(acc[i][j], av, bv[j]);
                        }
                    }
                    kk += 4;
                }
                if k > main {
                    let bv: [float32x4_t; 4] =
                        std::array::from_fn(|j| load_partial(bj[j].add(main), k - main));
                    for i in 0..4 {
                        let av = load_partial(ai[i].add(main), k - main);
                        for j in 0..4 {
                            acc[i][j] = vfmaq_f32(acc[i][j], av, bv[j]);
                        }
                    }
                }
                let cols = (n - j0).min(4);
                for (i, acc) in acc.iter().enumerate().take((m - i0).min(4)) {
                    let row = c.add((i0 + i) * ldc + j0);
                    for (j, &v) in acc.iter().enumerate().take(cols) {
                        *row.add(j) += vaddvq_f32(v);
                    }
                }
            }
        }
    }
}

/// C[i, j] = Σ_p A[p, i]·B[p, j] for i < m, j < n, p < kp (C is overwritten):
/// `super::tn` in blocks of 4 rows × 16 columns (16 accumulator registers).
///
/// # Safety
/// The CPU must support NEON; A must hold kp rows of m values at stride
/// `lda`, B kp rows of n at stride `ldb`, C m rows of n at stride `ldc`, and C
/// must not overlap A or B.
#[target_feature(enable = "neon")]
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
    // SAFETY: as this function's; NEON is enabled here.
    unsafe { super::tn::gemm_tn::<crate::kernels::simd::Neon, 4, 1>(m, n, kp, a, lda, b, ldb, c, ldc) }
}
