//! # scratchnet
//!
//! Handwritten-digit classification (MNIST) with the multilayer perceptron
//! and the convolutional network of the report, written from scratch: every
//! forward pass, gradient and update is in this crate, next to the equation
//! it implements.
//!
//! ## Using the library
//!
//! [`prelude`] holds what a program needs: a [`Model`] built from a
//! [`ModelSpec`](models::ModelSpec), a [`Trainer`] with
//! [`Settings`](train::Settings) (defaults and a builder), [`load_mnist`],
//! `save`/`load` in one call, and `predict` returning probabilities. The
//! examples (`cargo run --release --example train_mlp`, `custom_data`,
//! `inspect_checkpoint`) are short programs on it. Without the default `cli`
//! feature the crate has no command-line, download, plotting, image or ONNX
//! dependencies (see the `[features]` in `Cargo.toml`).
//!
//! ```no_run
//! use scratchnet::prelude::*;
//! let (train, test) = load_mnist("data/mnist".as_ref(), Normalize::Standard)?;
//! let mut model = Model::new(ModelSpec::mlp(256), 0)?;
//! Trainer::new(Settings::default().epochs(5)).fit(&mut model, &train, Some(&test))?;
//! println!("{:.2} %", 100.0 * model.evaluate(&test).accuracy());
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! The modules below the prelude are the implementation, public so that the
//! command line and the tests can reach every layer; those marked hidden in
//! these docs (`atomic`, `bench`, `rng`, …) are not meant to be depended on.
//!
//! ## The map: two wings and a door
//!
//! ```text
//! cli/ (binary) → sweep/ → run/ → train/ → engine/ → models/ → layers/ → linalg
//!                                    │          └──→ kernels/ ──────────────┘
//!                                    └─ the one place that splits work across threads
//! ```
//! - **The textbook wing** — [`layers`], [`models`], [`params`], [`init`],
//!   [`optim`] and [`train`]'s sample-sharded step — is plain Rust over
//!   [`linalg`]'s products, generic over f32 and f64, with no
//!   processor-specific code. It trains on any CPU:
//!   `SCRATCHNET_KERNELS=reference` runs training, evaluation and prediction
//!   on it alone.
//! - **The fast wing** — [`engine`] — computes the same models with the
//!   processor-specific loops of [`kernels`] and with fusions that keep data in
//!   cache. Each engine piece names its textbook twin and is tested against it.
//! - **The door** — [`kernels`] — holds every processor-specific loop behind
//!   one table per kernel level (`avx512`, `avx2`, `neon`, `portable`), chosen
//!   once from the CPU and `SCRATCHNET_KERNELS`.
//!
//! Imports point down the map only: nothing imports a module above it and
//! there are no cycles; `kernels` imports only `linalg`. Beside the chain:
//! [`data`] (MNIST files, normalisation, batches), [`checkpoint`] and
//! [`atomic`] (files written atomically), [`metrics`], [`plot`], [`prepare`]
//! (preparing a digit image), [`gradcheck`], [`bench`](mod@bench), [`rng`].
//!
//! ## The reader's path
//!
//! To see the report's equations train, read these five files in order:
//! 1. `layers/dense.rs` — Y = X·Wᵀ + b and its three gradients;
//! 2. `layers/sigmoid.rs` and `layers/softmax_ce.rs` — σ, softmax and
//!    cross-entropy, with δ = ŷ − y;
//! 3. `models/mlp.rs` — the MLP as a composition of those layers;
//! 4. `layers/conv2d.rs` and `models/cnn.rs` — im2col, `ΔW = Σ_b δ[b]·P[b]`,
//!    and the CNN;
//! 5. `train/mod.rs` — the epoch loop: shuffle, batch, forward, loss,
//!    backward, update.
//!
//! ## The reproducibility contract
//!
//! Stated here once; `train/tests.rs` and the tests of `tests/` check it.
//! - A seed, a thread count and a kernel choice give the same trained
//!   parameters, bit for bit, on every run, and a run interrupted and resumed
//!   gives the bits of an uninterrupted one: every parallel sum is reduced in
//!   a fixed order.
//! - The engine's MLP step gives the same bits for any thread count, and the
//!   same bits as the engine's MLP in the sample-sharded step on one thread.
//!   The CNN's bits, and the textbook wing's, depend on the thread count (the
//!   batch is cut into one shard per thread and the shards' sums are added).
//! - Each kernel level gives bits of its own: the dense forward product and σ
//!   are written per level (their own blocks, reduction trees and σ
//!   polynomials). The convolution's kernels and the dense ∂W product are
//!   written once over a 16-lane vector type and give the same bits at
//!   `avx512`, `avx2` and `neon`; the ten-output layer and the vector loops
//!   give the same bits at every level. At `avx2` the MLP's first layer skips
//!   the inputs at the background value (`kernels::sparse`): its sums run over
//!   the other inputs in order, and which batches take that path depends on
//!   their inputs. `reference` gives other bits again
//!   (general products instead of the engine's). Different bits agree within rounding
//!   (the engine-against-textbook tests state their tolerances).
//!
//! Shape legend used in comments: B batch, D input features (784), H hidden
//! units, C classes (10), S image side, K kernel side, F filters, OS = S − K + 1.

pub mod api;
#[doc(hidden)]
pub mod atomic;
#[doc(hidden)]
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod engine;
#[cfg(feature = "onnx")]
pub mod export;
pub mod gradcheck;
pub mod init;
pub mod kernels;
pub mod layers;
pub mod linalg;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod params;
#[cfg(feature = "plots")]
pub mod pictures;
#[doc(hidden)]
pub mod plot;
#[cfg(feature = "images")]
pub mod prepare;
#[doc(hidden)]
pub mod rng;
pub mod run;
#[cfg(feature = "serve")]
pub mod serve;
pub mod sweep;
pub mod train;

pub use api::{Model, Prediction, Trainer, load_mnist};

/// What a program using the library needs, in one import.
pub mod prelude {
    pub use crate::api::{Model, Prediction, Trainer, load_mnist};
    pub use crate::data::batches::{Normalize, Samples};
    pub use crate::layers::softmax_ce::Reduction;
    pub use crate::metrics::{Confusion, Evaluation};
    pub use crate::models::{Activation, ModelSpec};
    pub use crate::optim::{Optimizer, Rule, Schedule, ScheduleKind};
    pub use crate::train::{EpochRecord, Settings};
}
