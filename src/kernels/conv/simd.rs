//! The kernels of [`super`] written once over 16 lanes ([`F32x16`]): the
//! convolution's forward sums and ∂W lanes on the wide and the compact
//! layouts, with fused multiply-adds. Each level (`avx512.rs`, `avx2.rs`,
//! `neon.rs`) compiles them with its target features through [`level!`] and
//! picks its register blocks; every lane's sums run in the same order at
//! every level, so the levels give the same bits as each other (tested in
//! `super::tests`, and against direct f64 sums and the portable references).
//!
//! Register blocks are FB filters × NV vectors (forward) or FB filters × TB
//! taps (∂W), 16 lanes each. Blocks at the edges repeat the last filter or
//! tap and store only the valid results; the last positions are read and
//! written with masks.
// Register blocks are indexed by filter, vector and tap.
#![allow(clippy::needless_range_loop)]

use super::{Epilogue, LANES, Shape, compact_fits};
use crate::kernels::simd::F32x16;

/// The bits of the first `n` (≤ 16) lanes.
pub(super) fn tail_bits(n: usize) -> u16 {
    if n >= LANES {
        0xffff
    } else {
        ((1u32 << n) - 1) as u16
    }
}

/// The operands of one forward call, checked.
pub(super) struct Forward<'a> {
    c: &'a Shape,
    img: *const f32,
    w: *const f32,
    epi: Epilogue<'a, f32>,
    /// F·L scratch for the sums before the epilogue.
    wide: *mut f32,
    out: *mut f32,
}

impl<'a> Forward<'a> {
    /// Panics unless the slices hold the shape's values, and, over the
    /// compact layout, unless its rows hold a vector ([`compact_fits`]).
    pub(super) fn new(
        c: &'a Shape,
        img: &[f32],
        w: &[f32],
        epi: Epilogue<'a, f32>,
        wide: &mut [f32],
        out: &mut [f32],
        compact: bool,
    ) -> Self {
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
        Forward {
            c,
            img: img.as_ptr(),
            w: w.as_ptr(),
            epi,
            wide: wide.as_mut_ptr(),
            out: out.as_mut_ptr(),
        }
    }
}

/// The forward pass over the compact positions q = oy·OS + ox directly:
/// the same sums as over the wide layout (each position's taps in the same
/// order, from zero), without the wide layout's unused positions. Each tap
/// reads a vector in two runs, so blocks hold more filters than
/// [`forward_filters`]' to amortise the loads: FB filters × NV vectors, and
/// FB2 × NV2 for the last ≤ FB2 filters.
///
/// # Safety
/// Inside the level's target features; `k` built for the compact layout.
#[inline(always)]
pub(super) unsafe fn compact_filters<
    V: F32x16,
    const FB: usize,
    const NV: usize,
    const FB2: usize,
    const NV2: usize,
>(
    k: &Forward,
) {
    let nf = k.c.filters;
    let mut f0 = 0;
    while f0 < nf {
        // SAFETY: `Forward::new` bounds every access: taps read x[o_t + p]
        // with o_t + p < S², filters f < F, compact positions < OS².
        unsafe {
            if nf - f0 <= FB2 {
                compact_positions::<V, FB2, NV2>(k, f0);
                f0 += FB2;
            } else {
                compact_positions::<V, FB, NV>(k, f0);
                f0 += FB;
            }
        }
    }
}

/// All positions of filters f0..f0 + FB (the last filter repeated past F).
#[inline(always)]
unsafe fn compact_positions<V: F32x16, const FB: usize, const NV: usize>(k: &Forward, f0: usize) {
    let (p, nf) = (k.c.positions(), k.c.filters);
    let fs: [usize; FB] = std::array::from_fn(|j| (f0 + j).min(nf - 1));
    let mut q0 = 0;
    unsafe {
        while q0 + NV * LANES <= p {
            compact_block::<V, FB, NV>(k, &fs, q0);
            q0 += NV * LANES;
        }
        // The last positions as one block of as many vectors as they
        // need, as in `forward_tail`.
        match (p - q0).div_ceil(LANES) {
            0 => {}
            1 => compact_block::<V, FB, 1>(k, &fs, q0),
            2 => compact_block::<V, FB, 2>(k, &fs, q0),
            3 => compact_block::<V, FB, 3>(k, &fs, q0),
            4 => compact_block::<V, FB, 4>(k, &fs, q0),
            5 => compact_block::<V, FB, 5>(k, &fs, q0),
            _ => unreachable!("a tail is shorter than a block of at most 6 vectors"),
        }
    }
}

/// Positions q0..q0 + 16·NV (those < OS²) of filters `fs`. Vector v starts
/// at (oy, ox); its first OS − ox lanes read the image run at oy·S + ox + o_t,
/// the rest the next row's, S − OS further on: two masked loads per tap.
#[inline(always)]
unsafe fn compact_block<V: F32x16, const FB: usize, const NV: usize>(
    kernel: &Forward,
    fs: &[usize; FB],
    q0: usize,
) {
    let Forward {
        c, img, w, epi, out, ..
    } = *kernel;
    let (s, os, k, kk, p) = (c.side, c.out_side(), c.kernel, c.patch(), c.positions());
    let jump = s - os;
    unsafe {
        let (mut lo, mut hi, mut valid) = ([V::mask(0); NV], [V::mask(0); NV], [V::mask(0); NV]);
        let mut base = [0usize; NV];
        for v in 0..NV {
            let q = q0 + v * LANES;
            let bits = tail_bits(p.saturating_sub(q));
            let (oy, ox) = (q / os, q % os);
            base[v] = oy * s + ox;
            let low = bits & tail_bits(os - ox);
            (valid[v], lo[v], hi[v]) = (V::mask(bits), V::mask(low), V::mask(bits & !low));
        }
        let mut acc = [[V::zero(); NV]; FB];
        for ky in 0..k {
            for kx in 0..k {
                let src = img.add(ky * s + kx);
                let mut xv = [V::zero(); NV];
                for v in 0..NV {
                    let run = src.add(base[v]);
                    xv[v] = V::load_masked(lo[v], run).load_masked_into(hi[v], run.wrapping_add(jump));
                }
                for j in 0..FB {
                    let wb = V::splat(*w.add(fs[j] * kk + ky * k + kx));
                    for v in 0..NV {
                        acc[j][v] = V::mul_add(wb, xv[v], acc[j][v]);
                    }
                }
            }
        }
        // The epilogue of `forward_block`, on the registers.
        for j in 0..FB {
            let bias = V::splat(epi.bias.map_or(0.0, |b| b[fs[j]]));
            for v in 0..NV {
                let mut z = acc[j][v].add(bias);
                if epi.relu {
                    z = z.relu();
                }
                z.store_masked(valid[v], out.add(fs[j] * p + q0 + v * LANES));
            }
        }
    }
}

/// The lanes of the vector at wide position `row·S + r` (r < S) that are
/// output positions (column < OS, row < OS), and the compact index of the first.
#[inline(always)]
fn valid(c: &Shape, row: usize, r: usize) -> (u16, usize) {
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
        return (mask as u16, first);
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
    ((this | next) as u16, first)
}

/// The forward pass over the wide positions, FB filters × NV vectors a block.
///
/// # Safety
/// Inside the level's target features.
#[inline(always)]
pub(super) unsafe fn forward_filters<V: F32x16, const FB: usize, const NV: usize>(k: &Forward) {
    let (l, nf) = (k.c.wide_len(), k.c.filters);
    for f0 in (0..nf).step_by(FB) {
        let fs: [usize; FB] = std::array::from_fn(|j| (f0 + j).min(nf - 1));
        let mut p0 = 0;
        // SAFETY: `Forward::new` bounds every access: positions p < L are
        // masked at the end.
        unsafe {
            let full = [V::mask(0xffff); NV];
            while p0 + NV * LANES <= l {
                forward_block::<V, FB, NV, true>(k, &fs, p0, full);
                p0 += NV * LANES;
            }
            if p0 < l {
                forward_tail::<V, FB>(k, &fs, p0);
            }
        }
    }
}

/// The last L − p0 < NV·16 positions as one block of as many vectors as
/// they need (the last one masked), so that its chains of K² dependent
/// multiply-adds overlap as in a full block.
#[inline(always)]
unsafe fn forward_tail<V: F32x16, const FB: usize>(k: &Forward, fs: &[usize; FB], p0: usize) {
    let rest = k.c.wide_len() - p0;
    let bits = |v: usize| tail_bits(rest.saturating_sub(v * LANES));
    unsafe {
        let masks = |v: usize| V::mask(bits(v));
        match rest.div_ceil(LANES) {
            1 => forward_block::<V, FB, 1, false>(k, fs, p0, std::array::from_fn(masks)),
            2 => forward_block::<V, FB, 2, false>(k, fs, p0, std::array::from_fn(masks)),
            3 => forward_block::<V, FB, 3, false>(k, fs, p0, std::array::from_fn(masks)),
            4 => forward_block::<V, FB, 4, false>(k, fs, p0, std::array::from_fn(masks)),
            5 => forward_block::<V, FB, 5, false>(k, fs, p0, std::array::from_fn(masks)),
            6 => forward_block::<V, FB, 6, false>(k, fs, p0, std::array::from_fn(masks)),
            7 => forward_block::<V, FB, 7, false>(k, fs, p0, std::array::from_fn(masks)),
            8 => forward_block::<V, FB, 8, false>(k, fs, p0, std::array::from_fn(masks)),
            _ => unreachable!("a tail is shorter than a block of at most 8 vectors"),
        }
    }
}

/// Wide positions p0..p0 + 16·NV of filters `fs`: the lanes in `masks`
/// (all of them when `FULL`).
#[inline(always)]
unsafe fn forward_block<V: F32x16, const FB: usize, const NV: usize, const FULL: bool>(
    kernel: &Forward,
    fs: &[usize; FB],
    p0: usize,
    masks: [V::Mask; NV],
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
    let (mut lanes, mut first) = ([0u16; NV], [0usize; NV]);
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
        let mut acc = [[V::zero(); NV]; FB];
        for ky in 0..k {
            for kx in 0..k {
                let src = img.add(ky * s + kx + p0);
                let mut xv = [V::zero(); NV];
                for v in 0..NV {
                    xv[v] = if FULL {
                        V::load(src.add(v * LANES))
                    } else {
                        V::load_masked(masks[v], src.add(v * LANES))
                    };
                }
                for j in 0..FB {
                    let wb = V::splat(*w.add(fs[j] * kk + ky * k + kx));
                    for v in 0..NV {
                        acc[j][v] = V::mul_add(wb, xv[v], acc[j][v]);
                    }
                }
            }
        }
        // act(Z + b), as in the portable epilogue: the bias (0 without one)
        // added, then ReLU as max(0, z), which keeps NaN and −0 as the
        // select does.
        let mut bias = [V::zero(); FB];
        if let Some(b) = epi.bias {
            for j in 0..FB {
                bias[j] = V::splat(b[fs[j]]);
            }
        }
        // The sums go to the wide scratch first (a plain store of each
        // register), and the epilogue reads them back from L1: done on the
        // registers directly, the block no longer fits them.
        for j in 0..FB {
            for v in 0..NV {
                acc[j][v].store_masked(masks[v], wide.add(fs[j] * l + p0 + v * LANES));
            }
        }
        for v in 0..NV {
            for j in 0..FB {
                let sum = V::load_masked(masks[v], wide.add(fs[j] * l + p0 + v * LANES));
                let mut z = sum.add(bias[j]);
                if epi.relu {
                    z = z.relu();
                }
                // A vector without valid lanes stores nothing; its `first`
                // is then past the end, so never dereferenced.
                z.store_compressed(lanes[v], out.wrapping_add(fs[j] * p + first[v]));
            }
        }
    }
}

/// [`super::delta_portable`].
///
/// # Safety
/// Inside the level's target features.
#[inline(always)]
pub(super) unsafe fn delta<V: F32x16>(c: &Shape, d_z: &[f32], h: Option<&[f32]>, wide: &mut [f32]) {
    let (s, os, l, p) = (c.side, c.out_side(), c.wide_len(), c.positions());
    let n = c.filters * p;
    assert!(
        d_z.len() >= n && h.is_none_or(|h| h.len() >= n) && wide.len() >= c.filters * l,
        "conv_wide: slices shorter than the shape {c:?}"
    );
    // SAFETY: rows f < F, oy < OS of OS values (masked), inside the checked lengths.
    unsafe {
        let masks: Vec<V::Mask> = (0..os)
            .step_by(LANES)
            .map(|x0| V::mask(tail_bits(os - x0)))
            .collect();
        for f in 0..c.filters {
            for oy in 0..os {
                let (src, dst) = (f * p + oy * os, f * l + oy * s);
                for (x0, &m) in (0..os).step_by(LANES).zip(&masks) {
                    let mut g = V::load_masked(m, d_z.as_ptr().add(src + x0));
                    if let Some(h) = h {
                        g = g.where_positive(V::load_masked(m, h.as_ptr().add(src + x0)));
                    }
                    g.store_masked(m, wide.as_mut_ptr().add(dst + x0));
                }
            }
        }
    }
}

/// acc[j][i] += δ[fs[j], p0..p0 + 16]·x[offs[i] + p0..] (lanes outside `m` read as 0).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn d_weight_step<V: F32x16, const FB: usize, const TB: usize, const FULL: bool>(
    acc: &mut [[V; TB]; FB],
    img: *const f32,
    delta: *const f32,
    fs: &[usize; FB],
    offs: &[usize; TB],
    l: usize,
    p0: usize,
    m: V::Mask,
) {
    unsafe {
        let mut dv = [V::zero(); FB];
        for j in 0..FB {
            let at = delta.add(fs[j] * l + p0);
            dv[j] = if FULL { V::load(at) } else { V::load_masked(m, at) };
        }
        for i in 0..TB {
            let at = img.add(offs[i] + p0);
            let xv = if FULL { V::load(at) } else { V::load_masked(m, at) };
            for j in 0..FB {
                acc[j][i] = V::mul_add(dv[j], xv, acc[j][i]);
            }
        }
    }
}

/// [`super::d_weight_portable`] with fused multiply-adds, FB filters × TB
/// taps a block.
///
/// # Safety
/// Inside the level's target features.
#[inline(always)]
pub(super) unsafe fn d_weight<V: F32x16, const FB: usize, const TB: usize>(
    c: &Shape,
    img: &[f32],
    delta: &[f32],
    lanes: &mut [f32],
) {
    super::check(c, img, lanes.len(), delta, c.filters * c.patch() * LANES);
    let (img, delta, lanes) = (img.as_ptr(), delta.as_ptr(), lanes.as_mut_ptr());
    let (s, k, kk, l, nf) = (c.side, c.kernel, c.patch(), c.wide_len(), c.filters);
    let main = l / LANES * LANES;
    // SAFETY: the check bounds every access: filters < F, taps < K²,
    // positions < L (masked at the end); lanes hold F·K²·16 values.
    unsafe {
        let (full, last) = (V::mask(0xffff), V::mask(tail_bits(l - main)));
        for f0 in (0..nf).step_by(FB) {
            let fs: [usize; FB] = std::array::from_fn(|j| (f0 + j).min(nf - 1));
            for t0 in (0..kk).step_by(TB) {
                let ts: [usize; TB] = std::array::from_fn(|i| (t0 + i).min(kk - 1));
                let offs: [usize; TB] = std::array::from_fn(|i| ts[i] / k * s + ts[i] % k);
                let mut acc = [[V::zero(); TB]; FB];
                for j in 0..FB {
                    for i in 0..TB {
                        acc[j][i] = V::load(lanes.add((fs[j] * kk + ts[i]) * LANES));
                    }
                }
                for p0 in (0..main).step_by(LANES) {
                    d_weight_step::<V, FB, TB, true>(&mut acc, img, delta, &fs, &offs, l, p0, full);
                }
                if main < l {
                    d_weight_step::<V, FB, TB, false>(&mut acc, img, delta, &fs, &offs, l, main, last);
                }
                for j in 0..FB.min(nf - f0) {
                    for i in 0..TB.min(kk - t0) {
                        acc[j][i].store(lanes.add((fs[j] * kk + ts[i]) * LANES));
                    }
                }
            }
        }
    }
}

/// The operands of one compact ∂W call, checked.
pub(super) struct DWeight<'a> {
    c: &'a Shape,
    img: *const f32,
    delta: *mut f32,
    h: *const f32,
    lanes: *mut f32,
}

impl<'a> DWeight<'a> {
    /// Panics unless the slices hold the shape's values and its rows hold a
    /// vector ([`compact_fits`]).
    pub(super) fn new(
        c: &'a Shape,
        img: &[f32],
        delta: &mut [f32],
        h: Option<&[f32]>,
        lanes: &mut [f32],
    ) -> Self {
        let n = c.filters * c.positions();
        assert!(
            compact_fits(c)
                && img.len() >= c.side * c.side
                && delta.len() >= n
                && h.is_none_or(|h| h.len() >= n)
                && lanes.len() >= c.filters * c.patch() * LANES,
            "conv_wide: slices shorter than the shape {c:?}, or rows shorter than a vector"
        );
        DWeight {
            c,
            img: img.as_ptr(),
            delta: delta.as_mut_ptr(),
            h: h.map_or(std::ptr::null(), |h| h.as_ptr()),
            lanes: lanes.as_mut_ptr(),
        }
    }
}

/// [`super::d_weight_compact_portable`] with fused multiply-adds, in blocks
/// of FB filters × TB (≤ 3) taps: per 16 positions, the taps' vectors, each
/// read as two runs as in the compact forward pass, then each filter's δ
/// once. The first block of taps of each filter applies ReLU's mask to δ as
/// it loads it and stores it back, so no separate pass over δ is needed.
///
/// # Safety
/// Inside the level's target features.
#[inline(always)]
pub(super) unsafe fn d_weight_compact<V: F32x16, const FB: usize, const TB: usize>(k: &DWeight) {
    let (c, kk) = (k.c, k.c.patch());
    // The masks and image offset of each vector of 16 positions, the same
    // for every block: its valid lanes, those in its first row (lo) and
    // those in the next (hi).
    let (s, os, p) = (c.side, c.out_side(), c.positions());
    let (mut oy, mut ox) = (0, 0);
    let mut steps = Vec::with_capacity(p.div_ceil(LANES));
    for q0 in (0..p).step_by(LANES) {
        let bits = tail_bits(p - q0);
        let low = bits & tail_bits(os - ox);
        // SAFETY: building masks needs the level's features, enabled here.
        let masks = unsafe { [V::mask(bits), V::mask(low), V::mask(bits & !low)] };
        steps.push(Step {
            masks,
            base: oy * s + ox,
        });
        // os ≥ 16: the next vector starts at most one row further on.
        ox += LANES;
        if ox >= os {
            ox -= os;
            oy += 1;
        }
    }
    for f0 in (0..k.c.filters).step_by(FB) {
        let mut t0 = 0;
        while t0 < kk {
            // SAFETY: `DWeight::new` bounds every access: filters < F, taps
            // < K², compact positions < OS² (masked at the end), and image
            // reads o_t + oy·S + ox < S² for oy, ox < OS.
            unsafe {
                match (kk - t0).min(TB) {
                    n if n == TB => d_weight_taps::<V, FB, TB>(k, &steps, f0, t0),
                    2 => d_weight_taps::<V, FB, 2>(k, &steps, f0, t0),
                    _ => d_weight_taps::<V, FB, 1>(k, &steps, f0, t0),
                }
            }
            t0 += TB;
        }
    }
}

#[inline(always)]
unsafe fn d_weight_taps<V: F32x16, const FB: usize, const TB: usize>(
    k: &DWeight,
    steps: &[Step<V>],
    f0: usize,
    t0: usize,
) {
    unsafe {
        if t0 == 0 && !k.h.is_null() {
            d_weight_compact_block::<V, FB, TB, true>(k, steps, f0, t0);
        } else {
            d_weight_compact_block::<V, FB, TB, false>(k, steps, f0, t0);
        }
    }
}

/// One vector of 16 compact positions in the ∂W pass: its masks (valid,
/// first row, next row) and where its first row starts in the image.
struct Step<V: F32x16> {
    masks: [V::Mask; 3],
    base: usize,
}

/// lanes[f, t, ·] for filters f0..f0 + FB (the last repeated past F, its
/// sums not stored) and taps t0..t0 + TB, over all positions; with `MASK`,
/// δ of these filters masked by h > 0 in place on the way.
#[inline(always)]
unsafe fn d_weight_compact_block<V: F32x16, const FB: usize, const TB: usize, const MASK: bool>(
    k: &DWeight,
    steps: &[Step<V>],
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
    let (s, kk, p, nf) = (c.side, c.patch(), c.positions(), c.filters);
    let jump = s - c.out_side();
    let fs: [usize; FB] = std::array::from_fn(|j| (f0 + j).min(nf - 1));
    let offs: [usize; TB] = std::array::from_fn(|i| (t0 + i) / c.kernel * s + (t0 + i) % c.kernel);
    unsafe {
        let mut acc = [[V::zero(); TB]; FB];
        for j in 0..FB {
            for i in 0..TB {
                acc[j][i] = V::load(lanes.add((fs[j] * kk + t0 + i) * LANES));
            }
        }
        for (q0, step) in (0..p).step_by(LANES).zip(steps) {
            let ([m, lo, hi], base) = (step.masks, step.base);
            let mut xv = [V::zero(); TB];
            for i in 0..TB {
                let run = img.add(offs[i] + base);
                xv[i] = V::load_masked(lo, run).load_masked_into(hi, run.wrapping_add(jump));
            }
            for j in 0..FB {
                let at = fs[j] * p + q0;
                let mut dv = V::load_masked(m, delta.add(at));
                if MASK {
                    dv = dv.where_positive(V::load_masked(m, h.add(at)));
                    dv.store_masked(m, delta.add(at));
                }
                for i in 0..TB {
                    acc[j][i] = V::mul_add(dv, xv[i], acc[j][i]);
                }
            }
        }
        for j in 0..FB.min(nf - f0) {
            for i in 0..TB {
                acc[j][i].store(lanes.add((fs[j] * kk + t0 + i) * LANES));
            }
        }
    }
}

/// A level's four convolution kernels: the bodies above compiled with the
/// level's target features and its register blocks.
///
/// `forward: [NV for 1 filter, NV for 2, FB × NV for more]`, `compact: [FB × NV, FB2 × NV2]`
/// (see [`compact_filters`]), `d_weight: [TB for 1 filter, TB for 2, FB × TB for more]`,
/// `d_weight_compact: FB × TB`; `compact_layout`: whether the level runs on
/// the compact layout where it can.
macro_rules! level {
    (
        $vector:ty, $features:literal,
        forward: [$nv1:literal, $nv2:literal, $ffb:literal x $fnv:literal],
        compact: [$cfb:literal x $cnv:literal, $cfb2:literal x $cnv2:literal],
        d_weight: [$tb1:literal, $tb2:literal, $dfb:literal x $dtb:literal],
        d_weight_compact: $kfb:literal x $ktb:literal,
        compact_layout: $compact:literal $(,)?
    ) => {
        use super::{Epilogue, Shape, simd};

        /// Whether this level runs on the compact layout where it can ([`super::compact`]).
        pub const COMPACT_LAYOUT: bool = $compact;

        /// The forward sums with their epilogue, over the compact layout when
        /// [`super::compact`] says so, else the wide one.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn forward(
            c: &Shape,
            img: &[f32],
            w: &[f32],
            epi: Epilogue<f32>,
            wide: &mut [f32],
            out: &mut [f32],
        ) {
            // SAFETY: as this function's.
            unsafe { forward_layout(c, img, w, epi, wide, out, super::compact(c, COMPACT_LAYOUT)) }
        }

        /// [`forward`] over the compact positions (`compact`, which needs
        /// [`super::compact_fits`]) or the wide ones; the same bits either way.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn forward_layout(
            c: &Shape,
            img: &[f32],
            w: &[f32],
            epi: Epilogue<f32>,
            wide: &mut [f32],
            out: &mut [f32],
            compact: bool,
        ) {
            let k = simd::Forward::new(c, img, w, epi, wide, out, compact);
            // SAFETY: the features are enabled here; `Forward::new` checked the slices.
            unsafe {
                if compact {
                    return simd::compact_filters::<$vector, $cfb, $cnv, $cfb2, $cnv2>(&k);
                }
                match c.filters {
                    1 => simd::forward_filters::<$vector, 1, $nv1>(&k),
                    2 => simd::forward_filters::<$vector, 2, $nv2>(&k),
                    _ => simd::forward_filters::<$vector, $ffb, $fnv>(&k),
                }
            }
        }

        /// [`super::delta_portable`].
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn delta(c: &Shape, d_z: &[f32], h: Option<&[f32]>, wide: &mut [f32]) {
            // SAFETY: the features are enabled here; the body checks the slices.
            unsafe { simd::delta::<$vector>(c, d_z, h, wide) }
        }

        /// [`super::d_weight_portable`] with fused multiply-adds.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn d_weight(c: &Shape, img: &[f32], delta: &[f32], lanes: &mut [f32]) {
            // SAFETY: the features are enabled here; the body checks the slices.
            unsafe {
                match c.filters {
                    1 => simd::d_weight::<$vector, 1, $tb1>(c, img, delta, lanes),
                    2 => simd::d_weight::<$vector, 2, $tb2>(c, img, delta, lanes),
                    _ => simd::d_weight::<$vector, $dfb, $dtb>(c, img, delta, lanes),
                }
            }
        }

        /// [`super::d_weight_compact_portable`] with fused multiply-adds.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn d_weight_compact(
            c: &Shape,
            img: &[f32],
            delta: &mut [f32],
            h: Option<&[f32]>,
            lanes: &mut [f32],
        ) {
            let k = simd::DWeight::new(c, img, delta, h, lanes);
            // SAFETY: the features are enabled here; `DWeight::new` checked the slices.
            unsafe { simd::d_weight_compact::<$vector, $kfb, $ktb>(&k) }
        }
    };
}
pub(super) use level;
