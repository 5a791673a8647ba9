//! The AVX-512 kernels of [`super`]: the convolution's forward sums and ∂W
//! lanes on the wide and the compact layouts, with fused multiply-adds.
//! `kernels::conv`'s tests prove them against direct f64 sums and against
//! the portable references (the compact forward bit for bit against the wide).
//!
//! Register blocks: forward 4 filters × 6 vectors of 16 positions (24
//! accumulators, 10 loads per 24 fused multiply-adds; on the compact
//! layout 8 filters × 3 vectors, 14 loads per 24), ∂W 3 filters × 7
//! taps (21 accumulators, 10 loads per 21; on the compact layout 8 × 3,
//! 14 loads per 24). Blocks at the edges repeat the
//! last filter or tap and store only the valid results; the last positions
//! are read and written with masks.
//!
//! The four kernels (forward and ∂W, on each layout) share their masks,
//! loads and register blocks, so they stay in one file of a little over 600
//! lines.
// Register blocks are indexed by filter, vector and tap.
#![allow(clippy::needless_range_loop)]
use std::arch::x86_64::*;

use super::{Epilogue, LANES, Shape, check, compact_fits};

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
    c: &Shape,
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
    c: &Shape,
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
fn valid(c: &Shape, row: usize, r: usize) -> (__mmask16, usize) {
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
    c: &'a Shape,
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
pub unsafe fn delta(c: &Shape, d_z: &[f32], h: Option<&[f32]>, wide: &mut [f32]) {
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
pub unsafe fn d_weight(c: &Shape, img: &[f32], delta: &[f32], lanes: &mut [f32]) {
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
    c: &Shape,
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
    c: &'a Shape,
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
    c: &Shape,
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
