//! The dense layer's ∂W product, C = Aᵀ·B (δᵀ·X), without packing, written
//! once over 16 lanes ([`F32x16`]) for every vector level:
//!
//! ```text
//! C[i, j] = Σ_p A[p, i] · B[p, j]     A [p, m]  B [p, n]  (both rows run along the batch p)
//! ```
//! A block of MB rows × NV vectors of C is MB broadcasts of A[p, i] times
//! NV·16 contiguous values of B's row p, accumulated over p in registers
//! and stored once. Each element's sum runs sequentially over p with fused
//! multiply-adds from zero, whatever the block, the level or the call, so a
//! product cut by rows or columns gives the same bits as the whole, and
//! every vector level gives the same bits (tested in `kernels::gemm`). The
//! last n mod 16 columns are read and written with masks; rows past m repeat
//! the last row and are not stored.
//!
//! Each level's file instantiates it with its blocks: AVX-512 4 rows × 4
//! vectors (16 of its 32 registers), AVX2 6 × 1 (12 of 16), NEON 4 × 1 (16
//! of 32).

use crate::kernels::simd::F32x16;

/// Lanes of a vector.
const L: usize = 16;

/// C[i, j] = Σ_p A[p, i]·B[p, j] for i < m, j < n, p < kp (C is overwritten).
///
/// # Safety
/// Inside the level's target features, on a CPU that has them; A must hold
/// kp rows of m values at stride `lda`, B kp rows of n at stride `ldb`, C m
/// rows of n at stride `ldc`, and C must not overlap A or B.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_tn<V: F32x16, const MB: usize, const NV: usize>(
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
    if m == 0 || n == 0 {
        return;
    }
    // Column blocks outside, rows inside: a block's NV·16 columns of B over
    // all p stay in L1 while every block of rows of A passes them.
    unsafe {
        let mut j0 = 0;
        while j0 + NV * L <= n {
            for i0 in (0..m).step_by(MB) {
                let cols: [usize; MB] = std::array::from_fn(|i| (i0 + i).min(m - 1));
                let mut acc = [[V::zero(); NV]; MB];
                for p in 0..kp {
                    let brow = b.add(p * ldb + j0);
                    let bv: [V; NV] = std::array::from_fn(|j| V::load(brow.add(L * j)));
                    let arow = a.add(p * lda);
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let av = V::splat(*arow.add(cols[i]));
                        for (acc, &bv) in acc.iter_mut().zip(&bv) {
                            *acc = V::mul_add(av, bv, *acc);
                        }
                    }
                }
                for (i, acc) in acc.iter().enumerate().take(m - i0) {
                    for (j, v) in acc.iter().enumerate() {
                        v.store(c.add((i0 + i) * ldc + j0 + L * j));
                    }
                }
            }
            j0 += NV * L;
        }
        while j0 < n {
            let bits = if n - j0 >= L {
                0xffff
            } else {
                ((1u32 << (n - j0)) - 1) as u16
            };
            let mask = V::mask(bits);
            for i0 in (0..m).step_by(MB) {
                let cols: [usize; MB] = std::array::from_fn(|i| (i0 + i).min(m - 1));
                let mut acc = [V::zero(); MB];
                for p in 0..kp {
                    let bv = V::load_masked(mask, b.add(p * ldb + j0));
                    let arow = a.add(p * lda);
                    for (i, acc) in acc.iter_mut().enumerate() {
                        *acc = V::mul_add(V::splat(*arow.add(cols[i])), bv, *acc);
                    }
                }
                for (i, v) in acc.iter().enumerate().take(m - i0) {
                    v.store_masked(mask, c.add((i0 + i) * ldc + j0));
                }
            }
            j0 += L;
        }
    }
}
