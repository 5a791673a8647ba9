//! The three products of a dense layer with few outputs (C = 10: the output
//! layer of a 10-class problem), without packing the activations.
//!
//! ```text
//! forward  Y[b, c] += Σ_i X[b, i] · W[c, i]       X [B, D], W [C, D], Y [B, C]
//! ∂W       ∂W[c, i] = Σ_b δ[b, c] · X[b, i]        δ [B, C]
//! ∂X       ∂X[b, i] = Σ_c δ[b, c] · W[c, i]
//! ```
//! A general matrix product copies ("packs") both operands into blocks before
//! multiplying; with C = 10 that copy of X (the CNN's 15,488 features per
//! sample) costs more than the arithmetic. Here X streams through once per
//! product, eight columns at a time: forward keeps C registers of partial sums
//! (one per output) that every load of X feeds; ∂W keeps C registers for eight
//! columns of ∂W while the batch streams past; ∂X keeps four independent
//! registers of eight outputs each. Every sum runs in a fixed order, so results
//! do not depend on the thread or the machine beyond the AVX2 dispatch, which
//! computes the same operations (no fused multiply-add).

use crate::linalg::Scalar;

/// The number of outputs these kernels handle.
pub const OUTPUTS: usize = 10;
const LANES: usize = 8;

/// Y[b, c] += Σ_i X[b, i]·W[c, i] for C = [`OUTPUTS`].
#[inline(always)]
pub fn forward_generic<T: Scalar>(batch: usize, x: &[T], w: &[T], y: &mut [T]) {
    const C: usize = OUTPUTS;
    let d = w.len() / C;
    assert!(x.len() >= batch * d && w.len() == C * d && y.len() >= batch * C);
    let main = d / LANES * LANES;
    let rows: [&[T]; C] = std::array::from_fn(|c| &w[c * d..(c + 1) * d]);
    for (xb, yb) in x.chunks_exact(d).zip(y.chunks_exact_mut(C)).take(batch) {
        let mut acc = [[T::zero(); LANES]; C];
        for i0 in (0..main).step_by(LANES) {
            let xv = &xb[i0..i0 + LANES];
            for (acc, row) in acc.iter_mut().zip(&rows) {
                let wv = &row[i0..i0 + LANES];
                for l in 0..LANES {
                    acc[l] += xv[l] * wv[l];
                }
            }
        }
        for ((yc, acc), row) in yb.iter_mut().zip(&acc).zip(&rows) {
            let mut s = acc.iter().copied().sum::<T>();
            for i in main..d {
                s += xb[i] * row[i];
            }
            *yc += s;
        }
    }
}

/// ∂W[c, i] = Σ_b δ[b, c]·X[b, i] (overwrites ∂W) for C = [`OUTPUTS`].
#[inline(always)]
pub fn d_weight_generic<T: Scalar>(batch: usize, x: &[T], d_y: &[T], d_w: &mut [T]) {
    const C: usize = OUTPUTS;
    let d = d_w.len() / C;
    assert!(x.len() >= batch * d && d_y.len() >= batch * C && d_w.len() == C * d);
    let main = d / LANES * LANES;
    for i0 in (0..main).step_by(LANES) {
        let mut acc = [[T::zero(); LANES]; C];
        for (xb, db) in x.chunks_exact(d).zip(d_y.chunks_exact(C)).take(batch) {
            let xv = &xb[i0..i0 + LANES];
            for (acc, &g) in acc.iter_mut().zip(db) {
                for l in 0..LANES {
                    acc[l] += g * xv[l];
                }
            }
        }
        for (c, acc) in acc.iter().enumerate() {
            d_w[c * d + i0..c * d + i0 + LANES].copy_from_slice(acc);
        }
    }
    for i in main..d {
        for c in 0..C {
            let mut s = T::zero();
            for b in 0..batch {
                s += d_y[b * C + c] * x[b * d + i];
            }
            d_w[c * d + i] = s;
        }
    }
}

/// ∂X[b, i] = Σ_c δ[b, c]·W[c, i] (overwrites ∂X) for C = [`OUTPUTS`].
#[inline(always)]
pub fn d_input_generic<T: Scalar>(batch: usize, d_y: &[T], w: &[T], d_x: &mut [T]) {
    const C: usize = OUTPUTS;
    const BLOCKS: usize = 4;
    let d = w.len() / C;
    assert!(d_x.len() >= batch * d && d_y.len() >= batch * C && w.len() == C * d);
    let rows: [&[T]; C] = std::array::from_fn(|c| &w[c * d..(c + 1) * d]);
    let wide = d / (LANES * BLOCKS) * (LANES * BLOCKS);
    let main = d / LANES * LANES;
    for (db, xb) in d_y.chunks_exact(C).zip(d_x.chunks_exact_mut(d)).take(batch) {
        for i0 in (0..wide).step_by(LANES * BLOCKS) {
            let mut acc = [[T::zero(); LANES]; BLOCKS];
            for (&g, row) in db.iter().zip(&rows) {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let wv = &row[i0 + j * LANES..i0 + (j + 1) * LANES];
                    for l in 0..LANES {
                        acc[l] += g * wv[l];
                    }
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                xb[i0 + j * LANES..i0 + (j + 1) * LANES].copy_from_slice(acc);
            }
        }
        for i0 in (wide..main).step_by(LANES) {
            let mut acc = [T::zero(); LANES];
            for (&g, row) in db.iter().zip(&rows) {
                let wv = &row[i0..i0 + LANES];
                for l in 0..LANES {
                    acc[l] += g * wv[l];
                }
            }
            xb[i0..i0 + LANES].copy_from_slice(&acc);
        }
        for i in main..d {
            let mut s = T::zero();
            for (&g, row) in db.iter().zip(&rows) {
                s += g * row[i];
            }
            xb[i] = s;
        }
    }
}

/// The same kernels compiled for AVX2, chosen at run time by `Scalar for f32`.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    #[target_feature(enable = "avx2")]
    pub unsafe fn forward(batch: usize, x: &[f32], w: &[f32], y: &mut [f32]) {
        super::forward_generic(batch, x, w, y)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn d_weight(batch: usize, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
        super::d_weight_generic(batch, x, d_y, d_w)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn d_input(batch: usize, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
        super::d_input_generic(batch, d_y, w, d_x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::random_vec;
    use crate::linalg::{Scalar, matmul_naive};
    use crate::rng::Rng;

    #[test]
    fn kernels_match_the_definitions_and_their_portable_versions() {
        let mut rng = Rng::new(8, 0);
        for (batch, d) in [(1, 1), (3, 7), (5, 8), (7, 33), (64, 484), (2, 15488)] {
            let x: Vec<f32> = random_vec(batch * d, &mut rng);
            let w: Vec<f32> = random_vec(OUTPUTS * d, &mut rng);
            let d_y: Vec<f32> = random_vec(batch * OUTPUTS, &mut rng);
            let close = |a: &[f32], b: &[f32], terms: usize| {
                for (p, q) in a.iter().zip(b) {
                    assert!(
                        (p - q).abs() < 1e-5 * (terms as f32).sqrt() * (1.0 + q.abs()),
                        "B={batch} D={d}: {p} vs {q}"
                    );
                }
            };

            let mut y = vec![0.5f32; batch * OUTPUTS];
            f32::narrow_forward(batch, &x, &w, &mut y);
            let mut y_generic = vec![0.5f32; batch * OUTPUTS];
            forward_generic(batch, &x, &w, &mut y_generic);
            assert_eq!(y, y_generic);
            let mut want = vec![0.5f32; batch * OUTPUTS];
            matmul_naive(batch, d, OUTPUTS, &x, false, &w, true, 1.0, &mut want);
            close(&y, &want, d);

            let mut d_w = vec![0.0f32; w.len()];
            f32::narrow_d_weight(batch, &x, &d_y, &mut d_w);
            let mut d_w_generic = vec![0.0f32; w.len()];
            d_weight_generic(batch, &x, &d_y, &mut d_w_generic);
            assert_eq!(d_w, d_w_generic);
            let mut want = vec![0.0f32; w.len()];
            matmul_naive(OUTPUTS, batch, d, &d_y, true, &x, false, 0.0, &mut want);
            close(&d_w, &want, batch);

            let mut d_x = vec![0.0f32; x.len()];
            f32::narrow_d_input(batch, &d_y, &w, &mut d_x);
            let mut d_x_generic = vec![0.0f32; x.len()];
            d_input_generic(batch, &d_y, &w, &mut d_x_generic);
            assert_eq!(d_x, d_x_generic);
            let mut want = vec![0.0f32; x.len()];
            matmul_naive(batch, OUTPUTS, d, &d_y, false, &w, false, 0.0, &mut want);
            close(&d_x, &want, OUTPUTS);
        }
    }
}
