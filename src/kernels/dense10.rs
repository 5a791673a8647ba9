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
//! registers of eight outputs each. Every sum runs in a fixed order, and the
//! AVX2 and AVX-512 versions compute exactly the portable versions' operations
//! (no fused multiply-add), so every level gives the same bits (tested at the
//! end of this file).

use crate::linalg::Scalar;

/// The number of outputs these kernels handle.
pub const OUTPUTS: usize = 10;
const LANES: usize = 8;
/// 8-lane blocks of ∂X computed together (independent dependency chains).
const BLOCKS: usize = 4;

/// Y[b, c] += Σ_i X[b, i]·W[c, i] for C = [`OUTPUTS`].
#[inline(always)]
pub fn forward_portable<T: Scalar>(batch: usize, x: &[T], w: &[T], y: &mut [T]) {
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
pub fn d_weight_portable<T: Scalar>(batch: usize, x: &[T], d_y: &[T], d_w: &mut [T]) {
    d_weight_columns(batch, x, d_y, d_w, 0)
}

/// [`d_weight_portable`] for the columns from `from` (a multiple of 8) on.
#[inline(always)]
fn d_weight_columns<T: Scalar>(batch: usize, x: &[T], d_y: &[T], d_w: &mut [T], from: usize) {
    const C: usize = OUTPUTS;
    let d = d_w.len() / C;
    assert!(x.len() >= batch * d && d_y.len() >= batch * C && d_w.len() == C * d);
    let main = d / LANES * LANES;
    for i0 in (from..main).step_by(LANES) {
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
pub fn d_input_portable<T: Scalar>(batch: usize, d_y: &[T], w: &[T], d_x: &mut [T]) {
    let d = w.len() / OUTPUTS;
    d_input_columns(batch, d_y, w, d_x, d / (LANES * BLOCKS) * (LANES * BLOCKS), 0)
}

/// [`d_input_portable`] for the columns from `from` on, with its 32-column
/// blocks below `wide` (both multiples of 32).
#[inline(always)]
fn d_input_columns<T: Scalar>(batch: usize, d_y: &[T], w: &[T], d_x: &mut [T], wide: usize, from: usize) {
    const C: usize = OUTPUTS;
    let d = w.len() / C;
    assert!(d_x.len() >= batch * d && d_y.len() >= batch * C && w.len() == C * d);
    let rows: [&[T]; C] = std::array::from_fn(|c| &w[c * d..(c + 1) * d]);
    let main = d / LANES * LANES;
    for (db, xb) in d_y.chunks_exact(C).zip(d_x.chunks_exact_mut(d)).take(batch) {
        for i0 in (from..wide).step_by(LANES * BLOCKS) {
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

/// The same kernels compiled for AVX2.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    #[target_feature(enable = "avx2")]
    pub unsafe fn forward(batch: usize, x: &[f32], w: &[f32], y: &mut [f32]) {
        super::forward_portable(batch, x, w, y)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn d_weight(batch: usize, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
        super::d_weight_portable(batch, x, d_y, d_w)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn d_input(batch: usize, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
        super::d_input_portable(batch, d_y, w, d_x)
    }
}

/// The same sums for AVX-512, four samples per pass over W (forward, ∂X) or 32
/// columns per pass over the batch (∂W), with exactly the operations of the
/// portable kernels: in forward and ∂W each 8-lane partial sum of those is one
/// half of a 16-lane register here (two samples side by side, or two 8-column
/// blocks), updated by the same multiply and add (no fused multiply-add), and
/// the halves are summed lane by lane in the same order; ∂X, where every value
/// is a sum of its own, uses whole registers with the same multiply and add. The results are the same bits as
/// [`forward_portable`], [`d_weight_portable`] and [`d_input_portable`]; what
/// changes is that W (for the CNN, 15,488 × 10 values: 620 KB) streams from
/// cache once per four samples instead of once per sample.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    // Register blocks are indexed by sample pair, class and column block.
    #![allow(clippy::needless_range_loop)]
    use std::arch::x86_64::*;

    use super::{LANES, OUTPUTS as C};

    /// Samples per pass over W.
    const SAMPLES: usize = 4;
    /// How far ahead (columns) ∂W prefetches each row of X.
    const AHEAD: usize = 256;

    /// [v₀..v₈ | v₀..v₈]: eight values at `p` in both halves.
    #[inline(always)]
    unsafe fn both_halves(p: *const f32) -> __m512 {
        unsafe { _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd(p as *const f64))) }
    }

    /// [a₀..a₈ | b₀..b₈]: eight values at `a` and eight at `b`.
    #[inline(always)]
    unsafe fn pair(a: *const f32, b: *const f32) -> __m512 {
        unsafe {
            let lo = _mm512_castps256_ps512(_mm256_loadu_ps(a));
            _mm512_castpd_ps(_mm512_insertf64x4(
                _mm512_castps_pd(lo),
                _mm256_castps_pd(_mm256_loadu_ps(b)),
                1,
            ))
        }
    }

    /// Sample indices of the block starting at `b0`, the last repeated past the batch.
    fn block(b0: usize, batch: usize) -> [usize; SAMPLES] {
        std::array::from_fn(|i| (b0 + i).min(batch - 1))
    }

    /// [`super::forward_portable`], the same bits.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn forward(batch: usize, x: &[f32], w: &[f32], y: &mut [f32]) {
        let d = w.len() / C;
        assert!(x.len() >= batch * d && w.len() == C * d && y.len() >= batch * C);
        let main = d / LANES * LANES;
        for b0 in (0..batch).step_by(SAMPLES) {
            let bs = block(b0, batch);
            let mut acc = [[_mm512_setzero_ps(); C]; SAMPLES / 2];
            // SAFETY: rows bs[·] < batch of x and rows c < C of w, columns < main ≤ d.
            unsafe {
                for i0 in (0..main).step_by(LANES) {
                    let mut xv = [_mm512_setzero_ps(); SAMPLES / 2];
                    for (p, xv) in xv.iter_mut().enumerate() {
                        let (a, b) = (bs[2 * p], bs[2 * p + 1]);
                        *xv = pair(x.as_ptr().add(a * d + i0), x.as_ptr().add(b * d + i0));
                    }
                    for c in 0..C {
                        let wv = both_halves(w.as_ptr().add(c * d + i0));
                        for p in 0..SAMPLES / 2 {
                            acc[p][c] = _mm512_add_ps(acc[p][c], _mm512_mul_ps(xv[p], wv));
                        }
                    }
                }
            }
            for (i, &b) in bs.iter().enumerate().take(batch - b0) {
                let xb = &x[b * d..(b + 1) * d];
                for c in 0..C {
                    let mut lanes = [0.0f32; 2 * LANES];
                    // SAFETY: 16 values into a 16-value array.
                    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), acc[i / 2][c]) };
                    let half = &lanes[(i % 2) * LANES..(i % 2 + 1) * LANES];
                    let row = &w[c * d..(c + 1) * d];
                    let mut s = half.iter().copied().sum::<f32>();
                    for i in main..d {
                        s += xb[i] * row[i];
                    }
                    y[b * C + c] += s;
                }
            }
        }
    }

    /// [`super::d_weight_portable`], the same bits.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn d_weight(batch: usize, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
        const COLS: usize = 4 * LANES;
        let d = d_w.len() / C;
        assert!(x.len() >= batch * d && d_y.len() >= batch * C && d_w.len() == C * d);
        let wide = d / COLS * COLS;
        for i0 in (0..wide).step_by(COLS) {
            // SAFETY: rows b < batch of x and d_y, columns i0 + 32 ≤ d.
            unsafe {
                let mut acc = [[_mm512_setzero_ps(); 2]; C];
                for b in 0..batch {
                    let xr = x.as_ptr().add(b * d + i0);
                    // The batch's rows are as many streams through memory: ask
                    // for each one's columns a few blocks ahead.
                    for line in [0, 2 * LANES] {
                        _mm_prefetch::<_MM_HINT_T0>(xr.wrapping_add(AHEAD + line) as *const i8);
                    }
                    let xv = [_mm512_loadu_ps(xr), _mm512_loadu_ps(xr.add(2 * LANES))];
                    for (c, acc) in acc.iter_mut().enumerate() {
                        let g = _mm512_set1_ps(*d_y.get_unchecked(b * C + c));
                        for v in 0..2 {
                            acc[v] = _mm512_add_ps(acc[v], _mm512_mul_ps(g, xv[v]));
                        }
                    }
                }
                for (c, acc) in acc.iter().enumerate() {
                    let out = d_w.as_mut_ptr().add(c * d + i0);
                    _mm512_storeu_ps(out, acc[0]);
                    _mm512_storeu_ps(out.add(2 * LANES), acc[1]);
                }
            }
        }
        super::d_weight_columns(batch, x, d_y, d_w, wide);
    }

    /// [`super::d_input_portable`], the same bits. Each ∂X value is its own
    /// sum over the ten classes (no lanes are added together), so whole
    /// 16-lane registers hold one sample's columns: blocks of 4 samples × 64
    /// columns, each class's four W vectors loaded once for the four samples
    /// and each δ value broadcast once for four vectors.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn d_input(batch: usize, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
        const V: usize = 4;
        const COLS: usize = V * 16;
        let d = w.len() / C;
        assert!(d_x.len() >= batch * d && d_y.len() >= batch * C && w.len() == C * d);
        let wide = d / COLS * COLS;
        for b0 in (0..batch).step_by(SAMPLES) {
            let bs = block(b0, batch);
            // SAFETY: rows bs[·] < batch of d_y and d_x, rows c < C of w, columns < wide ≤ d.
            unsafe {
                for i0 in (0..wide).step_by(COLS) {
                    let mut acc = [[_mm512_setzero_ps(); V]; SAMPLES];
                    for c in 0..C {
                        let wv: [__m512; V] =
                            std::array::from_fn(|v| _mm512_loadu_ps(w.as_ptr().add(c * d + i0 + v * 16)));
                        for (acc, &b) in acc.iter_mut().zip(&bs) {
                            let g = _mm512_set1_ps(*d_y.get_unchecked(b * C + c));
                            for v in 0..V {
                                acc[v] = _mm512_add_ps(acc[v], _mm512_mul_ps(g, wv[v]));
                            }
                        }
                    }
                    for (acc, &b) in acc.iter().zip(&bs).take(batch - b0) {
                        for v in 0..V {
                            _mm512_storeu_ps(d_x.as_mut_ptr().add(b * d + i0 + v * 16), acc[v]);
                        }
                    }
                }
            }
        }
        super::d_input_columns(batch, d_y, w, d_x, wide, wide);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Kernels;
    use crate::linalg::{matmul_naive, random_vec};
    use crate::rng::Rng;

    #[test]
    fn every_level_matches_the_definitions_and_the_portable_versions_bit_for_bit() {
        let mut rng = Rng::new(8, 0);
        for k in Kernels::available() {
            for (batch, d) in [(1, 1), (3, 7), (5, 8), (7, 33), (6, 1000), (64, 484), (2, 15488)] {
                let x: Vec<f32> = random_vec(batch * d, &mut rng);
                let w: Vec<f32> = random_vec(OUTPUTS * d, &mut rng);
                let d_y: Vec<f32> = random_vec(batch * OUTPUTS, &mut rng);
                let close = |a: &[f32], b: &[f32], terms: usize| {
                    for (p, q) in a.iter().zip(b) {
                        assert!(
                            (p - q).abs() < 1e-5 * (terms as f32).sqrt() * (1.0 + q.abs()),
                            "{k:?} B={batch} D={d}: {p} vs {q}"
                        );
                    }
                };

                let mut y = vec![0.5f32; batch * OUTPUTS];
                (k.dense10_forward)(batch, &x, &w, &mut y);
                let mut y_portable = vec![0.5f32; batch * OUTPUTS];
                forward_portable(batch, &x, &w, &mut y_portable);
                assert_eq!(y, y_portable);
                let mut want = vec![0.5f32; batch * OUTPUTS];
                matmul_naive(batch, d, OUTPUTS, &x, false, &w, true, 1.0, &mut want);
                close(&y, &want, d);

                let mut d_w = vec![0.0f32; w.len()];
                (k.dense10_d_weight)(batch, &x, &d_y, &mut d_w);
                let mut d_w_portable = vec![0.0f32; w.len()];
                d_weight_portable(batch, &x, &d_y, &mut d_w_portable);
                assert_eq!(d_w, d_w_portable);
                let mut want = vec![0.0f32; w.len()];
                matmul_naive(OUTPUTS, batch, d, &d_y, true, &x, false, 0.0, &mut want);
                close(&d_w, &want, batch);

                let mut d_x = vec![0.0f32; x.len()];
                (k.dense10_d_input)(batch, &d_y, &w, &mut d_x);
                let mut d_x_portable = vec![0.0f32; x.len()];
                d_input_portable(batch, &d_y, &w, &mut d_x_portable);
                assert_eq!(d_x, d_x_portable);
                let mut want = vec![0.0f32; x.len()];
                matmul_naive(batch, OUTPUTS, d, &d_y, false, &w, false, 0.0, &mut want);
                close(&d_x, &want, OUTPUTS);
            }
        }
    }
}
