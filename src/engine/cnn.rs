//! The CNN on the kernels: the textbook twin is `models::cnn` (the same
//! layers in the same order; tested against it on real steps in
//! `engine::tests`).
//!
//! Without pooling and without dropout the output layer reads the
//! convolution's maps directly, so it runs beside the convolution, block by
//! block, while each block's maps are in cache: forward, its logits
//! ([`NextLayer`]); backward, its ∂L/∂h just before the convolution's sums
//! read it ([`DeltaSource::Computed`]). With pooling or dropout the layers run
//! one after the other over the whole shard, as in the textbook.

use super::conv::{ConvRelu, ConvScratch, DeltaSource, NextBackward, NextLayer};
use super::dense;
use crate::kernels::Kernels;
use crate::kernels::conv::Shape;
use crate::kernels::pool;
use crate::layers::dropout::{Dropout, Noise};
use crate::layers::maxpool::MaxPool;
use crate::models::{Cnn, Network};
use crate::params::{Layout, split, split_mut};
use crate::rng::Rng;

/// A [`Cnn`] run by the engine.
#[derive(Clone, Copy, Debug)]
pub struct FastCnn {
    pub net: Cnn,
    conv: ConvRelu,
    /// Runs of samples whose ∂L/∂W the convolution sums separately
    /// ([`ConvRelu::scratch`]).
    runs: usize,
}

/// Activations of one batch and their gradients.
pub struct FastCnnWorkspace {
    conv: ConvScratch,
    /// ReLU(conv(x)), `[B, F·OS²]`
    h: Vec<f32>,
    /// pooled h, `[B, F·⌊OS/P⌋²]` (empty without pooling)
    pooled: Vec<f32>,
    logits: Vec<f32>,
    d_h: Vec<f32>,
    d_pooled: Vec<f32>,
    /// The dropout mask on the dense layer's input of the last training pass.
    dropout: Dropout<f32>,
}

impl FastCnn {
    /// `net` on `kernels`; each shard's convolution sums ∂L/∂W in `runs` runs
    /// of samples (the training step's choice; results depend on it).
    pub fn new(net: Cnn, kernels: &'static Kernels, runs: usize) -> Self {
        let c = net.conv;
        let shape = Shape {
            side: c.side,
            kernel: c.kernel,
            filters: c.filters,
        };
        FastCnn {
            net,
            conv: ConvRelu::new(shape, kernels),
            runs,
        }
    }

    fn kernels(&self) -> &'static Kernels {
        self.conv.kernels
    }
}

impl Network<f32> for FastCnn {
    type Workspace = FastCnnWorkspace;

    fn layout(&self) -> Layout {
        Network::<f32>::layout(&self.net)
    }

    fn input_dim(&self) -> usize {
        Network::<f32>::input_dim(&self.net)
    }

    fn classes(&self) -> usize {
        self.net.classes
    }

    fn workspace(&self, max_batch: usize) -> FastCnnWorkspace {
        let out = self.conv.shape.out_len();
        let pooled = self.net.pool.map_or(0, |p| max_batch * p.out_len());
        FastCnnWorkspace {
            conv: self.conv.scratch(max_batch, self.runs),
            h: vec![0.0; max_batch * out],
            logits: vec![0.0; max_batch * self.net.classes],
            d_h: vec![0.0; max_batch * out],
            pooled: vec![0.0; pooled],
            d_pooled: vec![0.0; pooled],
            dropout: Dropout::new(max_batch * self.net.features()),
        }
    }

    fn init(&self, params: &mut [f32], rng: &mut Rng) {
        self.net.init(params, rng)
    }

    fn forward_with<'w>(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        noise: Option<&Noise>,
        ws: &'w mut FastCnnWorkspace,
    ) -> &'w [f32] {
        let net = &self.net;
        let k = self.kernels();
        let [w_conv, b_conv, w_fc, b_fc] = split(params, net.lens());
        let h = &mut ws.h[..batch * self.conv.shape.out_len()];
        let logits = &mut ws.logits[..batch * net.classes];
        let bias = net.conv_bias.then_some(b_conv);
        if net.pool.is_none() && !noise.is_some_and(|n| n.rate > 0.0) {
            let fc = |n: usize, maps: &[f32], rows: &mut [f32]| dense::forward(k, n, maps, w_fc, b_fc, rows);
            let next = NextLayer {
                out: &mut *logits,
                len: net.classes,
                forward: &fc,
            };
            self.conv
                .forward(batch, x, (w_conv, bias), Some(next), &mut ws.conv, h);
            ws.dropout.forward(h, net.features(), None);
            return logits;
        }
        let features: &[f32] = match &net.pool {
            Some(pool) => {
                // Pooled block by block, while the block's maps are in cache.
                let sizes = pool_sizes(pool);
                let pooled = &mut ws.pooled[..batch * pool.out_len()];
                let forward =
                    |n: usize, maps: &[f32], rows: &mut [f32]| (k.pool_forward)(&sizes, n, maps, rows);
                let next = NextLayer {
                    out: &mut *pooled,
                    len: sizes.out_len(),
                    forward: &forward,
                };
                self.conv
                    .forward(batch, x, (w_conv, bias), Some(next), &mut ws.conv, h);
                pooled
            }
            None => {
                self.conv.forward(batch, x, (w_conv, bias), None, &mut ws.conv, h);
                h
            }
        };
        let features = ws.dropout.forward(features, net.features(), noise);
        dense::forward(k, batch, features, w_fc, b_fc, logits);
        logits
    }

    fn backward(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        d_logits: &[f32],
        ws: &mut FastCnnWorkspace,
        grads: &mut [f32],
    ) {
        let net = &self.net;
        let k = self.kernels();
        let [_, _, w_fc, _] = split(params, net.lens());
        let [d_w_conv, d_b_conv, d_w_fc, d_b_fc] = split_mut(grads, net.lens());
        let out = self.conv.shape.out_len();
        let h = &ws.h[..batch * out];
        let d_h = &mut ws.d_h[..batch * out];
        let d_bias = net.conv_bias.then_some(d_b_conv);
        if net.pool.is_none() && !ws.dropout.active() {
            dense::backward(k, batch, h, w_fc, d_logits, None, d_w_fc, d_b_fc);
            let classes = net.classes;
            let d_input = |first: usize, rows: &mut [f32]| {
                let n = rows.len() / out;
                dense::backward_input(
                    k,
                    n,
                    w_fc,
                    &d_logits[first * classes..(first + n) * classes],
                    rows,
                );
            };
            let next: &NextBackward<'_> = &d_input;
            let source = DeltaSource::Computed(next);
            self.conv
                .backward(batch, x, h, source, &mut ws.conv, (d_w_conv, d_bias));
            return;
        }
        match &net.pool {
            Some(pool) => {
                let pooled = ws.dropout.output(&ws.pooled[..batch * pool.out_len()]);
                let d_pooled = &mut ws.d_pooled[..batch * pool.out_len()];
                dense::backward(
                    k,
                    batch,
                    pooled,
                    w_fc,
                    d_logits,
                    Some(&mut *d_pooled),
                    d_w_fc,
                    d_b_fc,
                );
                ws.dropout.backward(d_pooled);
                // ∂L/∂h block by block, just before the convolution's sums read it.
                let (sizes, pl) = (pool_sizes(pool), pool.out_len());
                let (pooled, d_pooled) = (&ws.pooled[..batch * pl], &*d_pooled);
                let d_input = |first: usize, rows: &mut [f32]| {
                    let n = rows.len() / out;
                    let (maps, ys) = (&h[first * out..(first + n) * out], first * pl..(first + n) * pl);
                    (k.pool_backward)(&sizes, n, maps, &pooled[ys.clone()], &d_pooled[ys], rows);
                };
                let source = DeltaSource::Computed(&d_input);
                self.conv
                    .backward(batch, x, h, source, &mut ws.conv, (d_w_conv, d_bias));
                return;
            }
            None => {
                let features = ws.dropout.output(h);
                dense::backward(
                    k,
                    batch,
                    features,
                    w_fc,
                    d_logits,
                    Some(&mut *d_h),
                    d_w_fc,
                    d_b_fc,
                );
                ws.dropout.backward(d_h);
            }
        }
        let source = DeltaSource::Given(d_h);
        self.conv
            .backward(batch, x, h, source, &mut ws.conv, (d_w_conv, d_bias));
    }
}

/// The kernel's sizes of the textbook pooling layer.
fn pool_sizes(p: &MaxPool) -> pool::Pool {
    pool::Pool {
        channels: p.channels,
        height: p.height,
        width: p.width,
        size: p.size,
    }
}
