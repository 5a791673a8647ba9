//! The CNN's convolution and ReLU, fast: the textbook twin is
//! `layers::conv2d` followed by `layers::relu` (tested against them at the
//! end of this file, on every strategy and the shapes of the report).
//!
//! ```text
//! forward   h[b] = max(W ⊛ x[b] (+ b), 0)                  h [B, F·OS²]
//! backward  δ[b] = ∂L/∂h[b] ⊙ 1[h[b] > 0]
//!           ∂L/∂W = Σ_b Σ_pos δ[b] · patch,   ∂L/∂b = Σ_b Σ_pos δ[b]
//! ```
//! The input is the network's input, so no ∂L/∂x is computed. Three
//! [`Strategy`]s compute these sums:
//! - `Direct`: where the kernel level has convolution kernels, on every shape
//!   (`kernels::conv`: the image read where it lies, wide or compact layout);
//! - `Shifted`: few filters on other levels: with the output laid out wide (rows
//!   of S values), each tap's term is one long contiguous multiply-add over the
//!   image (`kernels::vector`);
//! - `Im2col`: more filters on other levels: one sample's patch matrix and a
//!   matrix product, as the textbook does.
//!
//! The samples of a batch are processed in order, in blocks of [`BLOCK`],
//! so that the next layer can run on each block while its maps are in cache
//! ([`NextLayer`], [`DeltaSource::Computed`]). ∂L/∂W is summed per run of
//! samples ([`ConvRelu::scratch`]'s `runs`), and the runs' sums are added in
//! order: a fixed order, so a seed gives the same bits every run.

use crate::kernels::conv::{Epilogue, LANES, Shape, compact, reduce_lanes};
use crate::kernels::{ConvKernels, Kernels};
use crate::layers::relu;
use crate::linalg::{lane_sum, matmul, matmul_a_bt, relu_mask};

/// How the sums are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Direct,
    Shifted,
    Im2col,
}

/// Without direct kernels, filter counts up to this use [`Strategy::Shifted`].
pub const SHIFTED_MAX_FILTERS: usize = 4;

/// Samples per block of [`NextLayer`] and [`DeltaSource::Computed`].
pub const BLOCK: usize = 4;

/// The next layer's forward pass, `f(n, maps, rows)`: from the maps of `n`
/// samples (`[n, F·OS²]`) it writes their `len` outputs each into `rows`.
pub type NextForward<'a> = dyn Fn(usize, &[f32], &mut [f32]) + Sync + 'a;

/// The next layer's forward pass, run on each block of [`BLOCK`] samples as
/// soon as their maps are computed; `out` receives `len` values per sample.
pub struct NextLayer<'a> {
    pub out: &'a mut [f32],
    pub len: usize,
    pub forward: &'a NextForward<'a>,
}

/// The next layer's backward pass: `f(first, rows)` writes ∂L/∂h of the
/// samples `first..` into `rows` (`[n, F·OS²]`).
pub type NextBackward<'a> = dyn Fn(usize, &mut [f32]) + Sync + 'a;

/// Where backward finds ∂L/∂h.
pub enum DeltaSource<'a> {
    /// Given whole, `[B, F·OS²]` (overwritten with δ).
    Given(&'a mut [f32]),
    /// Computed block by block into a small buffer just before the block's
    /// sums read it, while it is in cache.
    Computed(&'a NextBackward<'a>),
}

/// The convolution of a CNN followed by its ReLU, on one kernel level.
#[derive(Clone, Copy, Debug)]
pub struct ConvRelu {
    pub shape: Shape,
    pub kernels: &'static Kernels,
}

/// Scratch space of [`ConvRelu`], sized once.
pub struct ConvScratch {
    runs: Vec<RunScratch>,
}

struct RunScratch {
    /// Im2col: P[b] of the sample being processed, `[OS², K²]`;
    /// Shifted: one filter's map laid out wide; Direct: all F maps laid out wide.
    cols: Vec<f32>,
    /// Direct: δ of a sample laid out wide, zero in the unused columns (only
    /// the used ones are ever written).
    d_cols: Vec<f32>,
    /// Direct: the ∂L/∂W partial sums in 16 lanes, `[F, K², 16]`.
    lanes: Vec<f32>,
    /// This run's share of ∂L/∂W and ∂L/∂b.
    d_w: Vec<f32>,
    d_b: Vec<f32>,
    /// With [`DeltaSource::Computed`]: ∂L/∂h then δ of the block being processed.
    block: Vec<f32>,
}

impl ConvRelu {
    pub fn new(shape: Shape, kernels: &'static Kernels) -> Self {
        ConvRelu { shape, kernels }
    }

    fn direct(&self) -> Option<ConvKernels> {
        self.kernels.conv
    }

    /// The strategy used on this shape and level.
    pub fn strategy(&self) -> Strategy {
        if self.direct().is_some() {
            Strategy::Direct
        } else if self.shape.filters <= SHIFTED_MAX_FILTERS {
            Strategy::Shifted
        } else {
            Strategy::Im2col
        }
    }

    /// Scratch for batches of up to `max_batch` samples whose ∂L/∂W is summed
    /// in `runs` runs of consecutive samples (at most one per sample).
    pub fn scratch(&self, max_batch: usize, runs: usize) -> ConvScratch {
        let c = &self.shape;
        let runs = runs.clamp(1, max_batch.max(1));
        let wide = c.filters * c.wide_len();
        let (cols, d_cols, lanes) = match self.strategy() {
            Strategy::Direct => (wide, wide, c.filters * c.patch() * LANES),
            Strategy::Im2col => (c.positions() * c.patch(), 0, 0),
            Strategy::Shifted => (c.wide_len(), 0, 0),
        };
        ConvScratch {
            runs: (0..runs)
                .map(|_| RunScratch {
                    cols: vec![0.0; cols],
                    d_cols: vec![0.0; d_cols],
                    lanes: vec![0.0; lanes],
                    d_w: vec![0.0; c.filters * c.patch()],
                    d_b: vec![0.0; c.filters],
                    block: Vec::new(),
                })
                .collect(),
        }
    }

    /// h = ReLU(conv(x) (+ b)) with the weights and the bias (if any): `x` is
    /// `[B, S·S]`, `h` is `[B, F·OS²]`; with
    /// `next`, the next layer's forward pass runs block by block.
    pub fn forward(
        &self,
        batch: usize,
        x: &[f32],
        (w, bias): (&[f32], Option<&[f32]>),
        mut next: Option<NextLayer>,
        scratch: &mut ConvScratch,
        h: &mut [f32],
    ) {
        let (ss, out) = (self.shape.side * self.shape.side, self.shape.out_len());
        let cols = &mut scratch.runs[0].cols;
        for (j, (hs, xs)) in h[..batch * out]
            .chunks_mut(BLOCK * out)
            .zip(x[..batch * ss].chunks(BLOCK * ss))
            .enumerate()
        {
            for (hb, img) in hs.chunks_exact_mut(out).zip(xs.chunks_exact(ss)) {
                self.forward_one(img, w, bias, cols, hb);
            }
            if let Some(NextLayer {
                out: rows,
                len,
                forward,
            }) = next.as_mut()
            {
                let n = hs.len() / out;
                forward(n, hs, &mut rows[j * BLOCK * *len..(j * BLOCK + n) * *len]);
            }
        }
    }

    /// One sample's maps, after ReLU.
    fn forward_one(&self, img: &[f32], w: &[f32], bias: Option<&[f32]>, cols: &mut [f32], hb: &mut [f32]) {
        let c = &self.shape;
        let (p, kk) = (c.positions(), c.patch());
        let bias_of = |f: usize| bias.map_or(0.0, |b| b[f]);
        match (self.strategy(), self.direct()) {
            (Strategy::Direct, Some(k)) => {
                let wide = &mut cols[..c.filters * c.wide_len()];
                (k.forward)(c, img, w, Epilogue { bias, relu: true }, wide, hb);
                return;
            }
            (Strategy::Im2col, _) => {
                for (f, hf) in hb.chunks_exact_mut(p).enumerate() {
                    hf.fill(bias_of(f));
                }
                im2col(c, img, cols);
                matmul_a_bt(c.filters, kk, p, w, cols, 1.0, hb);
            }
            _ => {
                // `wide` holds OS rows of S values (the last S − OS of each row are
                // unused), so that for each (ky, kx) the pixels it multiplies are one
                // contiguous run of the image: z_wide += W[f,ky,kx] · img[ky·S + kx ..].
                let (s, os, k, len) = (c.side, c.out_side(), c.kernel, c.wide_len());
                let wide = &mut cols[..len];
                for (f, hf) in hb.chunks_exact_mut(p).enumerate() {
                    wide.fill(bias_of(f));
                    for ky in 0..k {
                        for kx in 0..k {
                            let start = ky * s + kx;
                            (self.kernels.axpy)(wide, w[f * kk + ky * k + kx], &img[start..start + len]);
                        }
                    }
                    for (oy, out) in hf.chunks_exact_mut(os).enumerate() {
                        out.copy_from_slice(&wide[oy * s..oy * s + os]);
                    }
                }
            }
        }
        relu::forward(hb);
    }

    /// ∂L/∂W (and ∂L/∂b when given) from h = the forward's output and ∂L/∂h
    /// from `d_h`.
    pub fn backward(
        &self,
        batch: usize,
        x: &[f32],
        h: &[f32],
        mut d_h: DeltaSource,
        scratch: &mut ConvScratch,
        (d_w, d_b): (&mut [f32], Option<&mut [f32]>),
    ) {
        let c = &self.shape;
        let (ss, out) = (c.side * c.side, c.out_len());
        let with_bias = d_b.is_some();
        // A batch of B samples in runs of ⌈B / runs⌉.
        let per = batch.div_ceil(scratch.runs.len()).max(1);
        let used = batch.div_ceil(per);
        for (r, sc) in scratch.runs[..used].iter_mut().enumerate() {
            let first = r * per;
            let n = per.min(batch - first);
            sc.d_w.fill(0.0);
            sc.d_b.fill(0.0);
            sc.lanes.fill(0.0);
            let mut block = std::mem::take(&mut sc.block);
            if let DeltaSource::Computed(_) = d_h {
                block.resize(BLOCK * out, 0.0);
            }
            let xs = &x[first * ss..(first + n) * ss];
            for (j, xb) in xs.chunks(BLOCK * ss).enumerate() {
                let (b0, m) = (first + j * BLOCK, xb.len() / ss);
                let deltas = match &mut d_h {
                    DeltaSource::Computed(next) => {
                        let rows = &mut block[..m * out];
                        next(b0, rows);
                        rows
                    }
                    DeltaSource::Given(d_h) => &mut d_h[b0 * out..(b0 + m) * out],
                };
                for (i, (img, delta)) in xb.chunks_exact(ss).zip(deltas.chunks_exact_mut(out)).enumerate() {
                    let hb = &h[(b0 + i) * out..(b0 + i + 1) * out];
                    self.backward_one(img, hb, delta, sc, with_bias);
                }
            }
            sc.block = block;
            if self.strategy() == Strategy::Direct {
                reduce_lanes(&sc.lanes, &mut sc.d_w);
            }
        }
        // Add the runs' partial sums in order.
        d_w.fill(0.0);
        for sc in &scratch.runs[..used] {
            d_w.iter_mut().zip(&sc.d_w).for_each(|(a, &v)| *a += v);
        }
        if let Some(d_b) = d_b {
            d_b.fill(0.0);
            for sc in &scratch.runs[..used] {
                d_b.iter_mut().zip(&sc.d_b).for_each(|(a, &v)| *a += v);
            }
        }
    }

    /// One sample: `delta` holds ∂L/∂h on entry (it may be overwritten with δ).
    fn backward_one(&self, img: &[f32], h: &[f32], delta: &mut [f32], sc: &mut RunScratch, with_bias: bool) {
        let c = &self.shape;
        let (p, kk) = (c.positions(), c.patch());
        let (s, os, len) = (c.side, c.out_side(), c.wide_len());
        let direct = match (self.strategy(), self.direct()) {
            (Strategy::Direct, Some(k)) => Some(k),
            _ => None,
        };
        let Some(k) = direct else {
            for (g, &hv) in delta.iter_mut().zip(h) {
                *g = relu_mask(hv, *g);
            }
            if with_bias {
                for (f, df) in delta.chunks_exact(p).enumerate() {
                    sc.d_b[f] += lane_sum(df);
                }
            }
            if self.strategy() == Strategy::Im2col {
                im2col(c, img, &mut sc.cols);
                matmul(c.filters, p, kk, delta, &sc.cols, 1.0, &mut sc.d_w);
                return;
            }
            // Shifted: δ laid out wide (zeros in the unused columns), as in forward:
            // ∂W[f,ky,kx] = δ_wide · img[ky·S + kx ..].
            let wide = &mut sc.cols[..len];
            for (f, df) in delta.chunks_exact(p).enumerate() {
                wide.fill(0.0);
                for (oy, drow) in df.chunks_exact(os).enumerate() {
                    wide[oy * s..oy * s + os].copy_from_slice(drow);
                }
                for ky in 0..c.kernel {
                    for kx in 0..c.kernel {
                        let start = ky * s + kx;
                        sc.d_w[f * kk + ky * c.kernel + kx] +=
                            (self.kernels.dot)(wide, &img[start..start + len]);
                    }
                }
            }
            return;
        };
        if compact(c, k.compact_layout) {
            // δ as it is, masked in place by the kernel.
            (k.d_weight_compact)(c, img, delta, Some(h), &mut sc.lanes);
            if with_bias {
                for (d_b, df) in sc.d_b.iter_mut().zip(delta.chunks_exact(p)) {
                    *d_b += lane_sum(df);
                }
            }
        } else {
            // δ laid out wide; its unused columns were zeroed with the scratch.
            let wide = &mut sc.d_cols[..c.filters * len];
            (k.delta)(c, delta, Some(h), wide);
            if with_bias {
                for (d_b, wf) in sc.d_b.iter_mut().zip(wide.chunks_exact(len)) {
                    *d_b += lane_sum(wf);
                }
            }
            (k.d_weight)(c, img, wide, &mut sc.lanes);
        }
    }
}

/// P ← im2col(one image): one row of K² pixels per output position.
fn im2col(c: &Shape, img: &[f32], cols: &mut [f32]) {
    let (s, k, os) = (c.side, c.kernel, c.out_side());
    for (q, row) in cols.chunks_exact_mut(k * k).take(os * os).enumerate() {
        let (oy, ox) = (q / os, q % os);
        for ky in 0..k {
            let src = (oy + ky) * s + ox;
            row[ky * k..(ky + 1) * k].copy_from_slice(&img[src..src + k]);
        }
    }
}
