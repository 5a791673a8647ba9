//! The convolution's two large sums computed straight from the image, without
//! building the patch matrix: the kernels of [`Conv2d`]'s `Wide` strategy.
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
//! vectors: no copy of the image into patches (im2col), which for one filter
//! costs more than the arithmetic and for 32 filters a fifth of it.
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
//! AVX-512 kernels run over the compact positions instead: a vector of 16
//! positions spans at most two output rows, so a tap reads it as two runs of
//! the image (two masked loads), and blocks of 8 filters amortise the extra
//! loads. That is a fifth fewer multiply-adds (28×28, K = 7: 31 vectors per
//! map instead of 39), no wide copy of δ, and ReLU's mask applied to δ inside
//! the ∂W kernel. The forward sums are the same bits as over the wide layout;
//! ∂W's lanes hold other partial sums (q mod 16 instead of p mod 16).
//!
//! Each value's sum runs in a fixed order (taps in order; positions by lane,
//! then samples in order, then lanes in order), whatever the blocking, so a
//! sample gives the same bits in any chunk of a batch. The portable versions
//! compute the same sums in the same order without fused multiply-adds; the
//! AVX-512 versions are chosen at run time by `Scalar for f32`.

use super::conv2d::Conv2d;
use crate::linalg::Scalar;

/// Lanes of the ∂W partial sums.
pub const LANES: usize = 16;

/// Image offset o_t of each tap t = ky·K + kx.
fn offsets(c: &Conv2d) -> impl Iterator<Item = usize> + '_ {
    (0..c.kernel).flat_map(move |ky| (0..c.kernel).map(move |kx| ky * c.side + kx))
}

/// Panics unless `img` holds an image, `wide` F wide maps, and the third
/// operand (W, or the ∂W lanes) `have` ≥ `need` values.
fn check<T>(c: &Conv2d, img: &[T], have: usize, wide: &[T], need: usize) {
    assert!(
        img.len() >= c.side * c.side && have >= need && wide.len() >= c.filters * c.wide_len(),
        "conv_wide: slices shorter than the shape {c:?}"
    );
}

/// Z[f, p] = Σ_t W[f, t]·x[o_t + p] for every filter f and wide position p < L.
pub fn forward_portable<T: Scalar>(c: &Conv2d, img: &[T], w: &[T], out: &mut [T]) {
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
pub fn d_weight_portable<T: Scalar>(c: &Conv2d, img: &[T], delta: &[T], lanes: &mut [T]) {
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
    c: &Conv2d,
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
pub fn delta_portable<T: Scalar>(c: &Conv2d, d_z: &[T], h: Option<&[T]>, wide: &mut [T]) {
    let (s, os, l, p) = (c.side, c.out_side(), c.wide_len(), c.positions());
    for f in 0..c.filters {
        for oy in 0..os {
            let (src, dst) = (f * p + oy * os, f * l + oy * s);
            let row = &mut wide[dst..dst + os];
            match h {
                Some(h) => {
                    for ((o, &g), &hv) in row.iter_mut().zip(&d_z[src..src + os]).zip(&h[src..src + os]) {
                        *o = if hv > T::zero() { g } else { T::zero() };
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
        *d += acc.iter().fold(T::zero(), |s, &v| s + v);
    }
}

/// Whether output rows hold at least 16 positions: then a vector of 16
/// consecutive compact positions q = oy·OS + ox spans at most two rows, and a
/// tap reads its pixels as two runs of the image.
pub fn compact_fits(c: &Conv2d) -> bool {
    c.out_side() >= LANES
}

/// Whether the AVX-512 kernels run on the compact layout (forward and ∂W):
/// with 3 or more filters, where blocks of several filters amortise the
/// second run's loads, and rows long enough ([`compact_fits`]).
pub fn compact(c: &Conv2d) -> bool {
    c.filters > 2 && compact_fits(c)
}

/// ∂W on the compact layout, δ `[F, OS²]` as the layer has it: first
/// δ ← δ ⊙ 1[h > 0] in place when `h` is given (ReLU's backward), then
/// lanes[f, t, q mod 16] += δ[f, q]·x[o_t + oy·S + ox] over q = oy·OS + ox.
pub fn d_weight_compact_portable<T: Scalar>(
    c: &Conv2d,
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
            if hv <= T::zero() || hv.is_nan() {
                *d = T::zero();
            }
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
pub(crate) mod avx512 {
    //! Register blocks: forward 4 filters × 6 vectors of 16 positions (24
    //! accumulators, 10 loads per 24 fused multiply-adds; on the compact
    //! layout 8 filters × 3 vectors, 14 loads per 24), ∂W 3 filters × 7
    //! taps (21 accumulators, 10 loads per 21; on the compact layout 8 × 3,
    //! 14 loads per 24). Blocks at the edges repeat the
    //! last filter or tap and store only the valid results; the last positions
    //! are read and written with masks.
    // Register blocks are indexed by filter, vector and tap.
    #![allow(clippy::needless_range_loop)]
    use std::arch::x86_64::*;

    use super::{Conv2d, Epilogue, LANES, check, compact_fits};

    fn tail_mask(n: usize) -> __mmask16 {
        if n >= LANES {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// [`super::forward_compact_portable`] with fused multiply-adds; the
    /// epilogue runs on the registers, which are stored straight into the
    /// compact layout (the valid lanes of each vector packed together).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn forward(
        c: &Conv2d,
        img: &[f32],
        w: &[f32],
        epi: Epilogue<f32>,
        wide: &mut [f32],
        out: &mut [f32],
    ) {
        let compact = super::compact(c);
        // SAFETY: as this function's.
        unsafe { forward_layout(c, img, w, epi, wide, out, compact) }
    }

    /// [`forward`] over the compact positions (`compact`, which needs
    /// [`compact_fits`]) or the wide ones; the same bits either way.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_layout(
        c: &Conv2d,
        img: &[f32],
        w: &[f32],
        epi: Epilogue<f32>,
        wide: &mut [f32],
        out: &mut [f32],
        compact: bool,
    ) {
        assert!(
            !compact || compact_fits(c),
            "conv_wide: {c:?} has output rows shorter than a vector"
        );
        assert!(
            img.len() >= c.side * c.side
                && w.len() >= c.filters * c.patch()
                && wide.len() >= c.filters * c.wide_len()
                && out.len() >= c.filters * c.positions()
                && epi.bias.is_none_or(|b| b.len() >= c.filters),
            "conv_wide: slices shorter than the shape {c:?}"
        );
        let k = Forward {
            c,
            img: img.as_ptr(),
            w: w.as_ptr(),
            epi,
            wide: wide.as_mut_ptr(),
            out: out.as_mut_ptr(),
        };
        // SAFETY: the assertion bounds every access: taps read x[o_t + p] with
        // o_t + p < S² (positions p < L, masked at the end), filters f < F, and
        // the valid lanes of a vector go to compact positions < OS².
        unsafe {
            if compact {
                return compact_filters(&k);
            }
            match c.filters {
                1 => forward_filters::<1, 8>(&k),
                2 => forward_filters::<2, 8>(&k),
                _ => forward_filters::<4, 6>(&k),
            }
        }
    }

    /// The forward pass over the compact positions q = oy·OS + ox directly:
    /// the same sums as over the wide layout (each position's taps in the same
    /// order, from zero), without the wide layout's unused positions. Each tap
    /// reads a vector in two runs, so blocks hold more filters than
    /// `forward_filters`' to amortise the loads: 8 filters × 3 vectors, and
    /// 4 × 6 for the last ≤ 4 filters.
    #[inline(always)]
    unsafe fn compact_filters(k: &Forward) {
        let nf = k.c.filters;
        let mut f0 = 0;
        while f0 < nf {
            // SAFETY: as in `forward`.
            unsafe {
                if nf - f0 <= 4 {
                    compact_positions::<4, 6>(k, f0);
                } else {
                    compact_positions::<8, 3>(k, f0);
                }
            }
            f0 += 8;
        }
    }

    /// All positions of filters f0..f0 + FB (the last filter repeated past F).
    #[inline(always)]
    unsafe fn compact_positions<const FB: usize, const NV: usize>(k: &Forward, f0: usize) {
        let (p, nf) = (k.c.positions(), k.c.filters);
        let fs: [usize; FB] = std::array::from_fn(|j| (f0 + j).min(nf - 1));
        let mut q0 = 0;
        unsafe {
            while q0 + NV * LANES <= p {
                compact_block::<FB, NV>(k, &fs, q0);
                q0 += NV * LANES;
            }
            // The last positions as one block of as many vectors as they
            // need, as in `forward_tail`.
            match (p - q0).div_ceil(LANES) {
                0 => {}
                1 => compact_block::<FB, 1>(k, &fs, q0),
                2 => compact_block::<FB, 2>(k, &fs, q0),
                3 => compact_block::<FB, 3>(k, &fs, q0),
                4 => compact_block::<FB, 4>(k, &fs, q0),
                5 => compact_block::<FB, 5>(k, &fs, q0),
                _ => unreachable!("a tail is shorter than a block of at most 6 vectors"),
            }
        }
    }

    /// Positions q0..q0 + 16·NV (those < OS²) of filters `fs`. Vector v starts
    /// at (oy, ox); its first OS − ox lanes read the image run at oy·S + ox + o_t,
    /// the rest the next row's, S − OS further on: two masked loads per tap.
    #[inline(always)]
    unsafe fn compact_block<const FB: usize, const NV: usize>(kernel: &Forward, fs: &[usize; FB], q0: usize) {
        let Forward {
            c, img, w, epi, out, ..
        } = *kernel;
        let (s, os, k, kk, p) = (c.side, c.out_side(), c.kernel, c.patch(), c.positions());
        let jump = s - os;
        let (mut lo, mut hi, mut base) = ([0 as __mmask16; NV], [0 as __mmask16; NV], [0usize; NV]);
        let mut valid = [0 as __mmask16; NV];
        for v in 0..NV {
            let q = q0 + v * LANES;
            valid[v] = tail_mask(p.saturating_sub(q));
            let (oy, ox) = (q / os, q % os);
            base[v] = oy * s + ox;
            lo[v] = valid[v] & tail_mask(os - ox);
            hi[v] = valid[v] & !lo[v];
        }
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); NV]; FB];
            for ky in 0..k {
                for kx in 0..k {
                    let src = img.add(ky * s + kx);
                    let mut xv = [_mm512_setzero_ps(); NV];
                    for v in 0..NV {
                        let run = src.add(base[v]);
                        xv[v] = _mm512_maskz_loadu_ps(lo[v], run);
                        xv[v] = _mm512_mask_loadu_ps(xv[v], hi[v], run.wrapping_add(jump));
                    }
                    for j in 0..FB {
                        let wb = _mm512_set1_ps(*w.add(fs[j] * kk + ky * k + kx));
                        for v in 0..NV {
                            acc[j][v] = _mm512_fmadd_ps(wb, xv[v], acc[j][v]);
                        }
                    }
                }
            }
            // The epilogue of `forward_block`, on the registers.
            for j in 0..FB {
                let bias = epi.bias.map_or(0.0, |b| b[fs[j]]);
                let bias = _mm512_set1_ps(bias);
                for v in 0..NV {
                    let mut z = _mm512_add_ps(acc[j][v], bias);
                    if epi.relu {
                        z = _mm512_max_ps(_mm512_setzero_ps(), z);
                    }
                    _mm512_mask_storeu_ps(out.add(fs[j] * p + q0 + v * LANES), valid[v], z);
                }
            }
        }
    }

    /// The lanes of the vector at wide position `row·S + r` (r < S) that are
    /// output positions (column < OS, row < OS), and the compact index of the first.
    #[inline(always)]
    fn valid(c: &Conv2d, row: usize, r: usize) -> (__mmask16, usize) {
        let (s, os) = (c.side, c.out_side());
        let first = if r < os { row * os + r } else { (row + 1) * os };
        if s < LANES {
            // Narrow images: a vector spans several rows.
            let (mut mask, mut q) = (0u32, row * s + r);
            for lane in 0..LANES {
                if q / s < os && q % s < os {
                    mask |= 1 << lane;
                }
                q += 1;
            }
            return (mask as __mmask16, first);
        }
        // Lanes r.. of this row, then at most the start of the next one.
        let this = if r < os {
            (1u32 << (os - r).min(LANES)) - 1
        } else {
            0
        };
        let from = s - r;
        let next = if row + 1 < os && from < LANES {
            ((1u32 << os.min(LANES - from)) - 1) << from
        } else {
            0
        };
        ((this | next) as __mmask16, first)
    }

    /// The operands of one forward call.
    struct Forward<'a> {
        c: &'a Conv2d,
        img: *const f32,
        w: *const f32,
        epi: Epilogue<'a, f32>,
        /// F·L scratch for the sums before the epilogue.
        wide: *mut f32,
        out: *mut f32,
    }

    #[inline(always)]
    unsafe fn forward_filters<const FB: usize, const NV: usize>(k: &Forward) {
        let (l, nf) = (k.c.wide_len(), k.c.filters);
        for f0 in (0..nf).step_by(FB) {
            let mut fs = [0; FB];
            for (j, f) in fs.iter_mut().enumerate() {
                *f = (f0 + j).min(nf - 1);
            }
            let mut p0 = 0;
            unsafe {
                while p0 + NV * LANES <= l {
                    forward_block::<FB, NV>(k, &fs, p0, [0xffff; NV]);
                    p0 += NV * LANES;
                }
                if p0 < l {
                    forward_tail::<FB>(k, &fs, p0);
                }
            }
        }
    }

    /// The last L − p0 < NV·16 positions as one block of as many vectors as
    /// they need (the last one masked), so that its chains of K² dependent
    /// multiply-adds overlap as in a full block.
    #[inline(always)]
    unsafe fn forward_tail<const FB: usize>(k: &Forward, fs: &[usize; FB], p0: usize) {
        let rest = k.c.wide_len() - p0;
        let m = |v: usize| tail_mask(rest.saturating_sub(v * LANES));
        unsafe {
            match rest.div_ceil(LANES) {
                1 => forward_block::<FB, 1>(k, fs, p0, std::array::from_fn(m)),
                2 => forward_block::<FB, 2>(k, fs, p0, std::array::from_fn(m)),
                3 => forward_block::<FB, 3>(k, fs, p0, std::array::from_fn(m)),
                4 => forward_block::<FB, 4>(k, fs, p0, std::array::from_fn(m)),
                5 => forward_block::<FB, 5>(k, fs, p0, std::array::from_fn(m)),
                6 => forward_block::<FB, 6>(k, fs, p0, std::array::from_fn(m)),
                7 => forward_block::<FB, 7>(k, fs, p0, std::array::from_fn(m)),
                8 => forward_block::<FB, 8>(k, fs, p0, std::array::from_fn(m)),
                _ => unreachable!("a tail is shorter than a block of at most 8 vectors"),
            }
        }
    }

    #[inline(always)]
    unsafe fn forward_block<const FB: usize, const NV: usize>(
        kernel: &Forward,
        fs: &[usize; FB],
        p0: usize,
        masks: [__mmask16; NV],
    ) {
        let Forward {
            c,
            img,
            w,
            epi,
            wide,
            out,
        } = *kernel;
        let (s, k, kk, p, l) = (c.side, c.kernel, c.patch(), c.positions(), c.wide_len());
        // Where each vector's valid lanes go in the compact layout.
        let (mut lanes, mut first) = ([0 as __mmask16; NV], [0usize; NV]);
        let (mut row, mut r) = (p0 / s, p0 % s);
        for v in 0..NV {
            (lanes[v], first[v]) = valid(c, row, r);
            r += LANES;
            while r >= s {
                r -= s;
                row += 1;
            }
        }
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); NV]; FB];
            for ky in 0..k {
                for kx in 0..k {
                    let src = img.add(ky * s + kx + p0);
                    let mut xv = [_mm512_setzero_ps(); NV];
                    for v in 0..NV {
                        xv[v] = _mm512_maskz_loadu_ps(masks[v], src.add(v * LANES));
                    }
                    for j in 0..FB {
                        let wb = _mm512_set1_ps(*w.add(fs[j] * kk + ky * k + kx));
                        for v in 0..NV {
                            acc[j][v] = _mm512_fmadd_ps(wb, xv[v], acc[j][v]);
                        }
                    }
                }
            }
            // act(Z + b), as in the portable epilogue: the bias (0 without one)
            // added, then ReLU as max(0, z), which keeps NaN and −0 as the
            // select does.
            let mut bias = [_mm512_setzero_ps(); FB];
            if let Some(b) = epi.bias {
                for j in 0..FB {
                    bias[j] = _mm512_set1_ps(b[fs[j]]);
                }
            }
            // The sums go to the wide scratch first (a plain store of each
            // register), and the epilogue reads them back from L1: done on the
            // registers directly, the block no longer fits them.
            for j in 0..FB {
                for v in 0..NV {
                    _mm512_mask_storeu_ps(wide.add(fs[j] * l + p0 + v * LANES), masks[v], acc[j][v]);
                }
            }
            for v in 0..NV {
                let stored = ((1u32 << lanes[v].count_ones()) - 1) as __mmask16;
                for j in 0..FB {
                    let sum = _mm512_maskz_loadu_ps(masks[v], wide.add(fs[j] * l + p0 + v * LANES));
                    let mut z = _mm512_add_ps(sum, bias[j]);
                    if epi.relu {
                        z = _mm512_max_ps(_mm512_setzero_ps(), z);
                    }
                    // A vector without valid lanes stores nothing (`stored` = 0);
                    // its `first` is then past the end, so never dereferenced.
                    let packed = _mm512_maskz_compress_ps(lanes[v], z);
                    _mm512_mask_storeu_ps(out.wrapping_add(fs[j] * p + first[v]), stored, packed);
                }
            }
        }
    }

    /// [`super::delta_portable`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn delta(c: &Conv2d, d_z: &[f32], h: Option<&[f32]>, wide: &mut [f32]) {
        let (s, os, l, p) = (c.side, c.out_side(), c.wide_len(), c.positions());
        let n = c.filters * p;
        assert!(
            d_z.len() >= n && h.is_none_or(|h| h.len() >= n) && wide.len() >= c.filters * l,
            "conv_wide: slices shorter than the shape {c:?}"
        );
        // SAFETY: rows f < F, oy < OS of OS values (masked), inside the checked lengths.
        unsafe {
            let zero = _mm512_setzero_ps();
            for f in 0..c.filters {
                for oy in 0..os {
                    let (src, dst) = (f * p + oy * os, f * l + oy * s);
                    for x0 in (0..os).step_by(LANES) {
                        let m = tail_mask(os - x0);
                        let mut g = _mm512_maskz_loadu_ps(m, d_z.as_ptr().add(src + x0));
                        if let Some(h) = h {
                            let hv = _mm512_maskz_loadu_ps(m, h.as_ptr().add(src + x0));
                            g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(hv, zero), g);
                        }
                        _mm512_mask_storeu_ps(wide.as_mut_ptr().add(dst + x0), m, g);
                    }
                }
            }
        }
    }

    /// acc[j][i] += δ[fs[j], p0..p0 + 16]·x[offs[i] + p0..] (lanes outside `m` read as 0).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn d_weight_step<const FB: usize, const TB: usize>(
        acc: &mut [[__m512; TB]; FB],
        img: *const f32,
        delta: *const f32,
        fs: &[usize; FB],
        offs: &[usize; TB],
        l: usize,
        p0: usize,
        m: __mmask16,
    ) {
        unsafe {
            let mut dv = [_mm512_setzero_ps(); FB];
            for j in 0..FB {
                dv[j] = _mm512_maskz_loadu_ps(m, delta.add(fs[j] * l + p0));
            }
            for i in 0..TB {
                let xv = _mm512_maskz_loadu_ps(m, img.add(offs[i] + p0));
                for j in 0..FB {
                    acc[j][i] = _mm512_fmadd_ps(dv[j], xv, acc[j][i]);
                }
            }
        }
    }

    /// [`super::d_weight_portable`] with fused multiply-adds.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn d_weight(c: &Conv2d, img: &[f32], delta: &[f32], lanes: &mut [f32]) {
        check(c, img, lanes.len(), delta, c.filters * c.patch() * LANES);
        let (img, delta, lanes) = (img.as_ptr(), delta.as_ptr(), lanes.as_mut_ptr());
        // SAFETY: as in `forward`; lanes hold F·K²·16 values.
        unsafe {
            match c.filters {
                1 => d_weight_filters::<1, 7>(c, img, delta, lanes),
                2 => d_weight_filters::<2, 7>(c, img, delta, lanes),
                _ => d_weight_filters::<3, 7>(c, img, delta, lanes),
            }
        }
    }

    #[inline(always)]
    unsafe fn d_weight_filters<const FB: usize, const TB: usize>(
        c: &Conv2d,
        img: *const f32,
        delta: *const f32,
        lanes: *mut f32,
    ) {
        let (s, k, kk, l, nf) = (c.side, c.kernel, c.patch(), c.wide_len(), c.filters);
        let main = l / LANES * LANES;
        let last = tail_mask(l - main);
        for f0 in (0..nf).step_by(FB) {
            let mut fs = [0; FB];
            for (j, f) in fs.iter_mut().enumerate() {
                *f = (f0 + j).min(nf - 1);
            }
            for t0 in (0..kk).step_by(TB) {
                let (mut ts, mut offs) = ([0; TB], [0; TB]);
                for i in 0..TB {
                    ts[i] = (t0 + i).min(kk - 1);
                    offs[i] = ts[i] / k * s + ts[i] % k;
                }
                unsafe {
                    let mut acc = [[_mm512_setzero_ps(); TB]; FB];
                    for j in 0..FB {
                        for i in 0..TB {
                            acc[j][i] = _mm512_loadu_ps(lanes.add((fs[j] * kk + ts[i]) * LANES));
                        }
                    }
                    for p0 in (0..main).step_by(LANES) {
                        d_weight_step(&mut acc, img, delta, &fs, &offs, l, p0, 0xffff);
                    }
                    if main < l {
                        d_weight_step(&mut acc, img, delta, &fs, &offs, l, main, last);
                    }
                    for j in 0..FB.min(nf - f0) {
                        for i in 0..TB.min(kk - t0) {
                            _mm512_storeu_ps(lanes.add((fs[j] * kk + ts[i]) * LANES), acc[j][i]);
                        }
                    }
                }
            }
        }
    }

    /// The operands of one compact ∂W call.
    struct DWeight<'a> {
        c: &'a Conv2d,
        img: *const f32,
        delta: *mut f32,
        h: *const f32,
        lanes: *mut f32,
    }

    /// [`super::d_weight_compact_portable`] with fused multiply-adds, in blocks
    /// of 8 filters × 3 taps (per 16 positions: the three taps' vectors, each
    /// read as two runs as in the compact forward pass, then each filter's δ
    /// once: 14 loads per 24 multiply-adds). The first block
    /// of taps of each filter applies ReLU's mask to δ as it loads it and
    /// stores it back, so no separate pass over δ is needed.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn d_weight_compact(
        c: &Conv2d,
        img: &[f32],
        delta: &mut [f32],
        h: Option<&[f32]>,
        lanes: &mut [f32],
    ) {
        let n = c.filters * c.positions();
        assert!(
            compact_fits(c)
                && img.len() >= c.side * c.side
                && delta.len() >= n
                && h.is_none_or(|h| h.len() >= n)
                && lanes.len() >= c.filters * c.patch() * LANES,
            "conv_wide: slices shorter than the shape {c:?}, or rows shorter than a vector"
        );
        let k = DWeight {
            c,
            img: img.as_ptr(),
            delta: delta.as_mut_ptr(),
            h: h.map_or(std::ptr::null(), |h| h.as_ptr()),
            lanes: lanes.as_mut_ptr(),
        };
        let kk = c.patch();
        for f0 in (0..c.filters).step_by(8) {
            let mut t0 = 0;
            while t0 < kk {
                // SAFETY: the assertion bounds every access: filters < F,
                // taps < K², compact positions < OS² (masked at the end), and
                // image reads o_t + oy·S + ox < S² for oy, ox < OS.
                unsafe {
                    match (kk - t0).min(3) {
                        3 => d_weight_taps::<3>(&k, f0, t0),
                        2 => d_weight_taps::<2>(&k, f0, t0),
                        _ => d_weight_taps::<1>(&k, f0, t0),
                    }
                }
                t0 += 3;
            }
        }
    }

    #[inline(always)]
    unsafe fn d_weight_taps<const TB: usize>(k: &DWeight, f0: usize, t0: usize) {
        unsafe {
            if t0 == 0 && !k.h.is_null() {
                d_weight_compact_block::<8, TB, true>(k, f0, t0);
            } else {
                d_weight_compact_block::<8, TB, false>(k, f0, t0);
            }
        }
    }

    /// lanes[f, t, ·] for filters f0..f0 + FB (the last repeated past F, its
    /// sums not stored) and taps t0..t0 + TB, over all positions; with `MASK`,
    /// δ of these filters masked by h > 0 in place on the way.
    #[inline(always)]
    unsafe fn d_weight_compact_block<const FB: usize, const TB: usize, const MASK: bool>(
        k: &DWeight,
        f0: usize,
        t0: usize,
    ) {
        let DWeight {
            c,
            img,
            delta,
            h,
            lanes,
        } = *k;
        let (s, os, kk, p, nf) = (c.side, c.out_side(), c.patch(), c.positions(), c.filters);
        let jump = s - os;
        let fs: [usize; FB] = std::array::from_fn(|j| (f0 + j).min(nf - 1));
        let offs: [usize; TB] = std::array::from_fn(|i| (t0 + i) / c.kernel * s + (t0 + i) % c.kernel);
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); TB]; FB];
            for j in 0..FB {
                for i in 0..TB {
                    acc[j][i] = _mm512_loadu_ps(lanes.add((fs[j] * kk + t0 + i) * LANES));
                }
            }
            let zero = _mm512_setzero_ps();
            let (mut oy, mut ox) = (0, 0);
            for q0 in (0..p).step_by(LANES) {
                let m = tail_mask(p - q0);
                let lo = m & tail_mask(os - ox);
                let (hi, base) = (m & !lo, oy * s + ox);
                let mut xv = [zero; TB];
                for i in 0..TB {
                    let run = img.add(offs[i] + base);
                    xv[i] = _mm512_maskz_loadu_ps(lo, run);
                    xv[i] = _mm512_mask_loadu_ps(xv[i], hi, run.wrapping_add(jump));
                }
                for j in 0..FB {
                    let at = fs[j] * p + q0;
                    let mut dv = _mm512_maskz_loadu_ps(m, delta.add(at));
                    if MASK {
                        let hv = _mm512_maskz_loadu_ps(m, h.add(at));
                        dv = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(hv, zero), dv);
                        _mm512_mask_storeu_ps(delta.add(at), m, dv);
                    }
                    for i in 0..TB {
                        acc[j][i] = _mm512_fmadd_ps(dv, xv[i], acc[j][i]);
                    }
                }
                // os ≥ 16: the next vector starts at most one row further on.
                ox += LANES;
                if ox >= os {
                    ox -= os;
                    oy += 1;
                }
            }
            for j in 0..FB.min(nf - f0) {
                for i in 0..TB {
                    _mm512_storeu_ps(lanes.add((fs[j] * kk + t0 + i) * LANES), acc[j][i]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::random_vec;
    use crate::rng::Rng;

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

    /// Both kernels (the ones `f32` dispatches to, and the portable ones)
    /// against direct sums in f64, on odd and report shapes.
    #[test]
    fn kernels_match_direct_sums() {
        let mut rng = Rng::new(31, 0);
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
            let c = Conv2d {
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
                f32::conv_wide_forward(&c, &img, &w, epi, &mut vec![0.0; filters * l], &mut out);
                let mut out_portable = vec![f32::NAN; filters * p];
                forward_compact_portable(&c, &img, &w, epi, &mut vec![0.0; filters * l], &mut out_portable);
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
                        assert!((plain - z[f * l + q]).abs() < 1e-5 * (1.0 + plain.abs()) * kernel as f32);
                        assert_eq!(outs[1][i], (plain + bias[f]).max(0.0), "{c:?}");
                    }
                }
            }
            // δ laid out wide, with and without the ReLU mask.
            let d_compact: Vec<f32> = random_vec(filters * p, &mut rng);
            let h: Vec<f32> = random_vec(filters * p, &mut rng);
            for mask in [None, Some(&h[..])] {
                let mut wide = vec![7.0f32; filters * l];
                f32::conv_wide_delta(&c, &d_compact, mask, &mut wide);
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
            f32::conv_wide_d_weight(&c, &img, &delta, &mut lanes);
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

    /// The forward pass over the compact positions gives the bits of the pass
    /// over the wide ones, with and without bias and ReLU.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn compact_and_wide_forward_are_the_same_bits() {
        if !f32::conv_wide_fast() {
            return;
        }
        let mut rng = Rng::new(32, 0);
        for (side, kernel, filters) in [(28, 7, 32), (28, 7, 3), (28, 13, 9), (28, 11, 13), (20, 5, 6)] {
            let c = Conv2d {
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
                        // SAFETY: `conv_wide_fast` checked AVX-512F.
                        unsafe { avx512::forward_layout(&c, &img, &w, epi, &mut wide, &mut out, compact) };
                        out
                    })
                    .collect();
                let bits = |o: &[f32]| o.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&outs[0]), bits(&outs[1]), "{c:?}");
                assert!(
                    outs[1].iter().all(|v| v.is_finite()),
                    "{c:?}: a position not written"
                );
            }
        }
    }

    /// ∂W from compact δ (the kernel f32 dispatches to, and the portable one)
    /// against direct sums in f64, with ReLU's mask applied in place.
    #[test]
    fn compact_d_weight_matches_direct_sums() {
        let mut rng = Rng::new(33, 0);
        for (side, kernel, filters) in [(28, 7, 32), (28, 5, 3), (28, 13, 9), (20, 2, 6), (24, 9, 5)] {
            let c = Conv2d {
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
                f32::conv_compact_d_weight(&c, &img, &mut d, mask, &mut lanes);
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
                                .map(|q| masked[f * p + q] as f64 * img[off + q / os * side + q % os] as f64)
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

    #[test]
    fn short_slices_are_refused() {
        let c = Conv2d {
            side: 8,
            kernel: 3,
            filters: 2,
        };
        let img = vec![0.0f32; 63];
        let r = std::panic::catch_unwind(|| {
            let (mut wide, mut out) = (vec![0.0f32; 2 * c.wide_len()], vec![0.0f32; 2 * 36]);
            let epi = Epilogue {
                bias: None,
                relu: false,
            };
            f32::conv_wide_forward(&c, &img, &[0.0; 18], epi, &mut wide, &mut out)
        });
        assert!(r.is_err());
    }
}
