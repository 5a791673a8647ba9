//! The MLP's training step, split across threads by hidden units: the
//! textbook twin is `models::mlp` in the sample-sharded step (`train`).
//!
//! The sample-sharded step gives each thread its own samples, so every thread
//! reads all of W₁ and writes a whole ∂W₁, and the update reads all of them
//! back: several times what a core's cache holds. Here thread t owns a block
//! of hidden units U_t instead, and with them the rows W₁\[U_t\], which stay in
//! its cache from the forward product to the update:
//!
//! ```text
//! 1. per unit block   h[:, U_t] = act(x·W₁[U_t]ᵀ + b₁[U_t])            (all B samples)
//! 2. per sample block z₂ = h_d·W₂ᵀ + b₂ with h_d = h ⊙ m (dropout) or h;
//!                     loss, δ₂ = ∂L/∂z₂
//! 3. per unit block   δ₁[:, U_t] = (δ₂·W₂[:, U_t]) ⊙ m ⊙ act′
//!                     ∂W₁[U_t] = δ₁[:, U_t]ᵀ·x, then W₁[U_t] updated at once;
//!                     ∂b₁[U_t], ∂W₂[:, U_t]
//! 4. serial           ∂b₂; update of b₁, W₂, b₂ (H·(C+1) + C values)
//! ```
//! Every sum runs in an order that does not depend on how the work is split
//! (the products' sums do not depend on how they are cut, `kernels::gemm`):
//! the parameters after each step are the same bits whatever the number of
//! threads. With ten classes the output layer's sums also run in the order of
//! its ten-output kernels, so the step gives the same bits as
//! [`super::FastMlp`] in the sample-sharded step on one thread (tested in
//! `train`).

use std::ops::Range;

use rayon::prelude::*;

use super::dense;
use super::mlp::activate;
use crate::data::batches::{Batch, prefetch};
use crate::kernels::Kernels;
use crate::layers::dropout::{apply_mask, draw_mask};
use crate::layers::softmax_ce::{self, BatchScore};
use crate::models::Mlp;
use crate::optim::{Optimizer, State};

/// Hidden units per block are a multiple of this (the products' block height).
const UNIT_ALIGN: usize = 4;
/// Pieces the ∂W₁ product is cut into, to spread the next batch's prefetches.
const PREFETCH_ROUNDS: usize = 8;

/// One thread's hidden units and what it computes for them.
struct Units {
    range: Range<usize>,
    /// The batch's inputs x `[B, D]`.
    x: Vec<f32>,
    /// h[:, U] `[B, |U|]`.
    h: Vec<f32>,
    /// δ₁[:, U] `[B, |U|]`.
    d_z: Vec<f32>,
    /// ∂W₁[U] `[|U|, D]`.
    g_w1: Vec<f32>,
    /// ∂b₁[U].
    g_b1: Vec<f32>,
    /// ∂W₂[:, U] `[C, |U|]`.
    g_w2: Vec<f32>,
    /// The sparse product's inputs by columns and W₁[U]ᵀ.
    sparse: dense::SparseInput,
}

/// Buffers of the MLP step, sized once for the largest batch.
pub struct MlpStep {
    net: Mlp,
    kernels: &'static Kernels,
    units: Vec<Units>,
    /// Samples per block of step 2.
    per_shard: usize,
    y: Vec<u8>,
    /// h `[B, H]`, whole rows, and the dropout mask and h ⊙ m when dropping.
    h: Vec<f32>,
    mask: Vec<f32>,
    h_dropped: Vec<f32>,
    logits: Vec<f32>,
    d_logits: Vec<f32>,
    /// ∂L/∂(b₁, W₂, b₂): the parameters after W₁, in layout order.
    g_after_w1: Vec<f32>,
    /// Loss and hits of each block of samples.
    scores: Vec<BatchScore>,
    rows: usize,
    dropping: bool,
}

impl MlpStep {
    /// The step for batches of up to `max_batch` samples, its work split
    /// across `threads` threads.
    pub fn new(net: Mlp, kernels: &'static Kernels, max_batch: usize, threads: usize) -> Self {
        let (d, h, c) = (net.input, net.hidden, net.classes);
        let threads = threads.max(1);
        // Blocks of about H / threads units, rounded to the products' block height.
        let per = h.div_ceil(threads).div_ceil(UNIT_ALIGN) * UNIT_ALIGN;
        let units = (0..h.div_ceil(per.max(1)))
            .map(|t| {
                let range = t * per..((t + 1) * per).min(h);
                let n = range.len();
                Units {
                    range,
                    x: vec![0.0; max_batch * d],
                    h: vec![0.0; max_batch * n],
                    d_z: vec![0.0; max_batch * n],
                    g_w1: vec![0.0; n * d],
                    g_b1: vec![0.0; n],
                    g_w2: vec![0.0; c * n],
                    sparse: dense::SparseInput::default(),
                }
            })
            .collect();
        MlpStep {
            net,
            kernels,
            units,
            per_shard: max_batch.div_ceil(threads.min(max_batch.max(1))),
            y: vec![0; max_batch],
            h: vec![0.0; max_batch * h],
            mask: vec![0.0; max_batch * h],
            h_dropped: vec![0.0; max_batch * h],
            logits: vec![0.0; max_batch * c],
            d_logits: vec![0.0; max_batch * c],
            g_after_w1: vec![0.0; h + c * h + c],
            scores: vec![BatchScore::default(); threads],
            rows: 0,
            dropping: false,
        }
    }
}

impl MlpStep {
    /// Forward pass of the batch to its loss, keeping what [`MlpStep::update`] needs.
    pub fn loss(&mut self, params: &[f32], batch: &Batch) -> BatchScore {
        let (net, k) = (self.net, self.kernels);
        let (d, hid, c) = (net.input, net.hidden, net.classes);
        let [w1, b1, w2, b2] = crate::params::split(params, net.lens());
        let (rows, per) = (batch.indices.len(), self.per_shard);
        self.rows = rows;
        self.dropping = batch.dropout > 0.0;
        for (y, &i) in self.y.iter_mut().zip(batch.indices) {
            *y = batch.train.y[i as usize];
        }

        // 1. Each block of units: the batch's inputs in its core's cache for
        //    both products (a copy of its own for the dense products, the
        //    entries off the background for the sparse ones), then
        //    h[:, U] = act(x·W₁[U]ᵀ + b₁[U]).
        self.units.par_iter_mut().for_each(|u| {
            let (r, n) = (u.range.clone(), u.range.len());
            let (w, b) = (&w1[r.start * d..r.end * d], &b1[r]);
            // Unshifted rows are read where they lie (the dense product copies
            // them into x); shifted ones are drawn into x first.
            let (input, scratch) = if batch.shift > 0 {
                for (row, &i) in u.x.chunks_exact_mut(d).zip(batch.indices) {
                    batch.input(i, row);
                }
                (dense::Input::Rows(&u.x[..rows * d]), &mut [][..])
            } else {
                (dense::Input::Gather(batch.train, batch.indices), &mut u.x[..])
            };
            let h = &mut u.h[..rows * n];
            dense::forward_input(k, input, d, w, b, h, &mut u.sparse, scratch, |rows, x, h| {
                // The strided product even for a block of ten units.
                for row in h.chunks_exact_mut(n) {
                    row.copy_from_slice(b);
                }
                (k.gemm_nt)(rows, n, d, x, d, w, d, h, n);
            });
            activate(k, net.activation, h);
        });

        // 2. Each block of samples: whole rows of h, dropout, logits, loss and δ₂.
        let units = &self.units;
        let dropping = self.dropping;
        let shards = rows.div_ceil(per);
        self.h[..rows * hid]
            .par_chunks_mut(per * hid)
            .zip(self.mask[..rows * hid].par_chunks_mut(per * hid))
            .zip(self.h_dropped[..rows * hid].par_chunks_mut(per * hid))
            .zip(self.logits[..rows * c].par_chunks_mut(per * c))
            .zip(self.d_logits[..rows * c].par_chunks_mut(per * c))
            .zip(batch.indices.par_chunks(per))
            .zip(self.y[..rows].par_chunks(per))
            .zip(self.scores[..shards].par_iter_mut())
            .enumerate()
            .for_each(
                |(s, (((((((h, mask), h_dropped), logits), d_logits), ids), y), score))| {
                    let first = s * per;
                    for (r, row) in h.chunks_exact_mut(hid).enumerate() {
                        for u in units {
                            let n = u.range.len();
                            row[u.range.clone()].copy_from_slice(&u.h[(first + r) * n..(first + r + 1) * n]);
                        }
                    }
                    let input: &[f32] = if dropping {
                        draw_mask(mask, hid, &batch.noise(ids));
                        apply_mask(h, mask, h_dropped);
                        h_dropped
                    } else {
                        h
                    };
                    dense::forward(k, ids.len(), input, w2, b2, logits);
                    *score = softmax_ce::forward_backward_scaled(logits, y, batch.scale, d_logits);
                },
            );
        self.scores[..shards]
            .iter()
            .fold(BatchScore::default(), |mut a, s| {
                a.loss_sum += s.loss_sum;
                a.correct += s.correct;
                a
            })
    }

    /// The rest of the backward pass and the optimiser's update of `params`.
    pub fn update(&mut self, params: &mut [f32], state: &mut State, opt: &Optimizer, lr: f32, batch: &Batch) {
        let (net, kern) = (self.net, self.kernels);
        let (d, hid, c) = (net.input, net.hidden, net.classes);
        let rows = self.rows;
        state.steps += 1;
        let consts = opt.consts(lr, state.steps);
        let (w1, tail) = params.split_at_mut(hid * d);
        let w2 = &tail[hid..hid + c * hid];
        let d_logits = &self.d_logits[..rows * c];
        let input = if self.dropping { &self.h_dropped } else { &self.h };
        let (mask, dropping) = (&self.mask, self.dropping);

        // 3. Each block of units: δ₁, ∂W₁ and its update, ∂b₁, ∂W₂.
        let (next, train) = (batch.next, batch.train);
        let block = |u: &mut Units, w1: &mut [f32], m: &mut [f32], v: &mut [f32]| {
            let r = u.range.clone();
            let n = r.len();
            let d_z = &mut u.d_z[..rows * n];
            for (b, dz) in d_z.chunks_exact_mut(n).enumerate() {
                // ∂L/∂h[b, U] = Σ_c δ₂[b, c]·W₂[c, U], summed over c in order.
                (kern.combine)(dz, c, &d_logits[b * c..(b + 1) * c], 1, &w2[r.start..], hid);
                if dropping {
                    for (g, &mk) in dz.iter_mut().zip(&mask[b * hid + r.start..b * hid + r.end]) {
                        *g *= mk;
                    }
                }
            }
            net.activation.backward(&u.h[..rows * n], d_z);
            u.g_b1.fill(0.0);
            for dz in d_z.chunks_exact(n) {
                for (acc, &g) in u.g_b1.iter_mut().zip(dz) {
                    *acc += g;
                }
            }
            // ∂W₂[c, U] = Σ_b δ₂[b, c]·h[b, U], summed over b in order.
            for (cls, g_row) in u.g_w2.chunks_exact_mut(n).enumerate() {
                (kern.combine)(g_row, rows, &d_logits[cls..], c, &input[r.start..], hid);
            }
            // ∂W₁[U] = δ₁[:, U]ᵀ·x: by the sparse product after a sparse forward
            // pass, else in blocks of rows of ∂W₁ (the same bits as in one
            // product). The next batch's rows are requested from memory into
            // this core's cache meanwhile (after each block of the dense
            // product), so that the next step's reading of them finds them there.
            if kern.sparse.is_some() && !dense::sparse_used(&u.sparse) && batch.shift == 0 {
                // The dense ∂W product reads x side by side, which a sparse
                // forward pass did not gather.
                for (row, &i) in u.x.chunks_exact_mut(d).zip(batch.indices) {
                    row.copy_from_slice(train.row(i as usize));
                }
            }
            let x = &u.x[..rows * d];
            if dense::d_weight_input(kern, d_z, n, n, &mut u.g_w1, &mut u.sparse) {
                prefetch(train, next);
            } else {
                let chunk = n.div_ceil(PREFETCH_ROUNDS).div_ceil(UNIT_ALIGN) * UNIT_ALIGN;
                let mut upcoming = next;
                let per_round = next.len().div_ceil(PREFETCH_ROUNDS);
                for r0 in (0..n).step_by(chunk.max(1)) {
                    let m = chunk.min(n - r0);
                    (kern.gemm_tn)(m, d, rows, &d_z[r0..], n, x, d, &mut u.g_w1[r0 * d..], d);
                    let (ahead, rest) = upcoming.split_at(per_round.min(upcoming.len()));
                    prefetch(train, ahead);
                    upcoming = rest;
                }
            }
            opt.update(consts, w1, &u.g_w1, m, v);
        };
        let per = self.units[0].range.len() * d;
        let parts = w1.par_chunks_mut(per).zip(self.units.par_iter_mut());
        let (m_w1, m_tail) = split_moments(&mut state.m, hid * d);
        let (v_w1, v_tail) = split_moments(&mut state.v, hid * d);
        match (m_w1.is_empty(), v_w1.is_empty()) {
            (true, _) => parts.for_each(|(w, u)| block(u, w, &mut [], &mut [])),
            (false, true) => parts
                .zip(m_w1.par_chunks_mut(per))
                .for_each(|((w, u), m)| block(u, w, m, &mut [])),
            (false, false) => parts
                .zip(m_w1.par_chunks_mut(per))
                .zip(v_w1.par_chunks_mut(per))
                .for_each(|(((w, u), m), v)| block(u, w, m, v)),
        }

        // 4. ∂b₂, then b₁, W₂ and b₂ updated together.
        let (g_b1, rest) = self.g_after_w1.split_at_mut(hid);
        let (g_w2, g_b2) = rest.split_at_mut(c * hid);
        for u in &self.units {
            let (r, n) = (u.range.clone(), u.range.len());
            g_b1[r.clone()].copy_from_slice(&u.g_b1);
            for (cls, g_row) in u.g_w2.chunks_exact(n).enumerate() {
                g_w2[cls * hid + r.start..cls * hid + r.end].copy_from_slice(g_row);
            }
        }
        g_b2.fill(0.0);
        for row in d_logits.chunks_exact(c) {
            for (acc, &g) in g_b2.iter_mut().zip(row) {
                *acc += g;
            }
        }
        opt.update(consts, tail, &self.g_after_w1, m_tail, v_tail);
    }
}

/// The moments of W₁ and of the parameters after it (both empty for rules that keep none).
fn split_moments(s: &mut [f32], at: usize) -> (&mut [f32], &mut [f32]) {
    if s.is_empty() {
        (&mut [], &mut [])
    } else {
        s.split_at_mut(at)
    }
}
