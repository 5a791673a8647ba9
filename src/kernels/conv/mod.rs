//! The convolution's two large sums computed straight from the image, without
//! building the patch matrix (the textbook twin is `layers::conv2d`: im2col and
//! a matrix product). Proved equal to direct f64 sums and to each other by the
//! tests at the end of this file; the engine's convolution
//! (`engine::conv`) is tested against the textbook layer.
//!
//! ```text
//! wide layout   an output map is kept as OS rows of S values (not OS): position
//!               p = oy·S + ox, length L = (OS − 1)·S + OS; the last S − OS
//!               values of each row are unused.
//! tap t         (ky, kx), t = ky·K + kx, image offset o_t = ky·S + kx
//! forward       Z[f, p]  = Σ_t W[f, t] · x[o_t + p]                   Z [F, L]
//! ∂W            ∂W[f, t] = Σ_p δ[f, p] · x[o_t + p]                   δ [F, L], 0 on unused p
//! ```
//! With the output laid out wide, the pixels a tap multiplies are one
//! contiguous run of the image, so both sums are products of contiguous
//! vectors and no patch matrix is copied.
//!
//! - forward: a block of filters × positions is accumulated in registers over
//!   all K² taps (each tap: one load of the image run per 16 positions, one
//!   broadcast of W per filter) and stored once;
//! - ∂W: a block of filters × taps is accumulated over the positions, in 16
//!   lanes per (f, t) that persist across the samples of a call sequence
//!   (`lanes`, [F·K²·16]); the caller sums the 16 lanes once at the end
//!   ([`reduce_lanes`]).
//!
//! ```text
//! compact layout   the layer's own [F, OS, OS]: q = oy·OS + ox
//! forward          Z[f, q]  = Σ_t W[f, t] · x[o_t + oy·S + ox]
//! ∂W               ∂W[f, t] = Σ_q δ[f, q] · x[o_t + oy·S + ox]   (lane q mod 16)
//! ```
//! With 3 or more filters and output rows of at least 16 ([`compact`]), the
//! kernels run over the compact positions instead: a vector of 16 positions
//! spans at most two output rows, so a tap reads it as two runs of the image,
//! and blocks of 8 filters amortise the extra loads. There are fewer
//! multiply-adds (no unused positions), no wide copy of δ, and ReLU's mask is
//! applied to δ inside the ∂W kernel. The forward sums are the same bits as
//! over the wide layout; ∂W's lanes hold other partial sums (q mod 16 instead
//! of p mod 16).
//!
//! Each value's sum runs in a fixed order (taps in order; positions by lane,
//! then samples in order, then lanes in order), whatever the blocking, so a
//! sample gives the same bits in any chunk of a batch. The `*_portable`
//! functions are the references: the same sums in the same order without
//! fused multiply-adds, in plain Rust.

use crate::linalg::{Scalar, relu_mask};

/// Lanes of the ∂W partial sums.
pub const LANES: usize = 16;

/// Sizes of a one-channel convolution: F filters of K×K over S×S images,
/// valid, stride 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Input side S.
    pub side: usize,
    /// Kernel side K.
    pub kernel: usize,
    /// Number of filters F.
    pub filters: usize,
}

impl Shape {
    /// Output side OS = S − K + 1.
    pub fn out_side(&self) -> usize {
        self.side - self.kernel + 1
    }

    /// Output positions per filter, OS².
    pub fn positions(&self) -> usize {
        self.out_side() * self.out_side()
    }

    /// Patch length K².
    pub fn patch(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Output values per sample, F·OS².
    pub fn out_len(&self) -> usize {
        self.filters * self.positions()
    }

    /// Length of a wide output map: (OS − 1)·S + OS.
    pub fn wide_len(&self) -> usize {
        (self.out_side() - 1) * self.side + self.out_side()
    }
}

/// Image offset o_t of each tap t = ky·K + kx.
fn offsets(c: &Shape) -> impl Iterator<Item = usize> + '_ {
    (0..c.kernel).flat_map(move |ky| (0..c.kernel).map(move |kx| ky * c.side + kx))
}

/// Panics unless `img` holds an image, `wide` F wide maps, and the third
/// operand (W, or the ∂W lanes) `have` ≥ `need` values.
fn check<T>(c: &Shape, img: &[T], have: usize, wide: &[T], need: usize) {
    assert!(
        img.len() >= c.side * c.side && have >= need && wide.len() >= c.filters * c.wide_len(),
        "conv_wide: slices shorter than the shape {c:?}"
    );
}

/// Z[f, p] = Σ_t W[f, t]·x[o_t + p] for every filter f and wide position p < L.
pub fn forward_portable<T: Scalar>(c: &Shape, img: &[T], w: &[T], out: &mut [T]) {
    let (l, kk) = (c.wide_len(), c.patch());
    check(c, img, w.len(), out, c.filters * kk);
    for (f, o) in out.chunks_exact_mut(l).take(c.filters).enumerate() {
        o.fill(T::zero());
        for (t, off) in offsets(c).enumerate() {
            let wt = w[f * kk + t];
            for (y, &x) in o.iter_mut().zip(&img[off..off + l]) {
                *y += wt * x;
            }
        }
    }
}

/// lanes[f, t, p mod 16] += δ[f, p]·x[o_t + p] over the wide positions p < L.
pub fn d_weight_portable<T: Scalar>(c: &Shape, img: &[T], delta: &[T], lanes: &mut [T]) {
    let (l, kk) = (c.wide_len(), c.patch());
    check(c, img, lanes.len(), delta, c.filters * kk * LANES);
    for (f, d) in delta.chunks_exact(l).take(c.filters).enumerate() {
        for (t, off) in offsets(c).enumerate() {
            let acc = &mut lanes[(f * kk + t) * LANES..(f * kk + t + 1) * LANES];
            for (p, (&g, &x)) in d.iter().zip(&img[off..off + l]).enumerate() {
                acc[p % LANES] += g * x;
            }
        }
    }
}

/// What the forward pass does to each sum Z[f, p] before storing it, and the
/// layout it stores: out[f, oy, ox] = act(Z[f, oy·S + ox] + b_f) (`[F, OS, OS]`,
/// the unused wide positions dropped), act = ReLU or the identity.
#[derive(Clone, Copy)]
pub struct Epilogue<'a, T> {
    pub bias: Option<&'a [T]>,
    pub relu: bool,
}

/// The forward pass with its epilogue: Z into `wide`, then `out` from it.
pub fn forward_compact_portable<T: Scalar>(
    c: &Shape,
    img: &[T],
    w: &[T],
    epi: Epilogue<T>,
    wide: &mut [T],
    out: &mut [T],
) {
    forward_portable(c, img, w, wide);
    let (s, os, l, p) = (c.side, c.out_side(), c.wide_len(), c.positions());
    for (f, (of, wf)) in out
        .chunks_exact_mut(p)
        .zip(wide.chunks_exact(l))
        .take(c.filters)
        .enumerate()
    {
        let b = epi.bias.map_or(T::zero(), |b| b[f]);
        for (orow, row) in of.chunks_exact_mut(os).zip(wf.chunks(s)) {
            for (o, &v) in orow.iter_mut().zip(row) {
                let z = v + b;
                // ReLU as in layers::relu: a select, NaN kept.
                *o = if epi.relu && z < T::zero() { T::zero() } else { z };
            }
        }
    }
}

/// δ laid out wide: wide[f, oy·S + ox] = δ[f, oy, ox], times 1[h[f, oy, ox] > 0]
/// when `h` is given (ReLU's backward); the unused positions are not written.
pub fn delta_portable<T: Scalar>(c: &Shape, d_z: &[T], h: Option<&[T]>, wide: &mut [T]) {
    let (s, os, l, p) = (c.side, c.out_side(), c.wide_len(), c.positions());
    for f in 0..c.filters {
        for oy in 0..os {
            let (src, dst) = (f * p + oy * os, f * l + oy * s);
            let row = &mut wide[dst..dst + os];
            match h {
                Some(h) => {
                    for ((o, &g), &hv) in row.iter_mut().zip(&d_z[src..src + os]).zip(&h[src..src + os]) {
                        *o = relu_mask(hv, g);
                    }
                }
                None => row.copy_from_slice(&d_z[src..src + os]),
            }
        }
    }
}

/// ∂W[f, t] += Σ_lanes lanes[f, t, ·], the lanes summed in order.
pub fn reduce_lanes<T: Scalar>(lanes: &[T], d_w: &mut [T]) {
    for (d, acc) in d_w.iter_mut().zip(lanes.chunks_exact(LANES)) {
        *d += crate::linalg::fold_lanes(acc);
    }
}

/// Whether output rows hold at least 16 positions: then a vector of 16
/// consecutive compact positions q = oy·OS + ox spans at most two rows, and a
/// tap reads its pixels as two runs of the image.
pub fn compact_fits(c: &Shape) -> bool {
    c.out_side() >= LANES
}

/// Whether a level that prefers the compact layout (`compact_layout`) runs
/// its kernels on it (forward and ∂W): with 3 or more filters, where blocks
/// of several filters amortise the second run's loads, and rows long enough
/// ([`compact_fits`]). AVX-512 does (its masked loads cost no more than
/// plain ones); AVX2 and NEON keep the wide layout, whose loads are plain.
pub fn compact(c: &Shape, compact_layout: bool) -> bool {
    compact_layout && c.filters > 2 && compact_fits(c)
}

/// ∂W on the compact layout, δ `[F, OS²]` as the layer has it: first
/// δ ← δ ⊙ 1\[h > 0\] in place when `h` is given (ReLU's backward), then
/// lanes[f, t, q mod 16] += δ[f, q]·x[o_t + oy·S + ox] over q = oy·OS + ox.
pub fn d_weight_compact_portable<T: Scalar>(
    c: &Shape,
    img: &[T],
    delta: &mut [T],
    h: Option<&[T]>,
    lanes: &mut [T],
) {
    let (s, os, p, kk) = (c.side, c.out_side(), c.positions(), c.patch());
    let n = c.filters * p;
    assert!(
        img.len() >= s * s
            && delta.len() >= n
            && h.is_none_or(|h| h.len() >= n)
            && lanes.len() >= c.filters * kk * LANES,
        "conv_wide: slices shorter than the shape {c:?}"
    );
    if let Some(h) = h {
        for (d, &hv) in delta[..n].iter_mut().zip(h) {
            *d = relu_mask(hv, *d);
        }
    }
    for (f, d) in delta.chunks_exact(p).take(c.filters).enumerate() {
        for (t, off) in offsets(c).enumerate() {
            let acc = &mut lanes[(f * kk + t) * LANES..(f * kk + t + 1) * LANES];
            for (q, &g) in d.iter().enumerate() {
                acc[q % LANES] += g * img[off + q / os * s + q % os];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "aarch64")]
pub mod neon;
mod simd;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{ConvKernels, Kernels, PORTABLE_CONV};
    use crate::linalg::random_vec;
    use crate::rng::Rng;

    /// The convolution kernels of every level this CPU has, and the portable ones.
    fn levels() -> Vec<ConvKernels> {
        let mut all: Vec<ConvKernels> = Kernels::available().iter().filter_map(|k| k.conv).collect();
        all.push(PORTABLE_CONV);
        all
    }

    /// No bias and no ReLU; bias and ReLU.
    fn both_epilogues(bias: &[f32]) -> [Epilogue<'_, f32>; 2] {
        [
            Epilogue {
                bias: None,
                relu: false,
            },
            Epilogue {
                bias: Some(bias),
                relu: true,
            },
        ]
    }

    /// Every level's kernels and the portable ones against direct sums in
    /// f64, on odd and report shapes.
    #[test]
    fn kernels_match_direct_sums() {
        let mut rng = Rng::new(31, 0);
        for ck in levels() {
            for (side, kernel, filters) in [
                (28, 7, 1),
                (28, 6, 1),
                (28, 7, 32),
                (28, 3, 2),
                (28, 11, 5),
                (28, 13, 9),
                (9, 4, 3),
                (5, 5, 4),
            ] {
                let c = Shape {
                    side,
                    kernel,
                    filters,
                };
                let (l, kk) = (c.wide_len(), c.patch());
                let img: Vec<f32> = random_vec(side * side, &mut rng);
                let w: Vec<f32> = random_vec(filters * kk, &mut rng);
                let mut delta: Vec<f32> = random_vec(filters * l, &mut rng);
                let start: Vec<f32> = random_vec(filters * kk * LANES, &mut rng);
                let os = c.out_side();
                for (p, d) in delta.iter_mut().enumerate() {
                    if (p % l) % side >= os {
                        *d = 0.0;
                    }
                }
                let at = |f: usize, t: usize, p: usize| {
                    let off = t / kernel * side + t % kernel;
                    (w[f * kk + t] as f64, img[off + p] as f64, delta[f * l + p] as f64)
                };
                let bias: Vec<f32> = random_vec(filters, &mut rng);
                let mut z = vec![f32::NAN; filters * l];
                forward_portable(&c, &img, &w, &mut z);
                // Both epilogues, each through the kernel f32 dispatches to and the
                // portable one: the same values (the epilogue is exact).
                let p = c.positions();
                let mut outs = Vec::new();
                for epi in both_epilogues(&bias) {
                    let mut out = vec![f32::NAN; filters * p];
                    (ck.forward)(&c, &img, &w, epi, &mut vec![0.0; filters * l], &mut out);
                    let mut out_portable = vec![f32::NAN; filters * p];
                    forward_compact_portable(
                        &c,
                        &img,
                        &w,
                        epi,
                        &mut vec![0.0; filters * l],
                        &mut out_portable,
                    );
                    for (a, b) in out.iter().zip(&out_portable) {
                        assert!(
                            (a - b).abs() < 1e-5 * (1.0 + b.abs()) * kernel as f32,
                            "{c:?}: {a} vs {b}"
                        );
                    }
                    outs.push(out);
                }
                for f in 0..filters {
                    for oy in 0..os {
                        for ox in 0..os {
                            let (q, i) = (oy * side + ox, f * p + oy * os + ox);
                            let plain = outs[0][i];
                            assert!(
                                (plain - z[f * l + q]).abs() < 1e-5 * (1.0 + plain.abs()) * kernel as f32
                            );
                            assert_eq!(outs[1][i], (plain + bias[f]).max(0.0), "{c:?}");
                        }
                    }
                }
                // δ laid out wide, with and without the ReLU mask.
                let d_compact: Vec<f32> = random_vec(filters * p, &mut rng);
                let h: Vec<f32> = random_vec(filters * p, &mut rng);
                for mask in [None, Some(&h[..])] {
                    let mut wide = vec![7.0f32; filters * l];
                    (ck.delta)(&c, &d_compact, mask, &mut wide);
                    let mut wide_portable = vec![7.0f32; filters * l];
                    delta_portable(&c, &d_compact, mask, &mut wide_portable);
                    assert_eq!(wide, wide_portable);
                    for f in 0..filters {
                        for q in 0..l {
                            let (oy, ox) = (q / side, q % side);
                            let want = if ox < os {
                                let i = f * p + oy * os + ox;
                                if mask.is_some_and(|h| h[i] <= 0.0) {
                                    0.0
                                } else {
                                    d_compact[i]
                                }
                            } else {
                                7.0
                            };
                            assert_eq!(wide[f * l + q], want);
                        }
                    }
                }
                let mut lanes = start.clone();
                (ck.d_weight)(&c, &img, &delta, &mut lanes);
                let mut lanes_portable = start.clone();
                d_weight_portable(&c, &img, &delta, &mut lanes_portable);
                for f in 0..filters {
                    for p in 0..l {
                        let want: f64 = (0..kk).map(|t| at(f, t, p).0 * at(f, t, p).1).sum();
                        let got = z[f * l + p];
                        assert!((got as f64 - want).abs() < 1e-5 * (1.0 + want.abs()) * kernel as f64);
                    }
                    for t in 0..kk {
                        let i = (f * kk + t) * LANES;
                        let start: f64 = start[i..i + LANES].iter().map(|&v| v as f64).sum();
                        let want = start + (0..l).map(|p| at(f, t, p).2 * at(f, t, p).1).sum::<f64>();
                        for lanes in [&lanes, &lanes_portable] {
                            let mut got = [0.0f32];
                            reduce_lanes(&lanes[i..i + LANES], &mut got);
                            assert!(
                                (got[0] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                                "{c:?} f{f} t{t}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Each vector level's `forward_layout`, for the levels this CPU has.
    type Layout = unsafe fn(&Shape, &[f32], &[f32], Epilogue<f32>, &mut [f32], &mut [f32], bool);
    fn layouts() -> Vec<(crate::kernels::Level, Layout)> {
        use crate::kernels::Level;
        let all: Vec<(Level, Layout)> = vec![
            #[cfg(target_arch = "x86_64")]
            (Level::Avx512, avx512::forward_layout),
            #[cfg(target_arch = "x86_64")]
            (Level::Avx2, avx2::forward_layout),
            #[cfg(target_arch = "aarch64")]
            (Level::Neon, neon::forward_layout),
        ];
        all.into_iter().filter(|(l, _)| l.available()).collect()
    }

    /// The forward pass over the compact positions gives the bits of the pass
    /// over the wide ones, with and without bias and ReLU, at every level.
    #[test]
    fn compact_and_wide_forward_are_the_same_bits() {
        let mut rng = Rng::new(32, 0);
        for (level, layout) in layouts() {
            for (side, kernel, filters) in [(28, 7, 32), (28, 7, 3), (28, 13, 9), (28, 11, 13), (20, 5, 6)] {
                let c = Shape {
                    side,
                    kernel,
                    filters,
                };
                assert!(compact_fits(&c));
                let img: Vec<f32> = random_vec(side * side, &mut rng);
                let w: Vec<f32> = random_vec(filters * c.patch(), &mut rng);
                let bias: Vec<f32> = random_vec(filters, &mut rng);
                for epi in both_epilogues(&bias) {
                    let outs: Vec<Vec<f32>> = [false, true]
                        .into_iter()
                        .map(|compact| {
                            let mut out = vec![f32::NAN; filters * c.positions()];
                            let mut wide = vec![0.0; filters * c.wide_len()];
                            // SAFETY: `layouts` keeps the levels the CPU has.
                            unsafe { layout(&c, &img, &w, epi, &mut wide, &mut out, compact) };
                            out
                        })
                        .collect();
                    assert_eq!(bits(&outs[0]), bits(&outs[1]), "{level} {c:?}");
                    assert!(
                        outs[1].iter().all(|v| v.is_finite()),
                        "{level} {c:?}: a position not written"
                    );
                }
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every vector level sums each lane in the same order with the same
    /// fused multiply-adds, so their four kernels give the same bits on every
    /// shape (each level has its own register blocks and edges), including
    /// NaN, ±0 and subnormal values through the epilogue and ReLU's mask.
    #[test]
    fn vector_levels_give_the_same_bits() {
        let kernels: Vec<_> = Kernels::available()
            .into_iter()
            .filter(|k| k.conv.is_some())
            .collect();
        let mut rng = Rng::new(34, 0);
        for (side, kernel, filters) in [
            (28, 7, 1),
            (28, 7, 2),
            (28, 7, 32),
            (28, 5, 3),
            (28, 13, 9),
            (28, 11, 13),
            (28, 3, 5),
            (20, 2, 6),
            (9, 4, 3),
            (5, 5, 4),
            (17, 16, 7),
        ] {
            let c = Shape {
                side,
                kernel,
                filters,
            };
            let (l, p, kk) = (c.wide_len(), c.positions(), c.patch());
            let mut img: Vec<f32> = random_vec(side * side, &mut rng);
            img[0] = -0.0;
            img[side] = 1e-40;
            let w: Vec<f32> = random_vec(filters * kk, &mut rng);
            let bias: Vec<f32> = random_vec(filters, &mut rng);
            let d_z: Vec<f32> = random_vec(filters * p, &mut rng);
            let mut h: Vec<f32> = random_vec(filters * p, &mut rng);
            h[0] = f32::NAN;
            h[1] = -0.0;
            let start: Vec<f32> = random_vec(filters * kk * LANES, &mut rng);
            let run = |ck: &ConvKernels| {
                let mut outs = Vec::new();
                for epi in both_epilogues(&bias) {
                    let mut out = vec![f32::NAN; filters * p];
                    (ck.forward)(&c, &img, &w, epi, &mut vec![0.0; filters * l], &mut out);
                    outs.push(bits(&out));
                }
                for mask in [None, Some(&h[..])] {
                    let mut wide = vec![0.0f32; filters * l];
                    (ck.delta)(&c, &d_z, mask, &mut wide);
                    let mut lanes = start.clone();
                    (ck.d_weight)(&c, &img, &wide, &mut lanes);
                    outs.push(bits(&wide));
                    outs.push(bits(&lanes));
                    if compact_fits(&c) {
                        let (mut d, mut lanes) = (d_z.clone(), start.clone());
                        (ck.d_weight_compact)(&c, &img, &mut d, mask, &mut lanes);
                        outs.push(bits(&d));
                        outs.push(bits(&lanes));
                    }
                }
                outs
            };
            let results: Vec<_> = kernels.iter().map(|k| (k.level, run(&k.conv.unwrap()))).collect();
            for (level, r) in &results[1..] {
                assert!(r == &results[0].1, "{c:?}: {level} differs from {}", results[0].0);
            }
        }
    }

    /// ∂W from compact δ (the kernel f32 dispatches to, and the portable one)
    /// against direct sums in f64, with ReLU's mask applied in place.
    #[test]
    fn compact_d_weight_matches_direct_sums() {
        let mut rng = Rng::new(33, 0);
        for ck in levels() {
            for (side, kernel, filters) in [(28, 7, 32), (28, 5, 3), (28, 13, 9), (20, 2, 6), (24, 9, 5)] {
                let c = Shape {
                    side,
                    kernel,
                    filters,
                };
                let (os, p, kk) = (c.out_side(), c.positions(), c.patch());
                let img: Vec<f32> = random_vec(side * side, &mut rng);
                let delta: Vec<f32> = random_vec(filters * p, &mut rng);
                let h: Vec<f32> = random_vec(filters * p, &mut rng);
                let start: Vec<f32> = random_vec(filters * kk * LANES, &mut rng);
                for mask in [None, Some(&h[..])] {
                    let masked: Vec<f32> = match mask {
                        Some(h) => delta
                            .iter()
                            .zip(h)
                            .map(|(&d, &hv)| if hv > 0.0 { d } else { 0.0 })
                            .collect(),
                        None => delta.clone(),
                    };
                    let mut lanes = start.clone();
                    let mut d = delta.clone();
                    (ck.d_weight_compact)(&c, &img, &mut d, mask, &mut lanes);
                    assert_eq!(d, masked, "{c:?}: δ in place");
                    let mut lanes_portable = start.clone();
                    let mut d_portable = delta.clone();
                    d_weight_compact_portable(&c, &img, &mut d_portable, mask, &mut lanes_portable);
                    assert_eq!(d_portable, masked);
                    for f in 0..filters {
                        for t in 0..kk {
                            let off = t / kernel * side + t % kernel;
                            let i = (f * kk + t) * LANES;
                            let start: f64 = start[i..i + LANES].iter().map(|&v| v as f64).sum();
                            let want = start
                                + (0..p)
                                    .map(|q| {
                                        masked[f * p + q] as f64 * img[off + q / os * side + q % os] as f64
                                    })
                                    .sum::<f64>();
                            for lanes in [&lanes, &lanes_portable] {
                                let mut got = [0.0f32];
                                reduce_lanes(&lanes[i..i + LANES], &mut got);
                                assert!(
                                    (got[0] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                                    "{c:?} f{f} t{t}: {} vs {want}",
                                    got[0]
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn short_slices_are_refused() {
        let c = Shape {
            side: 8,
            kernel: 3,
            filters: 2,
        };
        let img = vec![0.0f32; 63];
        for ck in levels() {
            let r = std::panic::catch_unwind(|| {
                let (mut wide, mut out) = (vec![0.0f32; 2 * c.wide_len()], vec![0.0f32; 2 * 36]);
                let epi = Epilogue {
                    bias: None,
                    relu: false,
                };
                (ck.forward)(&c, &img, &[0.0; 18], epi, &mut wide, &mut out)
            });
            assert!(r.is_err());
        }
    }
}
