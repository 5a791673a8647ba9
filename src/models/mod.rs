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

/// A model built from a [`ModelSpec`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Net {
    Mlp(Mlp),
    Cnn(Cnn),
}

impl ModelSpec {
    /// The report's MLP with `hidden` sigmoid units on MNIST-sized inputs.
    pub fn mlp(hidden: usize) -> Self {
        ModelSpec::Mlp {
            input: 784,
            hidden,
            classes: 10,
            activation: Activation::Sigmoid,
        }
    }

    /// The report's CNN with `filters` filters of `kernel`², no bias, no pooling.
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

    /// Checks sizes that flags cannot check one by one: a pooling window must fit
    /// in the convolution's output.
    pub fn validate(&self) -> Result<(), String> {
        if let ModelSpec::Cnn {
            side,
            kernel,
            pool: true,
            pool_size,
            ..
        } = *self
        {
            let os = side + 1 - kernel;
            if pool_size == 0 || pool_size > os {
                return Err(format!(
                    "--pool-size {pool_size} does not fit the {os}×{os} output of a {kernel}×{kernel} convolution \
                     (expected 1 to {os})"
                ));
            }
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
