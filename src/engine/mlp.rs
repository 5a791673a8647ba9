//! The MLP on the kernels, one shard at a time: the textbook twin is
//! `models::mlp` (the same layers; tested against it in `engine::tests`).
//! Training uses [`super::MlpStep`], which splits the hidden layer across
//! threads and gives the same bits as this network in the sample-sharded step
//! on one thread; this network serves evaluation and prediction.

use super::dense;
use crate::kernels::Kernels;
use crate::layers::dropout::{Dropout, Noise};
use crate::layers::{relu, tanh};
use crate::models::{Activation, Mlp, Network};
use crate::params::{Layout, split, split_mut};
use crate::rng::Rng;

/// h ← act(z) in place, σ by the level's kernel.
pub fn activate(k: &Kernels, activation: Activation, z_then_h: &mut [f32]) {
    match activation {
        Activation::Sigmoid => (k.sigmoid)(z_then_h),
        Activation::Relu => relu::forward(z_then_h),
        Activation::Tanh => tanh::forward(z_then_h),
    }
}

/// An [`Mlp`] run by the engine.
#[derive(Clone, Copy, Debug)]
pub struct FastMlp {
    pub net: Mlp,
    pub kernels: &'static Kernels,
}

/// Activations of one batch: h, the logits and ∂L/∂h.
pub struct FastMlpWorkspace {
    h: Vec<f32>,
    logits: Vec<f32>,
    d_h: Vec<f32>,
    dropout: Dropout<f32>,
    sparse: dense::SparseInput,
}

impl Network<f32> for FastMlp {
    type Workspace = FastMlpWorkspace;

    fn layout(&self) -> Layout {
        Network::<f32>::layout(&self.net)
    }

    fn input_dim(&self) -> usize {
        self.net.input
    }

    fn classes(&self) -> usize {
        self.net.classes
    }

    fn workspace(&self, max_batch: usize) -> FastMlpWorkspace {
        FastMlpWorkspace {
            h: vec![0.0; max_batch * self.net.hidden],
            logits: vec![0.0; max_batch * self.net.classes],
            d_h: vec![0.0; max_batch * self.net.hidden],
            dropout: Dropout::new(max_batch * self.net.hidden),
            sparse: dense::SparseInput::default(),
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
        ws: &'w mut FastMlpWorkspace,
    ) -> &'w [f32] {
        let (net, k) = (&self.net, self.kernels);
        let [w1, b1, w2, b2] = split(params, net.lens());
        let h = &mut ws.h[..batch * net.hidden];
        let logits = &mut ws.logits[..batch * net.classes];
        let x = &x[..batch * net.input];
        dense::forward_input(
            k,
            dense::Input::Rows(x),
            net.input,
            w1,
            b1,
            h,
            &mut ws.sparse,
            &mut [],
            |rows, x, h| dense::forward(k, rows, x, w1, b1, h),
        );
        activate(k, net.activation, h);
        let h = ws.dropout.forward(h, net.hidden, noise);
        dense::forward(k, batch, h, w2, b2, logits);
        logits
    }

    fn backward(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        d_logits: &[f32],
        ws: &mut FastMlpWorkspace,
        grads: &mut [f32],
    ) {
        let (net, k) = (&self.net, self.kernels);
        let [w1, _, w2, _] = split(params, net.lens());
        let [d_w1, d_b1, d_w2, d_b2] = split_mut(grads, net.lens());
        let h = &ws.h[..batch * net.hidden];
        let d_h = &mut ws.d_h[..batch * net.hidden];
        let dropped = ws.dropout.output(h);
        dense::backward(k, batch, dropped, w2, d_logits, Some(&mut *d_h), d_w2, d_b2);
        ws.dropout.backward(d_h);
        net.activation.backward(h, d_h);
        dense::backward(k, batch, &x[..batch * net.input], w1, d_h, None, d_w1, d_b1);
    }
}
