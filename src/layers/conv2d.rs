//! 2-D convolution of one-channel images by F filters of K×K: valid, stride 1
//! (cross-correlation, as in PyTorch and the report).
//!
//! ```text
//! shapes   x [B,1,S,S]   W [F,1,K,K]   b [F] (optional)   z [B,F,OS,OS]   OS = S − K + 1
//! im2col   P[b][(oy,ox), (ky,kx)] = x[b, oy+ky, ox+kx]                 P[b] [OS², K²]
//! forward  z[b] = W · P[b]ᵀ (+ b)                                      z[b] [F, OS²]
//! backward δ[b] = ∂L/∂z[b]                                             δ[b] [F, OS²]
//!          ∂L/∂W = Σ_b δ[b] · P[b]                                     (the report's ΔW)
//!          ∂L/∂b = Σ_b Σ_pos δ[b]
//!          ∂L/∂P[b] = δ[b]ᵀ · W,  ∂L/∂x[b] = col2im(∂L/∂P[b])           (scatter-add of each patch)
//! ```
//! Three strategies compute exactly these sums, chosen by type, CPU and shape ([`Strategy`]):
//! - `Wide`: where `T` has fast kernels for it (f32 with AVX-512), every shape, by the
//!   register-blocked direct kernels of [`super::conv_wide`], which read the image
//!   where it lies;
//! - `Im2col`: the patch matrix P[b] of one sample (≈ 95 KB for K=7, so it stays in
//!   cache) and matrix products through `linalg`;
//! - `Direct`: for few filters, where a product with F rows cannot amortise building
//!   P[b], the same sums by shifted multiply-adds: with the output laid out in rows
//!   of S (not OS) values, each (ky, kx) term is one long contiguous multiply-add
//!   over the image, which vectorises well.
//!
//! The batch is cut into one contiguous chunk per thread; each chunk accumulates its
//! own ∂L/∂W, and the chunks' sums are added in chunk order, so a seed and a
//! thread count give the same bits every run. [`naive_forward`] and
//! [`naive_backward`] are the direct seven-loop references the tests compare against.

use rayon::prelude::*;

use super::{conv_wide, relu};
use crate::linalg::{Scalar, matmul, matmul_a_bt, matmul_at_b};

/// Sizes of a convolution layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Input side S (28 for MNIST).
    pub side: usize,
    /// Kernel side K.
    pub kernel: usize,
    /// Number of filters F.
    pub filters: usize,
}

/// How the convolution sums are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Wide,
    Im2col,
    Direct,
}

/// Without `Wide` kernels, filter counts up to this use [`Strategy::Direct`].
pub const DIRECT_MAX_FILTERS: usize = 4;

/// Samples per block of [`Then`] and [`Conv2d::backward`]'s `before`.
pub const BLOCK: usize = 4;

/// The next layer's forward pass, `f(n, maps, rows)`: from the maps of `n`
/// samples (`[n, F·OS²]`) it writes their `len` outputs each into `rows`.
pub type NextFn<'a, T> = dyn Fn(usize, &[T], &mut [T]) + Sync + 'a;

/// The next layer's forward pass, run on each block of [`BLOCK`] samples as
/// soon as the convolution has computed their maps, while they are in cache;
/// `out` receives `len` values per sample.
pub struct Then<'a, T> {
    pub out: &'a mut [T],
    pub len: usize,
    pub f: &'a NextFn<'a, T>,
}

/// The next layer's backward pass for [`Conv2d::backward`]: `before(first, rows)`
/// writes ∂L/∂h of the samples `first..` into `rows` (`[n, F·OS²]`).
pub type BeforeFn<'a, T> = dyn Fn(usize, &mut [T]) + Sync + 'a;

/// Per-chunk scratch space, sized once.
pub struct ConvScratch<T> {
    chunks: Vec<ChunkScratch<T>>,
}

struct ChunkScratch<T> {
    /// Im2col: P[b] of the sample being processed, `[OS², K²]`;
    /// Direct: one filter's output or gradient laid out wide, `(OS − 1)·S + OS`;
    /// Wide: all F output maps of a sample laid out wide.
    cols: Vec<T>,
    /// Im2col: ∂L/∂P[b], `[OS², K²]`; Wide: δ of a sample laid out wide, zero
    /// in the unused columns (only the used ones are ever written).
    d_cols: Vec<T>,
    /// Wide: the ∂L/∂W partial sums in 16 lanes, `[F, K², 16]`.
    lanes: Vec<T>,
    /// This chunk's share of ∂L/∂W and ∂L/∂b.
    d_w: Vec<T>,
    d_b: Vec<T>,
    /// With a `before` hook: ∂L/∂z of the block of samples being processed,
    /// `[BLOCK, F·OS²]`, reused block after block so that it stays in cache.
    block: Vec<T>,
}

impl Conv2d {
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

    /// The strategy used for this shape and element type.
    pub fn strategy<T: Scalar>(&self) -> Strategy {
        if T::conv_wide_fast() {
            Strategy::Wide
        } else if self.filters <= DIRECT_MAX_FILTERS {
            Strategy::Direct
        } else {
            Strategy::Im2col
        }
    }

    /// Scratch for batches of up to `max_batch` samples, one chunk per thread.
    pub fn scratch<T: Scalar>(&self, max_batch: usize) -> ConvScratch<T> {
        let chunks = rayon::current_num_threads().clamp(1, max_batch.max(1));
        let wide = self.filters * self.wide_len();
        // Im2col: one sample's patch matrix; Direct: one wide output map.
        let (cols, d_cols, lanes) = match self.strategy::<T>() {
            Strategy::Wide => (wide, wide, self.filters * self.patch() * conv_wide::LANES),
            Strategy::Im2col => (self.positions() * self.patch(), 0, 0),
            Strategy::Direct => (self.wide_len(), 0, 0),
        };
        ConvScratch {
            chunks: (0..chunks)
                .map(|_| ChunkScratch {
                    cols: vec![T::zero(); cols],
                    d_cols: vec![T::zero(); d_cols],
                    lanes: vec![T::zero(); lanes],
                    d_w: vec![T::zero(); self.filters * self.patch()],
                    d_b: vec![T::zero(); self.filters],
                    block: Vec::new(),
                })
                .collect(),
        }
    }

    /// Samples per chunk for `batch` samples split over the scratch's chunks.
    fn chunk_len(batch: usize, chunks: usize) -> usize {
        batch.div_ceil(chunks).max(1)
    }

    /// P ← im2col(one image): one row of K² pixels per output position.
    pub fn im2col<T: Scalar>(&self, img: &[T], cols: &mut [T]) {
        let (s, k, os) = (self.side, self.kernel, self.out_side());
        let mut rows = cols.chunks_exact_mut(k * k);
        for oy in 0..os {
            for ox in 0..os {
                let row = rows.next().expect("OS² rows");
                for ky in 0..k {
                    let src = &img[(oy + ky) * s + ox..(oy + ky) * s + ox + k];
                    row[ky * k..(ky + 1) * k].copy_from_slice(src);
                }
            }
        }
    }

    /// z = conv(x) (+ b): `x` is `[B, S·S]`, `z` is `[B, F·OS²]`. With `relu`,
    /// z is then replaced by h = max(z, 0) ([`relu::forward`]) sample by sample,
    /// while each sample's output is still in cache; with `then`, so is the next
    /// layer's forward pass, block by block ([`Then`]).
    #[allow(clippy::too_many_arguments)]
    pub fn forward<T: Scalar>(
        &self,
        batch: usize,
        x: &[T],
        w: &[T],
        bias: Option<&[T]>,
        relu: bool,
        then: Option<Then<T>>,
        scratch: &mut ConvScratch<T>,
        z: &mut [T],
    ) {
        let (ss, out) = (self.side * self.side, self.out_len());
        let per = Self::chunk_len(batch, scratch.chunks.len());
        // One chunk of samples, in blocks of BLOCK; `next`: the next layer's
        // pass and this chunk's rows of its output.
        type Next<'a, 'f, T> = Option<(&'a NextFn<'f, T>, usize, &'a mut [T])>;
        let chunk = |zc: &mut [T], xc: &[T], sc: &mut ChunkScratch<T>, next: Next<'_, '_, T>| {
            let mut next = next;
            for (j, (zs, xs)) in zc.chunks_mut(BLOCK * out).zip(xc.chunks(BLOCK * ss)).enumerate() {
                for (zb, img) in zs.chunks_exact_mut(out).zip(xs.chunks_exact(ss)) {
                    self.forward_one(img, w, bias, relu, &mut sc.cols, zb);
                }
                if let Some((f, len, rows)) = next.as_mut() {
                    let n = zs.len() / out;
                    f(n, zs, &mut rows[j * BLOCK * *len..(j * BLOCK + n) * *len]);
                }
            }
        };
        let parts = z[..batch * out]
            .par_chunks_mut(per * out)
            .zip(x[..batch * ss].par_chunks(per * ss))
            .zip(scratch.chunks.par_iter_mut());
        match then {
            Some(Then { out: next, len, f }) => parts
                .zip(next[..batch * len].par_chunks_mut(per * len))
                .for_each(|(((zc, xc), sc), rows)| chunk(zc, xc, sc, Some((f, len, rows)))),
            None => parts.for_each(|((zc, xc), sc)| chunk(zc, xc, sc, None)),
        }
    }

    /// One sample's maps (and ReLU with `relu`).
    fn forward_one<T: Scalar>(
        &self,
        img: &[T],
        w: &[T],
        bias: Option<&[T]>,
        relu: bool,
        cols: &mut [T],
        zb: &mut [T],
    ) {
        let (p, kk) = (self.positions(), self.patch());
        let bias_of = |f: usize| bias.map_or(T::zero(), |b| b[f]);
        let (s, os) = (self.side, self.out_side());
        match self.strategy::<T>() {
            Strategy::Wide => {
                let wide = &mut cols[..self.filters * self.wide_len()];
                T::conv_wide_forward(self, img, w, conv_wide::Epilogue { bias, relu }, wide, zb);
                return;
            }
            Strategy::Im2col => {
                for (f, zf) in zb.chunks_exact_mut(p).enumerate() {
                    zf.fill(bias_of(f));
                }
                self.im2col(img, cols);
                matmul_a_bt(self.filters, kk, p, w, cols, T::one(), zb);
            }
            Strategy::Direct => {
                // `wide` holds OS rows of S values (the last S − OS of each row are
                // unused), so that for each (ky, kx) the pixels it multiplies are one
                // contiguous run of the image: z_wide += W[f,ky,kx] · img[ky·S + kx ..].
                let k = self.kernel;
                let len = self.wide_len();
                let wide = &mut cols[..len];
                for (f, zf) in zb.chunks_exact_mut(p).enumerate() {
                    wide.fill(bias_of(f));
                    for ky in 0..k {
                        for kx in 0..k {
                            let start = ky * s + kx;
                            T::axpy(wide, w[f * kk + ky * k + kx], &img[start..start + len]);
                        }
                    }
                    for (oy, out) in zf.chunks_exact_mut(os).enumerate() {
                        out.copy_from_slice(&wide[oy * s..oy * s + os]);
                    }
                }
            }
        }
        if relu {
            relu::forward(zb);
        }
    }

    /// Length of a wide row-major output: (OS − 1)·S + OS.
    pub fn wide_len(&self) -> usize {
        (self.out_side() - 1) * self.side + self.out_side()
    }

    /// From δ = ∂L/∂z `[B, F·OS²]`: writes ∂L/∂W, ∂L/∂b (if any) and ∂L/∂x (if asked).
    /// With `relu_h` = h = max(z, 0), `d_z` holds ∂L/∂h on entry, and each
    /// sample's sums read ∂L/∂z = ∂L/∂h ⊙ 1[h > 0] ([`relu::backward`]), applied
    /// as the sample is read (`d_z` may be overwritten with it). With `before`,
    /// `d_z` is neither read nor written (its length is still checked):
    /// `before(first, rows)` writes the rows of samples `first..` of a block
    /// of [`BLOCK`] into a per-chunk buffer just before the block's sums,
    /// which read them while they are in cache.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Scalar>(
        &self,
        batch: usize,
        x: &[T],
        w: &[T],
        relu_h: Option<&[T]>,
        before: Option<&BeforeFn<'_, T>>,
        d_z: &mut [T],
        scratch: &mut ConvScratch<T>,
        d_w: &mut [T],
        d_b: Option<&mut [T]>,
        d_x: Option<&mut [T]>,
    ) {
        let (ss, out) = (self.side * self.side, self.out_len());
        let per = Self::chunk_len(batch, scratch.chunks.len());
        let used = batch.div_ceil(per);
        let strategy = self.strategy::<T>();
        let with_bias = d_b.is_some();
        let im2col_dx = d_x.is_some() && strategy == Strategy::Im2col;
        // One chunk of samples: its share of ∂L/∂W and ∂L/∂b, and its rows of ∂L/∂x.
        let chunk = |(xc, (first, hc)): (&[T], (usize, Option<&[T]>)),
                     dzc: &mut [T],
                     mut dxc: Option<&mut [T]>,
                     sc: &mut ChunkScratch<T>| {
            sc.d_w.fill(T::zero());
            sc.d_b.fill(T::zero());
            sc.lanes.fill(T::zero());
            if im2col_dx && sc.d_cols.len() < self.positions() * self.patch() {
                sc.d_cols.resize(self.positions() * self.patch(), T::zero());
            }
            let mut block = std::mem::take(&mut sc.block);
            if before.is_some() {
                block.resize(BLOCK * out, T::zero());
            }
            for (j, (xs, dzs)) in xc.chunks(BLOCK * ss).zip(dzc.chunks_mut(BLOCK * out)).enumerate() {
                let dzs = match before {
                    Some(before) => {
                        let rows = &mut block[..dzs.len()];
                        before(first + j * BLOCK, rows);
                        rows
                    }
                    None => dzs,
                };
                for (k, (img, dzb)) in xs.chunks_exact(ss).zip(dzs.chunks_exact_mut(out)).enumerate() {
                    let i = j * BLOCK + k;
                    let hb = hc.map(|h| &h[i * out..(i + 1) * out]);
                    if let (Some(h), false) = (hb, strategy == Strategy::Wide) {
                        relu::backward(h, dzb);
                    }
                    let dxb = dxc.as_deref_mut().map(|d| &mut d[i * ss..(i + 1) * ss]);
                    self.backward_one(img, w, dzb, hb, sc, with_bias, dxb);
                }
            }
            sc.block = block;
            if strategy == Strategy::Wide {
                conv_wide::reduce_lanes(&sc.lanes, &mut sc.d_w);
            }
        };
        let hs = (0..used).into_par_iter().map(|i| {
            (
                i * per,
                relu_h.map(|h| &h[i * per * out..((i + 1) * per).min(batch) * out]),
            )
        });
        let inputs = x[..batch * ss]
            .par_chunks(per * ss)
            .zip(hs)
            .zip(d_z[..batch * out].par_chunks_mut(per * out));
        match d_x {
            Some(d_x) => inputs
                .zip(d_x[..batch * ss].par_chunks_mut(per * ss))
                .zip(scratch.chunks.par_iter_mut())
                .for_each(|(((xh, dzc), dxc), sc)| chunk(xh, dzc, Some(dxc), sc)),
            None => inputs
                .zip(scratch.chunks.par_iter_mut())
                .for_each(|((xh, dzc), sc)| chunk(xh, dzc, None, sc)),
        }
        // Add the chunks' partial sums in chunk order.
        d_w.fill(T::zero());
        for sc in &scratch.chunks[..used] {
            d_w.iter_mut().zip(&sc.d_w).for_each(|(a, &v)| *a += v);
        }
        if let Some(d_b) = d_b {
            d_b.fill(T::zero());
            for sc in &scratch.chunks[..used] {
                d_b.iter_mut().zip(&sc.d_b).for_each(|(a, &v)| *a += v);
            }
        }
    }

    /// One sample; `Wide` applies the ReLU mask of `h` as it lays δ out wide
    /// (or, on the compact layout, to `dzb` in place), the other strategies
    /// expect it applied.
    #[allow(clippy::too_many_arguments)]
    fn backward_one<T: Scalar>(
        &self,
        img: &[T],
        w: &[T],
        dzb: &mut [T],
        h: Option<&[T]>,
        sc: &mut ChunkScratch<T>,
        with_bias: bool,
        d_x: Option<&mut [T]>,
    ) {
        let (p, kk) = (self.positions(), self.patch());
        let strategy = self.strategy::<T>();
        if with_bias && strategy != Strategy::Wide {
            for (f, df) in dzb.chunks_exact(p).enumerate() {
                sc.d_b[f] += lane_sum(df);
            }
        }
        let (s, os, len) = (self.side, self.out_side(), self.wide_len());
        let mut d_x = d_x;
        if let Some(d_x) = d_x.as_deref_mut() {
            d_x.fill(T::zero());
        }
        match strategy {
            Strategy::Wide if conv_wide::compact(self) && d_x.is_none() => {
                // δ as it is, masked in place by the kernel.
                T::conv_compact_d_weight(self, img, dzb, h, &mut sc.lanes);
                if with_bias {
                    for (d_b, df) in sc.d_b.iter_mut().zip(dzb.chunks_exact(p)) {
                        *d_b += lane_sum(df);
                    }
                }
            }
            Strategy::Wide => {
                // δ laid out wide; its unused columns were zeroed with the scratch.
                let wide = &mut sc.d_cols[..self.filters * len];
                T::conv_wide_delta(self, dzb, h, wide);
                if with_bias {
                    for (d_b, wf) in sc.d_b.iter_mut().zip(wide.chunks_exact(len)) {
                        *d_b += lane_sum(wf);
                    }
                }
                T::conv_wide_d_weight(self, img, wide, &mut sc.lanes);
                if let Some(d_x) = d_x {
                    for (wf, df) in w.chunks_exact(kk).zip(wide.chunks_exact(len)) {
                        self.add_wide_d_x(wf, df, d_x);
                    }
                }
            }
            Strategy::Im2col => {
                self.im2col(img, &mut sc.cols);
                matmul(self.filters, p, kk, dzb, &sc.cols, T::one(), &mut sc.d_w);
                if let Some(d_x) = d_x {
                    matmul_at_b(p, self.filters, kk, dzb, w, T::zero(), &mut sc.d_cols);
                    self.col2im(&sc.d_cols, d_x);
                }
            }
            Strategy::Direct => {
                // δ laid out wide (zeros in the unused columns), as in forward:
                // ∂W[f,ky,kx] = δ_wide · img[ky·S + kx ..],  ∂x[ky·S + kx ..] += W[f,ky,kx] · δ_wide.
                let k = self.kernel;
                let wide = &mut sc.cols[..len];
                for (f, df) in dzb.chunks_exact(p).enumerate() {
                    wide.fill(T::zero());
                    for (oy, drow) in df.chunks_exact(os).enumerate() {
                        wide[oy * s..oy * s + os].copy_from_slice(drow);
                    }
                    for ky in 0..k {
                        for kx in 0..k {
                            let start = ky * s + kx;
                            sc.d_w[f * kk + ky * k + kx] += T::dot(wide, &img[start..start + len]);
                        }
                    }
                    if let Some(d_x) = d_x.as_deref_mut() {
                        self.add_wide_d_x(&w[f * kk..(f + 1) * kk], wide, d_x);
                    }
                }
            }
        }
    }

    /// ∂x[o_t ..] += W[f, t]·δ_wide[f] for every tap t of one filter.
    fn add_wide_d_x<T: Scalar>(&self, w_f: &[T], wide: &[T], d_x: &mut [T]) {
        let (s, k, len) = (self.side, self.kernel, self.wide_len());
        for ky in 0..k {
            for kx in 0..k {
                let start = ky * s + kx;
                T::axpy(&mut d_x[start..start + len], w_f[ky * k + kx], &wide[..len]);
            }
        }
    }

    /// ∂L/∂x of one image ← scatter-add of each patch's gradient back to its pixels.
    fn col2im<T: Scalar>(&self, d_cols: &[T], d_x: &mut [T]) {
        let (s, k, os) = (self.side, self.kernel, self.out_side());
        d_x.fill(T::zero());
        let mut rows = d_cols.chunks_exact(k * k);
        for oy in 0..os {
            for ox in 0..os {
                let row = rows.next().expect("OS² rows");
                for ky in 0..k {
                    for kx in 0..k {
                        d_x[(oy + ky) * s + ox + kx] += row[ky * k + kx];
                    }
                }
            }
        }
    }
}

/// Σ v in 16 interleaved partial sums, then the partial sums in order: a fixed
/// order that vectorises (a plain left-to-right sum is one long dependency chain).
fn lane_sum<T: Scalar>(v: &[T]) -> T {
    let mut acc = [T::zero(); conv_wide::LANES];
    let mut chunks = v.chunks_exact(conv_wide::LANES);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += x;
    }
    acc.iter().fold(T::zero(), |s, &a| s + a)
}

/// Reference forward by direct loops: z[b,f,oy,ox] = b_f + Σ_{ky,kx} W[f,ky,kx]·x[b,oy+ky,ox+kx].
pub fn naive_forward<T: Scalar>(c: &Conv2d, batch: usize, x: &[T], w: &[T], bias: Option<&[T]>, z: &mut [T]) {
    let (s, k, os, f) = (c.side, c.kernel, c.out_side(), c.filters);
    for b in 0..batch {
        for fi in 0..f {
            for oy in 0..os {
                for ox in 0..os {
                    let mut acc = bias.map_or(T::zero(), |bb| bb[fi]);
                    for ky in 0..k {
                        for kx in 0..k {
                            acc += w[fi * k * k + ky * k + kx] * x[b * s * s + (oy + ky) * s + ox + kx];
                        }
                    }
                    z[((b * f + fi) * os + oy) * os + ox] = acc;
                }
            }
        }
    }
}

/// Reference backward by direct loops: ∂L/∂W, ∂L/∂b and ∂L/∂x from δ = ∂L/∂z.
#[allow(clippy::too_many_arguments)]
pub fn naive_backward<T: Scalar>(
    c: &Conv2d,
    batch: usize,
    x: &[T],
    w: &[T],
    d_z: &[T],
    d_w: &mut [T],
    d_b: &mut [T],
    d_x: &mut [T],
) {
    let (s, k, os, f) = (c.side, c.kernel, c.out_side(), c.filters);
    d_w.fill(T::zero());
    d_b.fill(T::zero());
    d_x.fill(T::zero());
    for b in 0..batch {
        for fi in 0..f {
            for oy in 0..os {
                for ox in 0..os {
                    let g = d_z[((b * f + fi) * os + oy) * os + ox];
                    d_b[fi] += g;
                    for ky in 0..k {
                        for kx in 0..k {
                            let xi = b * s * s + (oy + ky) * s + ox + kx;
                            d_w[fi * k * k + ky * k + kx] += g * x[xi];
                            d_x[xi] += g * w[fi * k * k + ky * k + kx];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, max_relative_error, numeric_gradient, random_vec};
    use crate::rng::Rng;

    fn check_against_naive<T: Scalar>(c: &Conv2d, batch: usize, rng: &mut Rng) {
        let (filters, kernel) = (c.filters, c.kernel);
        let x: Vec<T> = random_vec(batch * c.side * c.side, rng);
        let w: Vec<T> = random_vec(filters * kernel * kernel, rng);
        let bias: Vec<T> = random_vec(filters, rng);
        let mut scratch = c.scratch(batch);
        let mut z = vec![T::zero(); batch * c.out_len()];
        c.forward(batch, &x, &w, Some(&bias), false, None, &mut scratch, &mut z);
        let mut want = vec![T::zero(); z.len()];
        naive_forward(c, batch, &x, &w, Some(&bias), &mut want);
        let strategy = c.strategy::<T>();
        // Sums of K² ≤ 121 products of N(0,1) values in f32.
        let close = |a: T, b: T, tol: f64| (a - b).abs() < T::of(tol) * (T::one() + b.abs());
        for (&a, &b) in z.iter().zip(&want) {
            assert!(close(a, b, 1e-4), "{c:?} {strategy:?} B={batch}: {a:?} vs {b:?}");
        }
        let d_z: Vec<T> = random_vec(z.len(), rng);
        let zeros = |n| vec![T::zero(); n];
        let (mut d_w, mut d_b, mut d_x) = (zeros(w.len()), zeros(filters), zeros(x.len()));
        c.backward(
            batch,
            &x,
            &w,
            None,
            None,
            &mut d_z.clone(),
            &mut scratch,
            &mut d_w,
            Some(&mut d_b),
            Some(&mut d_x),
        );
        let (mut w_w, mut w_b, mut w_x) = (zeros(w.len()), zeros(filters), zeros(x.len()));
        naive_backward(c, batch, &x, &w, &d_z, &mut w_w, &mut w_b, &mut w_x);
        // ∂L/∂W sums B·OS² products (up to 128·676): tolerance relative to that scale.
        let scale = ((batch * c.positions()) as f64).sqrt();
        for (&a, &b) in d_w.iter().zip(&w_w).chain(d_b.iter().zip(&w_b)) {
            assert!(
                close(a, b, 2e-5 * scale),
                "dW {c:?} {strategy:?} B={batch}: {a:?} vs {b:?}"
            );
        }
        for (&a, &b) in d_x.iter().zip(&w_x) {
            assert!(
                close(a, b, 1e-4),
                "dx {c:?} {strategy:?} B={batch}: {a:?} vs {b:?}"
            );
        }
        // The first layer's case: ReLU's mask from h, no ∂L/∂x (on the compact
        // layout, the mask is applied inside the ∂W kernel).
        let h: Vec<T> = random_vec(z.len(), rng);
        let masked: Vec<T> = d_z
            .iter()
            .zip(&h)
            .map(|(&g, &hv)| if hv > T::zero() { g } else { T::zero() })
            .collect();
        c.backward(
            batch,
            &x,
            &w,
            Some(&h),
            None,
            &mut d_z.clone(),
            &mut scratch,
            &mut d_w,
            Some(&mut d_b),
            None,
        );
        naive_backward(c, batch, &x, &w, &masked, &mut w_w, &mut w_b, &mut w_x);
        for (&a, &b) in d_w.iter().zip(&w_w).chain(d_b.iter().zip(&w_b)) {
            assert!(
                close(a, b, 2e-5 * scale),
                "dW with ReLU {c:?} {strategy:?} B={batch}: {a:?} vs {b:?}"
            );
        }
    }

    /// Every strategy against the direct loops: f32 (the `Wide` kernels where the
    /// CPU has them) and f64 (`Direct` and `Im2col`), on every kernel size of the
    /// report, filter counts on both sides of the `Direct`/`Im2col` switch, batch
    /// sizes 1, odd and 128.
    #[test]
    fn fast_paths_match_naive_on_all_report_shapes() {
        let mut rng = Rng::new(21, 0);
        for kernel in 3..=11 {
            for filters in [1, 3, 8] {
                let c = Conv2d {
                    side: 28,
                    kernel,
                    filters,
                };
                for batch in [1, 7, 128] {
                    check_against_naive::<f32>(&c, batch, &mut rng);
                }
                check_against_naive::<f64>(&c, 7, &mut rng);
            }
        }
        let shape = |filters| Conv2d {
            side: 28,
            kernel: 7,
            filters,
        };
        assert_eq!(shape(1).strategy::<f64>(), Strategy::Direct);
        assert_eq!(shape(8).strategy::<f64>(), Strategy::Im2col);
        let f32_wide = if f32::conv_wide_fast() {
            Strategy::Wide
        } else {
            Strategy::Im2col
        };
        assert_eq!(shape(8).strategy::<f32>(), f32_wide);
    }

    #[test]
    fn results_do_not_depend_on_the_batch_split_for_a_fixed_thread_count() {
        let c = Conv2d {
            side: 28,
            kernel: 5,
            filters: 8,
        };
        let mut rng = Rng::new(23, 0);
        let x: Vec<f32> = random_vec(9 * 784, &mut rng);
        let w: Vec<f32> = random_vec(8 * 25, &mut rng);
        let run = || {
            let mut scratch = c.scratch(9);
            let mut z = vec![0.0; 9 * c.out_len()];
            c.forward(9, &x, &w, None, true, None, &mut scratch, &mut z);
            let mut d_w = vec![0.0; w.len()];
            let mut d_z = z.clone();
            c.backward(
                9,
                &x,
                &w,
                Some(&z),
                None,
                &mut d_z,
                &mut scratch,
                &mut d_w,
                None,
                None,
            );
            (z, d_w)
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn gradients_match_finite_differences() {
        for filters in [2, DIRECT_MAX_FILTERS + 1] {
            gradient_check(Conv2d {
                side: 6,
                kernel: 3,
                filters,
            });
        }
    }

    fn gradient_check(c: Conv2d) {
        let mut rng = Rng::new(22, 0);
        let batch = 2;
        let x: Vec<f64> = random_vec(batch * 36, &mut rng);
        let w: Vec<f64> = random_vec(c.filters * c.patch(), &mut rng);
        let b: Vec<f64> = random_vec(c.filters, &mut rng);
        let r: Vec<f64> = random_vec(batch * c.out_len(), &mut rng);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut z = vec![0.0; r.len()];
            c.forward(batch, x, w, Some(b), false, None, &mut c.scratch(batch), &mut z);
            z.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mut d_w, mut d_b, mut d_x) = (vec![0.0; w.len()], vec![0.0; b.len()], vec![0.0; x.len()]);
        c.backward(
            batch,
            &x,
            &w,
            None,
            None,
            &mut r.clone(),
            &mut c.scratch(batch),
            &mut d_w,
            Some(&mut d_b),
            Some(&mut d_x),
        );
        assert!(max_relative_error(&d_w, &numeric_gradient(&w, |v| loss(&x, v, &b))) < TOLERANCE);
        assert!(max_relative_error(&d_b, &numeric_gradient(&b, |v| loss(&x, &w, v))) < TOLERANCE);
        assert!(max_relative_error(&d_x, &numeric_gradient(&x, |v| loss(v, &w, &b))) < TOLERANCE);
    }
}
