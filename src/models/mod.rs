//! The networks. Each model is a small struct of sizes; its parameters live in
//! a flat buffer described by its [`Layout`], and its
//! activations in a workspace sized once for the largest batch.

pub mod cnn;
pub mod mlp;

pub use crate::layers::dropout::Noise;
use crate::linalg::Scalar;
use crate::params::Layout;
use crate::rng::Rng;

pub use cnn::Cnn;
pub use mlp::{Activation, Mlp};

/// A network that maps a batch of inputs to logits and back-propagates.
pub trait Network<T: Scalar>: Send + Sync {
    /// Buffers for activations and their gradients, sized for a maximum batch.
    type Workspace: Send + Sync;

    fn layout(&self) -> Layout;
    fn input_dim(&self) -> usize;
    fn classes(&self) -> usize;
    fn workspace(&self, max_batch: usize) -> Self::Workspace;

    /// Fills `params` with a fresh seeded initialisation.
    fn init(&self, params: &mut [T], rng: &mut Rng);

    /// Logits `[batch, classes]` of `x` `[batch, input_dim]`; keeps in `ws` what
    /// backward needs. With `noise`, a training pass: dropout (when its rate is
    /// above 0) masks the features entering the output layer.
    fn forward_with<'w>(
        &self,
        params: &[T],
        x: &[T],
        batch: usize,
        noise: Option<&Noise>,
        ws: &'w mut Self::Workspace,
    ) -> &'w [T];

    /// Logits of `x` with the network as it is used for evaluation (no dropout).
    fn forward<'w>(&self, params: &[T], x: &[T], batch: usize, ws: &'w mut Self::Workspace) -> &'w [T] {
        self.forward_with(params, x, batch, None, ws)
    }

    /// Given ∂L/∂logits, writes ∂L/∂params into `grads` (same layout as `params`).
    /// Must follow a `forward` on the same `x` and `ws`.
    fn backward(
        &self,
        params: &[T],
        x: &[T],
        batch: usize,
        d_logits: &[T],
        ws: &mut Self::Workspace,
        grads: &mut [T],
    );
}

/// What a checkpoint needs to rebuild a model: its kind and sizes.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// input → hidden (activation) → classes
    Mlp {
        input: usize,
        hidden: usize,
        classes: usize,
        /// The hidden activation (checkpoints without the field are the report's sigmoid).
        #[serde(default)]
        activation: Activation,
    },
    /// side×side image → conv (filters × kernel²) → ReLU → (2×2 max-pool) → flatten → classes
    Cnn {
        side: usize,
        kernel: usize,
        filters: usize,
        conv_bias: bool,
        classes: usize,
        /// Max-pooling after the ReLU (checkpoints without the field have none).
        #[serde(default)]
        pool: bool,
        /// Its window and stride P (checkpoints without the field pool 2×2).
        #[serde(default = "default_pool_size")]
        pool_size: usize,
    },
}

fn default_pool_size() -> usize {
    2
}

/// The largest sizes a flag or a checkpoint may ask for ([`ModelSpec::validate`]).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub input: usize,
    pub hidden: usize,
    pub classes: usize,
    pub side: usize,
    pub filters: usize,
    /// Features per sample entering the output layer (F·OS²).
    pub features: usize,
    pub params: usize,
}

/// The limits: far above any model of MNIST's size, well below what would
/// exhaust a machine's memory for the parameters alone (2²⁸ parameters are 1 GiB).
pub const LIMITS: Limits = Limits {
    input: 1 << 20,
    hidden: 1 << 20,
    classes: 1 << 16,
    side: 1 << 12,
    filters: 1 << 16,
    features: 1 << 22,
    params: 1 << 28,
};

/// A model built from a [`ModelSpec`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Net {
    Mlp(Mlp),
    Cnn(Cnn),
}

impl Net {
    /// The number of classes it predicts.
    pub fn classes(&self) -> usize {
        match self {
            Net::Mlp(m) => m.classes,
            Net::Cnn(c) => c.classes,
        }
    }
}

impl ModelSpec {
    /// The report's MLP with `hidden` sigmoid units on MNIST-sized inputs.
    ///
    /// ```
    /// use scratchnet::models::ModelSpec;
    /// let spec = ModelSpec::mlp(256);
    /// assert_eq!(spec.describe(), "mlp 784-256-10 (sigmoid hidden layer)");
    /// assert_eq!(spec.param_count(), 784 * 256 + 256 + 256 * 10 + 10);
    /// assert!(ModelSpec::mlp(0).validate().is_err());
    /// ```
    pub fn mlp(hidden: usize) -> Self {
        ModelSpec::Mlp {
            input: 784,
            hidden,
            classes: 10,
            activation: Activation::Sigmoid,
        }
    }

    /// The report's CNN with `filters` filters of `kernel`², no bias, no pooling.
    ///
    /// ```
    /// use scratchnet::models::ModelSpec;
    /// let spec = ModelSpec::cnn(7, 1);
    /// // 7×7 weights, then 10 × 22² output weights and 10 biases.
    /// assert_eq!(spec.param_count(), 49 + 10 * 22 * 22 + 10);
    /// ```
    pub fn cnn(kernel: usize, filters: usize) -> Self {
        ModelSpec::Cnn {
            side: 28,
            kernel,
            filters,
            conv_bias: false,
            classes: 10,
            pool: false,
            pool_size: default_pool_size(),
        }
    }

    /// Checks every size before anything is allocated for it: each must be
    /// at least 1 and at most its limit ([`LIMITS`]), a kernel must fit in the
    /// image and a pooling window in the convolution's output, and the
    /// parameters and the features per sample must stay within their bounds.
    /// The error names the field, its value and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        let range = |name: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} {v} is out of range (expected {lo} to {hi})"))
            }
        };
        let l = LIMITS;
        match *self {
            ModelSpec::Mlp {
                input,
                hidden,
                classes,
                ..
            } => {
                range("input", input, 1, l.input)?;
                range("hidden", hidden, 1, l.hidden)?;
                range("classes", classes, 2, l.classes)?;
            }
            ModelSpec::Cnn {
                side,
                kernel,
                filters,
                classes,
                pool,
                pool_size,
                ..
            } => {
                range("side", side, 1, l.side)?;
                range("kernel", kernel, 1, side)?;
                range("filters", filters, 1, l.filters)?;
                range("classes", classes, 2, l.classes)?;
                let os = side + 1 - kernel;
                if pool && !(1..=os).contains(&pool_size) {
                    return Err(format!(
                        "--pool-size {pool_size} does not fit the {os}×{os} output of a {kernel}×{kernel} convolution \
                         (expected 1 to {os})"
                    ));
                }
                let features = filters.saturating_mul(os * os);
                if features > l.features {
                    return Err(format!(
                        "{filters} filters of {kernel}×{kernel} on {side}×{side} images make {features} features per \
                         sample, more than the limit of {}",
                        l.features
                    ));
                }
            }
        }
        let params = self.param_count();
        if params > l.params {
            return Err(format!(
                "the model has {params} parameters, more than the limit of {} ({} GiB)",
                l.params,
                (l.params * 4) >> 30
            ));
        }
        Ok(())
    }

    /// The number of parameters, saturating at `usize::MAX` (so that an
    /// absurd size is refused, not wrapped).
    pub fn param_count(&self) -> usize {
        let mul = |a: usize, b: usize| a.saturating_mul(b);
        match *self {
            ModelSpec::Mlp {
                input,
                hidden,
                classes,
                ..
            } => mul(hidden, input)
                .saturating_add(hidden)
                .saturating_add(mul(classes, hidden))
                .saturating_add(classes),
            ModelSpec::Cnn {
                side,
                kernel,
                filters,
                conv_bias,
                classes,
                pool,
                pool_size,
            } => {
                let os = side.saturating_add(1).saturating_sub(kernel);
                let side_out = if pool && pool_size > 0 { os / pool_size } else { os };
                let features = mul(filters, mul(side_out, side_out));
                mul(filters, mul(kernel, kernel))
                    .saturating_add(if conv_bias { filters } else { 0 })
                    .saturating_add(mul(classes, features))
                    .saturating_add(classes)
            }
        }
    }

    /// Input values per sample.
    pub fn input_len(&self) -> usize {
        match *self {
            ModelSpec::Mlp { input, .. } => input,
            ModelSpec::Cnn { side, .. } => side.saturating_mul(side),
        }
    }

    pub fn classes(&self) -> usize {
        match *self {
            ModelSpec::Mlp { classes, .. } | ModelSpec::Cnn { classes, .. } => classes,
        }
    }

    /// Activations per sample that training or evaluation keeps (the widest
    /// layer's outputs, their gradients and the logits), for memory bounds.
    pub fn activations_per_sample(&self) -> usize {
        match *self {
            ModelSpec::Mlp { hidden, classes, .. } => hidden.saturating_mul(4).saturating_add(classes * 2),
            ModelSpec::Cnn {
                side,
                kernel,
                filters,
                classes,
                ..
            } => {
                let os = side.saturating_add(1).saturating_sub(kernel);
                filters
                    .saturating_mul(os * os)
                    .saturating_mul(5)
                    .saturating_add(classes * 2)
            }
        }
    }

    /// Whether this model can read `input_len` values per sample (of an image
    /// `side`×`side`) and predict `classes` classes; the error names both sides.
    pub fn fits(&self, what: &str, input_len: usize, side: usize, classes: usize) -> Result<(), String> {
        if let ModelSpec::Cnn { side: s, .. } = *self
            && s != side
        {
            return Err(format!(
                "the model reads {s}×{s} images, but {what} has {side}×{side} images"
            ));
        }
        if self.input_len() != input_len {
            return Err(format!(
                "the model reads {} values per sample, but {what} has {input_len}",
                self.input_len()
            ));
        }
        if self.classes() != classes {
            return Err(format!(
                "the model predicts {} classes, but {what} has {classes}",
                self.classes()
            ));
        }
        Ok(())
    }

    /// The model this spec describes, with the report's initialisation
    /// (normal, σ = 0.01, for the MLP; He for the CNN). A run applies its own
    /// initialisation with `run::RunSpec::net`; a checkpoint's model needs none.
    pub fn build(&self) -> Net {
        match *self {
            ModelSpec::Mlp {
                input,
                hidden,
                classes,
                activation,
            } => Net::Mlp(Mlp {
                input,
                hidden,
                classes,
                activation,
                init: crate::init::Init::Normal,
                init_std: 0.01,
            }),
            ModelSpec::Cnn {
                side,
                kernel,
                filters,
                conv_bias,
                classes,
                pool,
                pool_size,
            } => Net::Cnn(
                Cnn::new(side, kernel, filters, conv_bias, classes).with_pool(pool.then_some(pool_size)),
            ),
        }
    }

    /// The parameter layout of this model.
    pub fn layout(&self) -> Layout {
        match self.build() {
            Net::Mlp(n) => Network::<f32>::layout(&n),
            Net::Cnn(n) => Network::<f32>::layout(&n),
        }
    }

    /// A one-line description: "mlp 784-256-10 (sigmoid hidden layer)".
    pub fn describe(&self) -> String {
        match *self {
            ModelSpec::Mlp {
                input,
                hidden,
                classes,
                activation,
            } => {
                format!(
                    "mlp {input}-{hidden}-{classes} ({} hidden layer)",
                    activation.name()
                )
            }
            ModelSpec::Cnn {
                side,
                kernel,
                filters,
                conv_bias,
                classes,
                pool,
                pool_size: p,
            } => {
                let os = side - kernel + 1;
                let bias = if conv_bias { " with bias" } else { "" };
                let (pooled, features) = if pool {
                    (format!(" → max-pool {p}×{p}"), filters * (os / p) * (os / p))
                } else {
                    (String::new(), filters * os * os)
                };
                format!(
                    "cnn {filters}×{kernel}×{kernel} conv{bias} → ReLU{pooled} → {features}→{classes} (input {side}×{side})"
                )
            }
        }
    }
}
