//! The report's multilayer perceptron (section 2.1): D → H (sigmoid) → C (softmax).
//!
//! ```text
//! forward                                   shapes
//!   z₁ = x·W₁ᵀ + b₁                         x [B,D], W₁ [H,D], b₁ [H], z₁ [B,H]
//!   h  = σ(z₁)                              h [B,H]
//!   z₂ = h·W₂ᵀ + b₂                         W₂ [C,H], b₂ [C], z₂ [B,C]
//!   ŷ  = softmax(z₂)                        (in the loss, layers::softmax_ce)
//! backward (δ₂ = ∂L/∂z₂ = ŷ − y, scaled by the reduction)
//!   ∂L/∂W₂ = δ₂ᵀ·h,  ∂L/∂b₂ = Σ_b δ₂         layers::dense::backward
//!   ∂L/∂h  = δ₂·W₂
//!   δ₁ = ∂L/∂z₁ = ∂L/∂h ⊙ h ⊙ (1 − h)        layers::sigmoid::backward
//!   ∂L/∂W₁ = δ₁ᵀ·x,  ∂L/∂b₁ = Σ_b δ₁
//! ```
//! When training with dropout (layers::dropout), the output layer reads h ⊙ m
//! instead of h, and ∂L/∂h is multiplied by the same mask m.
//!
//! Weights are stored `[out, in]` as in PyTorch's `nn.Linear`, i.e. W₁ here is
//! the report's `weights1` transposed. Parameter order in the flat buffer:
//! `hidden.weight`, `hidden.bias`, `output.weight`, `output.bias`.

use super::{Network, Noise};
use crate::init::{Init, fill};
use crate::layers::dropout::Dropout;
use crate::layers::{dense, relu, sigmoid, tanh};
use crate::linalg::Scalar;
use crate::params::{Layout, TensorSpec, split, split_mut};
use crate::rng::Rng;

/// The hidden layer's activation: the report's sigmoid, or ReLU or tanh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    #[default]
    Sigmoid,
    Relu,
    Tanh,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }

    /// h ← act(z), in place.
    pub(crate) fn forward<T: Scalar>(self, z_then_h: &mut [T]) {
        match self {
            Activation::Sigmoid => sigmoid::forward(z_then_h),
            Activation::Relu => relu::forward(z_then_h),
            Activation::Tanh => tanh::forward(z_then_h),
        }
    }

    /// ∂L/∂h ← ∂L/∂z from the output h.
    pub(crate) fn backward<T: Scalar>(self, h: &[T], d_h_then_d_z: &mut [T]) {
        match self {
            Activation::Sigmoid => sigmoid::backward(h, d_h_then_d_z),
            Activation::Relu => relu::backward(h, d_h_then_d_z),
            Activation::Tanh => tanh::backward(h, d_h_then_d_z),
        }
    }
}

/// Sizes and initialisation of an MLP.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mlp {
    pub input: usize,
    pub hidden: usize,
    pub classes: usize,
    pub activation: Activation,
    pub init: Init,
    /// σ of the `normal` initialisation.
    pub init_std: f64,
}

/// Activations of one batch: h = σ(z₁), logits z₂, and ∂L/∂h.
pub struct MlpWorkspace<T> {
    h: Vec<T>,
    logits: Vec<T>,
    d_h: Vec<T>,
    /// The dropout mask on h of the last training pass.
    dropout: Dropout<T>,
}

impl Mlp {
    pub(crate) fn lens(&self) -> [usize; 4] {
        let (d, h, c) = (self.input, self.hidden, self.classes);
        [h * d, h, c * h, c]
    }
}

impl<T: Scalar> Network<T> for Mlp {
    type Workspace = MlpWorkspace<T>;

    fn layout(&self) -> Layout {
        let (d, h, c) = (self.input, self.hidden, self.classes);
        Layout {
            tensors: vec![
                TensorSpec::new("hidden.weight", &[h, d]),
                TensorSpec::new("hidden.bias", &[h]),
                TensorSpec::new("output.weight", &[c, h]),
                TensorSpec::new("output.bias", &[c]),
            ],
        }
    }

    fn input_dim(&self) -> usize {
        self.input
    }

    fn classes(&self) -> usize {
        self.classes
    }

    fn workspace(&self, max_batch: usize) -> MlpWorkspace<T> {
        MlpWorkspace {
            h: vec![T::zero(); max_batch * self.hidden],
            logits: vec![T::zero(); max_batch * self.classes],
            d_h: vec![T::zero(); max_batch * self.hidden],
            dropout: Dropout::new(max_batch * self.hidden),
        }
    }

    fn init(&self, params: &mut [T], rng: &mut Rng) {
        let [w1, b1, w2, b2] = split_mut(params, self.lens());
        fill(w1, self.init, self.init_std, self.input, self.hidden, rng);
        fill(w2, self.init, self.init_std, self.hidden, self.classes, rng);
        b1.fill(T::zero());
        b2.fill(T::zero());
    }

    fn forward_with<'w>(
        &self,
        params: &[T],
        x: &[T],
        batch: usize,
        noise: Option<&Noise>,
        ws: &'w mut MlpWorkspace<T>,
    ) -> &'w [T] {
        let [w1, b1, w2, b2] = split(params, self.lens());
        let h = &mut ws.h[..batch * self.hidden];
        let logits = &mut ws.logits[..batch * self.classes];
        dense::forward(batch, &x[..batch * self.input], w1, b1, h);
        self.activation.forward(h);
        let h = ws.dropout.forward(h, self.hidden, noise);
        dense::forward(batch, h, w2, b2, logits);
        logits
    }

    fn backward(
        &self,
        params: &[T],
        x: &[T],
        batch: usize,
        d_logits: &[T],
        ws: &mut MlpWorkspace<T>,
        grads: &mut [T],
    ) {
        let [w1, _, w2, _] = split(params, self.lens());
        let [d_w1, d_b1, d_w2, d_b2] = split_mut(grads, self.lens());
        let h = &ws.h[..batch * self.hidden];
        let d_h = &mut ws.d_h[..batch * self.hidden];
        let dropped = ws.dropout.output(h);
        dense::backward(batch, dropped, w2, d_logits, Some(&mut *d_h), d_w2, d_b2);
        ws.dropout.backward(d_h);
        self.activation.backward(h, d_h);
        dense::backward(batch, &x[..batch * self.input], w1, d_h, None, d_w1, d_b1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, check_network, check_network_with_dropout};
    use crate::layers::softmax_ce::{Reduction, forward_backward};

    fn tiny() -> Mlp {
        Mlp {
            input: 6,
            hidden: 4,
            classes: 10,
            activation: Activation::Sigmoid,
            init: Init::Normal,
            init_std: 0.5,
        }
    }

    #[test]
    fn gradient_with_dropout_matches_finite_differences() {
        let net = Mlp {
            hidden: 12,
            activation: Activation::Relu,
            ..tiny()
        };
        for (name, err) in check_network_with_dropout(&net, 3, Reduction::Mean, 6, 0.5) {
            assert!(err < TOLERANCE, "{name}: {err:e}");
        }
    }

    #[test]
    fn whole_mlp_gradient_matches_finite_differences() {
        for reduction in [Reduction::Sum, Reduction::Mean] {
            for (name, err) in check_network(&tiny(), 3, reduction, 5) {
                assert!(
                    err < TOLERANCE,
                    "{reduction:?} {name}: max relative error {err:e}"
                );
            }
        }
    }

    /// Golden forward/backward: input 2, hidden 1, classes 2, all weights 0.5, biases 0,
    /// x = [1, 1], label 0. By hand: z₁ = 1, h = σ(1) = 0.7310585786300049,
    /// z₂ = [0.36552928931500245; 2], ŷ = [0.5, 0.5], L = ln 2,
    /// δ₂ = [−0.5, 0.5], ∂L/∂W₂ = δ₂·h = [−0.36552928931500245, 0.36552928931500245],
    /// ∂L/∂h = 0.5·(−0.5) + 0.5·0.5 = 0, so ∂L/∂W₁ = ∂L/∂b₁ = 0.
    #[test]
    fn golden_tiny_forward_backward() {
        let net = Mlp {
            input: 2,
            hidden: 1,
            classes: 2,
            activation: Activation::Sigmoid,
            init: Init::Normal,
            init_std: 0.0,
        };
        let params = [0.5f64, 0.5, 0.0, 0.5, 0.5, 0.0, 0.0];
        let mut ws = net.workspace(1);
        let logits = net.forward(&params, &[1.0, 1.0], 1, &mut ws).to_vec();
        let h = 0.731_058_578_630_004_9;
        assert!((logits[0] - 0.5 * h).abs() < 1e-15 && (logits[1] - 0.5 * h).abs() < 1e-15);
        let mut d = [0.0; 2];
        let s = forward_backward(&logits, &[0], Reduction::Sum, &mut d);
        assert!((s.loss_sum - 2f64.ln()).abs() < 1e-15);
        let mut grads = [9.0; 7];
        net.backward(&params, &[1.0, 1.0], 1, &d, &mut ws, &mut grads);
        let want = [0.0, 0.0, 0.0, -0.5 * h, 0.5 * h, -0.5, 0.5];
        for (g, w) in grads.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{grads:?}");
        }
    }
}
