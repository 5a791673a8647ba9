//! P×P max-pooling, stride P, as the engine runs it (the textbook twin is
//! `layers::maxpool::MaxPool`; the tests at the end of this file prove the
//! two give the same maxima and the same ∂L/∂x, bit for bit).
//!
//! ```text
//! forward    y[m, i, j] = max_{0 ≤ di,dj < P} x[m, P·i+di, P·j+dj]     m: one map (a sample's channel)
//! backward   ∂L/∂x[m, p] = ∂L/∂y[m, i, j] where p is the first maximum of window (i, j), else 0
//! ```
//! The textbook keeps each window's maximum index in forward, branching on
//! each comparison, which a CPU mispredicts about half the time on real maps.
//! Here forward folds the maxima with selects only, and backward finds each
//! maximum's position again from x and y, so forward needs no
//! index buffer and both can run on a few samples at a time while their maps
//! are in cache (`engine::cnn`).

/// Sizes of a pooling: `channels` maps of `height`×`width` per sample,
/// windows of `size`×`size`, stride `size` (rows and columns past the last
/// whole window dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub size: usize,
}

impl Pool {
    fn out(&self) -> (usize, usize) {
        (self.height / self.size, self.width / self.size)
    }

    /// Input values per sample.
    pub fn in_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Output values per sample.
    pub fn out_len(&self) -> usize {
        let (oh, ow) = self.out();
        self.channels * oh * ow
    }
}

/// Panics unless `x` holds `batch` samples and `y` their outputs.
fn check(pool: &Pool, batch: usize, x: usize, y: usize) {
    assert!(
        pool.size > 0 && x >= batch * pool.in_len() && y >= batch * pool.out_len(),
        "max-pool: slices shorter than {batch} samples of {pool:?}"
    );
}

/// y = pool(x) for `batch` samples (the maxima only: [`backward`] finds
/// each one's position again from x and y).
pub fn forward(pool: &Pool, batch: usize, x: &[f32], y: &mut [f32]) {
    check(pool, batch, x.len(), y.len());
    let (w, k) = (pool.width, pool.size);
    let (oh, ow) = pool.out();
    if oh * ow == 0 {
        return;
    }
    let map_in = pool.height * w;
    let rows = y[..batch * pool.out_len()].chunks_exact_mut(ow);
    for (r, yr) in rows.enumerate() {
        let (m, i) = (r / oh, r % oh);
        let top = &x[m * map_in + k * i * w..(m + 1) * map_in];
        // The same loop with the window side as a constant where it is
        // small, so that the window's loops unroll.
        match k {
            2 => row_max(2, w, top, yr),
            3 => row_max(3, w, top, yr),
            _ => row_max(k, w, top, yr),
        }
    }
}

/// One output row's maxima; `x` starts at the row's first window.
#[inline(always)]
fn row_max(k: usize, w: usize, x: &[f32], y: &mut [f32]) {
    for (j, out) in y.iter_mut().enumerate() {
        let mut best = x[k * j];
        for di in 0..k {
            for dj in 0..k {
                let v = x[k * j + di * w + dj];
                best = if v > best { v } else { best };
            }
        }
        *out = best;
    }
}

/// The offset (di·W + dj) within the window at `x` of the value the
/// textbook keeps for the maximum `best`: the first position in row-major
/// order holding a value equal to it, or the first when `best` is NaN. A NaN
/// is only kept when it comes first, and an earlier value equal to the
/// maximum would have kept the fold from replacing it (−0 and +0 included,
/// which compare equal), so this is the textbook's index.
#[inline(always)]
fn kept(k: usize, w: usize, x: &[f32], best: f32) -> usize {
    let mut offset = 0;
    for di in (0..k).rev() {
        for dj in (0..k).rev() {
            let o = di * w + dj;
            offset = if x[o] == best { o } else { offset };
        }
    }
    offset
}

/// ∂L/∂x from ∂L/∂y: each window's ∂L/∂y goes to the position its maximum
/// came from (written 0 + ∂L/∂y, as the textbook's sum into zeros), every
/// other input gets 0. `x` and `y` are the forward pass's input and output.
pub fn backward(pool: &Pool, batch: usize, x: &[f32], y: &[f32], d_y: &[f32], d_x: &mut [f32]) {
    check(pool, batch, x.len(), y.len());
    check(pool, batch, d_x.len(), d_y.len());
    let (h, w, k) = (pool.height, pool.width, pool.size);
    let (oh, ow) = pool.out();
    let (map_in, map_out) = (h * w, oh * ow);
    let maps = batch * pool.channels;
    let d_x = &mut d_x[..maps * map_in];
    if k * oh != h || k * ow != w {
        // Rows and columns past the last whole window get nothing.
        d_x.fill(0.0);
    }
    if map_out == 0 {
        return;
    }
    for (m, dm) in d_x.chunks_exact_mut(map_in).enumerate() {
        let xm = &x[m * map_in..(m + 1) * map_in];
        let (ym, gm) = (
            &y[m * map_out..(m + 1) * map_out],
            &d_y[m * map_out..(m + 1) * map_out],
        );
        for (i, (yr, gr)) in ym.chunks_exact(ow).zip(gm.chunks_exact(ow)).enumerate() {
            let top = k * i * w;
            match k {
                2 => row_backward(2, w, &xm[top..], yr, gr, &mut dm[top..top + k * w]),
                3 => row_backward(3, w, &xm[top..], yr, gr, &mut dm[top..top + k * w]),
                _ => row_backward(k, w, &xm[top..], yr, gr, &mut dm[top..top + k * w]),
            }
        }
    }
}

/// One output row's windows: ∂L/∂x of its K input rows (`d_x`, from the
/// row's first window), from the forward pass's `x` there and the row's
/// maxima `y` and ∂L/∂y `d_y`. The gradient is placed with bit masks, not
/// branches.
#[inline(always)]
fn row_backward(k: usize, w: usize, x: &[f32], y: &[f32], d_y: &[f32], d_x: &mut [f32]) {
    const CHUNK: usize = 32;
    for (c, (yc, gc)) in y.chunks(CHUNK).zip(d_y.chunks(CHUNK)).enumerate() {
        let j0 = c * CHUNK;
        let mut offsets = [0usize; CHUNK];
        for (j, (o, &best)) in offsets.iter_mut().zip(yc).enumerate() {
            *o = kept(k, w, &x[k * (j0 + j)..], best);
        }
        for di in 0..k {
            let row = &mut d_x[di * w + k * j0..di * w + k * (j0 + yc.len())];
            for ((window, &o), &g) in row.chunks_exact_mut(k).zip(&offsets).zip(gc) {
                let g = (0.0 + g).to_bits();
                for (dj, d) in window.iter_mut().enumerate() {
                    let here = ((di * w + dj == o) as u32).wrapping_neg();
                    *d = f32::from_bits(g & here);
                }
            }
        }
    }
}

/// AVX-512F versions of [`forward`] and [`backward`] for 2×2 windows (other
/// sizes run the portable loops): 16 input columns of two rows at a time, 8
/// windows. Forward folds each window with `vmaxps`, which is exactly the
/// portable fold's `if v > best { v } else { best }` (it returns its second
/// operand when the comparison is false, NaN and ±0 included), in the same
/// order (top left, top right, bottom left, bottom right), then packs the
/// even lanes. Backward compares the four positions with the window's
/// maximum into bit masks and keeps the first equal one, or the first
/// position when none is — the portable `kept` as mask arithmetic. Same bits as the
/// portable loops (tested below).
#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use super::{Pool, check};
    use std::arch::x86_64::*;

    /// Bits of the even lanes of 16: a window's left column.
    const LEFT: u32 = 0x5555;

    /// Lane masks of the 16 columns from `c` of `n`, and of their windows.
    fn masks(c: usize, n: usize) -> (u16, u16) {
        let len = (n - c).min(16);
        (((1u32 << len) - 1) as u16, ((1u32 << (len / 2)) - 1) as u16)
    }

    /// [`super::forward`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn forward(pool: &Pool, batch: usize, x: &[f32], y: &mut [f32]) {
        if pool.size != 2 {
            return super::forward(pool, batch, x, y);
        }
        check(pool, batch, x.len(), y.len());
        let w = pool.width;
        let (oh, ow) = pool.out();
        let (map_in, n) = (pool.height * w, 2 * ow);
        for r in 0..batch * pool.channels * oh {
            let (m, i) = (r / oh, r % oh);
            // SAFETY: the rows 2i and 2i + 1 of map m are inside x, and the
            // output row r inside y (checked above); lanes past the row's
            // used columns are masked off.
            unsafe {
                let top = x.as_ptr().add(m * map_in + 2 * i * w);
                let out = y.as_mut_ptr().add(r * ow);
                for c in (0..n).step_by(16) {
                    let (cols, wins) = masks(c, n);
                    let t = _mm512_maskz_loadu_ps(cols, top.add(c));
                    let b = _mm512_maskz_loadu_ps(cols, top.add(w + c));
                    let mut best = _mm512_max_ps(_mm512_permute_ps::<0xB1>(t), t);
                    best = _mm512_max_ps(b, best);
                    best = _mm512_max_ps(_mm512_permute_ps::<0xB1>(b), best);
                    let packed = _mm512_maskz_compress_ps(LEFT as u16, best);
                    _mm512_mask_storeu_ps(out.add(c / 2), wins, packed);
                }
            }
        }
    }

    /// [`super::backward`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn backward(pool: &Pool, batch: usize, x: &[f32], y: &[f32], d_y: &[f32], d_x: &mut [f32]) {
        if pool.size != 2 {
            return super::backward(pool, batch, x, y, d_y, d_x);
        }
        check(pool, batch, x.len(), y.len());
        check(pool, batch, d_x.len(), d_y.len());
        let (h, w) = (pool.height, pool.width);
        let (oh, ow) = pool.out();
        let (map_in, n) = (h * w, 2 * ow);
        let maps = batch * pool.channels;
        if 2 * oh != h || 2 * ow != w {
            d_x[..maps * map_in].fill(0.0);
        }
        // Lane l holds window l / 2.
        let pairs = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
        for r in 0..maps * oh {
            let (m, i) = (r / oh, r % oh);
            // SAFETY: as in forward, for x and d_x (same extents) and for y
            // and d_y (same extents).
            unsafe {
                let at = m * map_in + 2 * i * w;
                let (top, d_top) = (x.as_ptr().add(at), d_x.as_mut_ptr().add(at));
                let (yr, gr) = (y.as_ptr().add(r * ow), d_y.as_ptr().add(r * ow));
                for c in (0..n).step_by(16) {
                    let (cols, wins) = masks(c, n);
                    let best = _mm512_permutexvar_ps(pairs, _mm512_maskz_loadu_ps(wins, yr.add(c / 2)));
                    let g = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(wins, gr.add(c / 2)));
                    let g = _mm512_permutexvar_ps(pairs, g);
                    let t = _mm512_maskz_loadu_ps(cols, top.add(c));
                    let b = _mm512_maskz_loadu_ps(cols, top.add(w + c));
                    let et = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(t, best) as u32;
                    let eb = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(b, best) as u32;
                    // Each window's four comparisons, at its left lane.
                    let (e0, e1) = (et & LEFT, (et >> 1) & LEFT);
                    let (e2, e3) = (eb & LEFT, (eb >> 1) & LEFT);
                    let k0 = e0 | (!(e1 | e2 | e3) & LEFT);
                    let k1 = e1 & !e0;
                    let k2 = e2 & !(e0 | e1);
                    let k3 = e3 & !(e0 | e1 | e2);
                    let keep_top = (k0 | (k1 << 1)) as u16;
                    let keep_bottom = (k2 | (k3 << 1)) as u16;
                    _mm512_mask_storeu_ps(d_top.add(c), cols, _mm512_maskz_mov_ps(keep_top, g));
                    _mm512_mask_storeu_ps(d_top.add(w + c), cols, _mm512_maskz_mov_ps(keep_bottom, g));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::maxpool::MaxPool;
    use crate::linalg::random_vec;
    use crate::rng::Rng;

    /// The same maxima and the same ∂L/∂x, bit for bit, as the textbook
    /// layer, at every level this CPU has: on random maps, on maps with many
    /// ties (small integers, zeros as after ReLU), and with NaN, zeros, −0
    /// and a −0 gradient.
    #[test]
    fn matches_the_textbook_layer() {
        let mut rng = Rng::new(41, 0);
        for (channels, height, width, batch, size) in [
            (32, 24, 24, 3, 2),
            (64, 24, 24, 2, 3),
            (1, 22, 22, 4, 2),
            (2, 41, 36, 2, 2),
            (3, 7, 5, 2, 2),
            (3, 11, 10, 2, 3),
            (2, 24, 24, 1, 4),
            (2, 3, 3, 2, 5),
        ] {
            let textbook = MaxPool {
                channels,
                height,
                width,
                size,
            };
            let pool = Pool {
                channels,
                height,
                width,
                size,
            };
            let (n, m) = (batch * pool.in_len(), batch * pool.out_len());
            let random: Vec<f32> = random_vec(n, &mut rng);
            let ties: Vec<f32> = random.iter().map(|v| (v * 3.0).round().max(0.0)).collect();
            let odd: Vec<f32> = random
                .iter()
                .enumerate()
                .map(|(i, &v)| match i % 7 {
                    0 => f32::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    _ => v,
                })
                .collect();
            let mut d_y: Vec<f32> = random_vec(m, &mut rng);
            if let Some(g) = d_y.first_mut() {
                *g = -0.0;
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for x in [random, ties, odd] {
                let (mut y_ref, mut kept) = (vec![7.0f32; m], vec![u32::MAX; m]);
                textbook.forward(batch, &x, &mut y_ref, &mut kept);
                let mut d_x_ref = vec![7.0f32; n];
                textbook.backward(batch, &d_y, &kept, &mut d_x_ref);
                for k in crate::kernels::Kernels::available() {
                    let mut y = vec![7.0f32; m];
                    (k.pool_forward)(&pool, batch, &x, &mut y);
                    assert_eq!(bits(&y), bits(&y_ref), "{k:?} {pool:?}");
                    let mut d_x = vec![7.0f32; n];
                    (k.pool_backward)(&pool, batch, &x, &y, &d_y, &mut d_x);
                    assert_eq!(bits(&d_x), bits(&d_x_ref), "{k:?} {pool:?}");
                }
            }
        }
    }

    #[test]
    fn short_slices_are_refused() {
        let pool = Pool {
            channels: 2,
            height: 4,
            width: 4,
            size: 2,
        };
        for k in crate::kernels::Kernels::available() {
            let r = std::panic::catch_unwind(|| (k.pool_forward)(&pool, 1, &[0.0f32; 31], &mut [0.0f32; 8]));
            assert!(r.is_err(), "{k:?}");
            let r = std::panic::catch_unwind(|| {
                (k.pool_backward)(&pool, 1, &[0.0; 32], &[0.0; 8], &[0.0; 7], &mut [0.0; 32])
            });
            assert!(r.is_err(), "{k:?}");
        }
    }
}
