//! The report's convolutional network (section 2.2):
//! conv (F filters K×K, valid) → ReLU → flatten → dense (10) → softmax,
//! optionally with P×P max-pooling after the ReLU (layers::maxpool; then the
//! dense layer sees the pooled features, F·⌊OS/P⌋², and ∂L/∂h comes back
//! through the pooling's kept indices).
//!
//! ```text
//! forward                                      shapes (S = 28, OS = S − K + 1)
//!   z     = conv(x; W_conv) (+ b_conv)          x [B,S·S], W_conv [F,1,K,K], z [B, F·OS²]  (f, oy, ox order)
//!   h     = ReLU(z)                            h [B, F·OS²] (also the flattened features)
//!   logits = h·W_fcᵀ + b_fc                    W_fc [10, F·OS²], b_fc [10]
//! backward (δ_fc = ∂L/∂logits = ŷ − y, averaged over the batch by default)
//!   ∂L/∂W_fc = δ_fcᵀ·h, ∂L/∂b_fc = Σ_b δ_fc, ∂L/∂h = δ_fc·W_fc     layers::dense
//!   δ_conv = ∂L/∂h ⊙ 1[z > 0]                  layers::relu
//!   ∂L/∂W_conv = Σ_b δ_conv[b]·P[b]  (+ ∂L/∂b_conv = Σ δ_conv)    layers::conv2d
//! ```
//! When training with dropout (layers::dropout), the dense layer reads the
//! features ⊙ m instead of the features, and their gradient is multiplied by m.
//!
//! Parameter order in the flat buffer: `conv.weight`, (`conv.bias`), `fc.weight`, `fc.bias` —
//! PyTorch's names and layouts for `nn.Conv2d(1, F, K)` and `nn.Linear(F·OS², 10)`.

use super::{Network, Noise};
use crate::init::{Init, fill};
use crate::layers::conv2d::{Conv2d, Conv2dScratch};
use crate::layers::dropout::Dropout;
use crate::layers::maxpool::MaxPool;
use crate::layers::{dense, relu};
use crate::linalg::Scalar;
use crate::params::{Layout, TensorSpec, split, split_mut};
use crate::rng::Rng;

/// Sizes of a CNN. Initialisation is He et al. (2015) for both weight tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cnn {
    pub conv: Conv2d,
    /// Whether the convolution has a bias (the report's has none).
    pub conv_bias: bool,
    pub classes: usize,
    /// P×P max-pooling after the ReLU (the report has none).
    pub pool: Option<MaxPool>,
}

/// Activations of one batch and their gradients.
pub struct CnnWorkspace<T> {
    conv: Conv2dScratch<T>,
    /// ReLU(conv(x)), `[B, F·OS²]`
    h: Vec<T>,
    /// pooled h and the kept indices, `[B, F·⌊OS/P⌋²]` (empty without pooling)
    pooled: Vec<T>,
    argmax: Vec<u32>,
    logits: Vec<T>,
    d_h: Vec<T>,
    d_pooled: Vec<T>,
    /// The dropout mask on the dense layer's input of the last training pass.
    dropout: Dropout<T>,
}

impl Cnn {
    pub fn new(side: usize, kernel: usize, filters: usize, conv_bias: bool, classes: usize) -> Self {
        Cnn {
            conv: Conv2d {
                side,
                kernel,
                filters,
            },
            conv_bias,
            classes,
            pool: None,
        }
    }

    /// The same network with (or without) P×P max-pooling after the ReLU.
    pub fn with_pool(self, size: Option<usize>) -> Self {
        let c = self.conv;
        let pool = size.map(|size| MaxPool {
            channels: c.filters,
            height: c.out_side(),
            width: c.out_side(),
            size,
        });
        Cnn { pool, ..self }
    }

    /// Features entering the dense layer: F·OS², or F·⌊OS/P⌋² after pooling.
    pub fn features(&self) -> usize {
        self.pool.map_or(self.conv.out_len(), |p| p.out_len())
    }

    /// Lengths of conv.weight, conv.bias (0 when absent), fc.weight, fc.bias.
    pub(crate) fn lens(&self) -> [usize; 4] {
        let c = &self.conv;
        let bias = if self.conv_bias { c.filters } else { 0 };
        [
            c.filters * c.patch(),
            bias,
            self.classes * self.features(),
            self.classes,
        ]
    }
}

impl<T: Scalar> Network<T> for Cnn {
    type Workspace = CnnWorkspace<T>;

    fn layout(&self) -> Layout {
        let c = &self.conv;
        let mut tensors = vec![TensorSpec::new(
            "conv.weight",
            &[c.filters, 1, c.kernel, c.kernel],
        )];
        if self.conv_bias {
            tensors.push(TensorSpec::new("conv.bias", &[c.filters]));
        }
        tensors.push(TensorSpec::new("fc.weight", &[self.classes, self.features()]));
        tensors.push(TensorSpec::new("fc.bias", &[self.classes]));
        Layout { tensors }
    }

    fn input_dim(&self) -> usize {
        self.conv.side * self.conv.side
    }

    fn classes(&self) -> usize {
        self.classes
    }

    fn workspace(&self, max_batch: usize) -> CnnWorkspace<T> {
        let c = &self.conv;
        CnnWorkspace {
            conv: c.scratch(),
            h: vec![T::zero(); max_batch * c.out_len()],
            logits: vec![T::zero(); max_batch * self.classes],
            d_h: vec![T::zero(); max_batch * c.out_len()],
            pooled: vec![T::zero(); self.pool.map_or(0, |p| max_batch * p.out_len())],
            argmax: vec![0; self.pool.map_or(0, |p| max_batch * p.out_len())],
            d_pooled: vec![T::zero(); self.pool.map_or(0, |p| max_batch * p.out_len())],
            dropout: Dropout::new(max_batch * self.features()),
        }
    }

    fn init(&self, params: &mut [T], rng: &mut Rng) {
        let c = &self.conv;
        let [w_conv, b_conv, w_fc, b_fc] = split_mut(params, self.lens());
        fill(w_conv, Init::He, 0.0, c.patch(), c.filters, rng);
        fill(w_fc, Init::He, 0.0, self.features(), self.classes, rng);
        b_conv.fill(T::zero());
        b_fc.fill(T::zero());
    }

    fn forward_with<'w>(
        &self,
        params: &[T],
        x: &[T],
        batch: usize,
        noise: Option<&Noise>,
        ws: &'w mut CnnWorkspace<T>,
    ) -> &'w [T] {
        let [w_conv, b_conv, w_fc, b_fc] = split(params, self.lens());
        let c = &self.conv;
        let h = &mut ws.h[..batch * c.out_len()];
        let logits = &mut ws.logits[..batch * self.classes];
        let bias = self.conv_bias.then_some(b_conv);
        c.forward(batch, x, w_conv, bias, &mut ws.conv, h);
        relu::forward(h);
        let features: &[T] = match &self.pool {
            Some(pool) => {
                let pooled = &mut ws.pooled[..batch * pool.out_len()];
                pool.forward(batch, h, pooled, &mut ws.argmax);
                pooled
            }
            None => h,
        };
        let features = ws.dropout.forward(features, self.features(), noise);
        dense::forward(batch, features, w_fc, b_fc, logits);
        logits
    }

    fn backward(
        &self,
        params: &[T],
        x: &[T],
        batch: usize,
        d_logits: &[T],
        ws: &mut CnnWorkspace<T>,
        grads: &mut [T],
    ) {
        let [w_conv, _, w_fc, _] = split(params, self.lens());
        let [d_w_conv, d_b_conv, d_w_fc, d_b_fc] = split_mut(grads, self.lens());
        let c = &self.conv;
        let h = &ws.h[..batch * c.out_len()];
        let d_h = &mut ws.d_h[..batch * c.out_len()];
        match &self.pool {
            Some(pool) => {
                let pooled = ws.dropout.output(&ws.pooled[..batch * pool.out_len()]);
                let d_pooled = &mut ws.d_pooled[..batch * pool.out_len()];
                dense::backward(
                    batch,
                    pooled,
                    w_fc,
                    d_logits,
                    Some(&mut *d_pooled),
                    d_w_fc,
                    d_b_fc,
                );
                ws.dropout.backward(d_pooled);
                pool.backward(batch, d_pooled, &ws.argmax, d_h);
            }
            None => {
                let features = ws.dropout.output(h);
                dense::backward(batch, features, w_fc, d_logits, Some(&mut *d_h), d_w_fc, d_b_fc);
                ws.dropout.backward(d_h);
            }
        }
        // δ_conv = ∂L/∂h ⊙ 1[h > 0]; the input needs no gradient.
        relu::backward(h, d_h);
        let d_bias = self.conv_bias.then_some(d_b_conv);
        c.backward(batch, x, w_conv, d_h, &mut ws.conv, d_w_conv, d_bias, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, check_network, check_network_with_dropout};
    use crate::layers::softmax_ce::Reduction;

    #[test]
    fn whole_cnn_gradient_matches_finite_differences() {
        for (bias, filters, pool) in [
            (false, 1, None),
            (true, 3, None),
            (false, 2, Some(2)),
            (true, 5, Some(2)),
            (true, 2, Some(3)),
        ] {
            let net = Cnn::new(7, 3, filters, bias, 10).with_pool(pool);
            for reduction in [Reduction::Mean, Reduction::Sum] {
                for (name, err) in check_network(&net, 3, reduction, 8) {
                    assert!(
                        err < TOLERANCE,
                        "bias {bias} F {filters} pool {pool:?} {reduction:?} {name}: {err:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn gradient_with_dropout_matches_finite_differences() {
        for pool in [None, Some(2)] {
            let net = Cnn::new(7, 3, 3, true, 10).with_pool(pool);
            let errors = check_network_with_dropout(&net, 3, Reduction::Mean, 4, 0.5);
            for (name, err) in errors {
                assert!(err < TOLERANCE, "pool {pool:?} {name}: {err:e}");
            }
        }
    }

    #[test]
    fn layout_follows_pytorch() {
        let net = Cnn::new(28, 7, 32, false, 10);
        let l = Network::<f32>::layout(&net);
        let shapes: Vec<_> = l
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.shape.clone()))
            .collect();
        assert_eq!(
            shapes,
            vec![
                ("conv.weight", vec![32, 1, 7, 7]),
                ("fc.weight", vec![10, 32 * 22 * 22]),
                ("fc.bias", vec![10])
            ]
        );
    }
}
