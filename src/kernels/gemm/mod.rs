//! The dense layer's two products on strided rows, without packing:
//!
//! ```text
//! nt (forward)   C[i, j] += Σ_k A[i, k] · B[j, k]     A [m, k]  B [n, k]  (X·Wᵀ)
//! tn (∂W)        C[i, j]  = Σ_p A[p, i] · B[p, j]     A [p, m]  B [p, n]  (δᵀ·X)
//! ```
//! The portable level uses the textbook's products (`linalg::gemm_nt`,
//! `linalg::gemm_tn`, by `matrixmultiply`); the vector levels (`avx512.rs`,
//! `avx2.rs`, `neon.rs`) read their operands where they lie, the forward
//! product in each level's own blocks and reduction, ∂W in one body shared
//! by all three (`tn.rs`, the same bits at every level). Both check their operands' extents first, and both sum
//! each element in an order that does not depend on how the product is cut
//! into blocks of rows or columns (tested below against f64 sums, and cut).

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "aarch64")]
pub mod neon;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod tn;

#[cfg(test)]
mod tests {
    use crate::kernels::Kernels;
    use crate::linalg::random_vec;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        random_vec(n, rng)
    }

    fn close(a: &[f32], b: &[f32], k: usize) {
        // f32 sums of k products of N(0,1) values: rounding error grows like √k·ε·|terms|.
        let tol = 1e-5 * (k as f32).sqrt() * 4.0;
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// A[rows, cols] embedded at row stride `ld` in a larger random buffer.
    fn strided(rows: usize, cols: usize, ld: usize, rng: &mut Rng) -> Vec<f32> {
        random(if rows == 0 { 0 } else { (rows - 1) * ld + cols }, rng)
    }

    #[test]
    fn every_level_matches_f64_sums_and_does_not_depend_on_blocking() {
        let mut rng = Rng::new(14, 0);
        for kern in Kernels::available() {
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
                (kern.gemm_nt)(m, n, k, &a, lda, &b, ldb, &mut c, ldc);
                for i in 0..m {
                    for j in 0..n {
                        let want = c0[i * ldc + j] as f64
                            + (0..k)
                                .map(|p| a[i * lda + p] as f64 * b[j * ldb + p] as f64)
                                .sum::<f64>();
                        close(&[c[i * ldc + j]], &[want as f32], k);
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
                    (kern.gemm_nt)(m1, n, k, &a, lda, &b, ldb, &mut cut, ldc);
                    (kern.gemm_nt)(
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
                    (kern.gemm_nt)(
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
                (kern.gemm_tn)(m, n, k, &at, m + 1, &bt, n + 5, &mut c, ldc);
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|p| at[p * (m + 1) + i] as f64 * bt[p * (n + 5) + j] as f64)
                            .sum();
                        close(&[c[i * ldc + j]], &[want as f32], k);
                    }
                }
                if m > 2 && n > 2 {
                    let mut cut = c0.clone();
                    let (m1, n1) = (m / 2 + 1, n / 3 + 1);
                    (kern.gemm_tn)(m1, n, k, &at, m + 1, &bt, n + 5, &mut cut, ldc);
                    (kern.gemm_tn)(
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
                    (kern.gemm_tn)(
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
    }

    /// The vector levels share one ∂W body (`tn.rs`): each element summed
    /// over p in order with fused multiply-adds, so they give the same bits.
    #[test]
    fn vector_levels_give_the_same_tn_bits() {
        use crate::kernels::Level;
        let mut rng = Rng::new(15, 0);
        let levels: Vec<_> = Kernels::available()
            .into_iter()
            .filter(|k| k.level != Level::Portable)
            .collect();
        for &(m, n, k) in &[(1, 1, 1), (5, 17, 3), (128, 784, 128), (13, 70, 64), (4, 48, 9)] {
            let (at, bt) = (random(k * m, &mut rng), random(k * n, &mut rng));
            let results: Vec<Vec<u32>> = levels
                .iter()
                .map(|kern| {
                    let mut c = vec![f32::NAN; m * n];
                    (kern.gemm_tn)(m, n, k, &at, m, &bt, n, &mut c, n);
                    c.iter().map(|v| v.to_bits()).collect()
                })
                .collect();
            for (kern, r) in levels.iter().zip(&results).skip(1) {
                assert!(
                    r == &results[0],
                    "{m}x{n}x{k}: {} differs from {}",
                    kern.level,
                    levels[0].level
                );
            }
        }
    }

    #[test]
    fn every_level_refuses_a_short_slice() {
        for kern in Kernels::available() {
            let r = std::panic::catch_unwind(|| {
                let a = [0.0f32; 10];
                let mut c = [0.0f32; 4];
                (kern.gemm_nt)(2, 2, 6, &a, 6, &a, 6, &mut c, 2);
            });
            assert!(r.is_err(), "{kern:?}");
        }
    }
}
