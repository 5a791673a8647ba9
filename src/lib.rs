//! # scratchnet
//!
//! Handwritten-digit classification (MNIST) with a multilayer perceptron,
//! written from scratch: every forward pass, gradient and update is in this
//! crate, next to the equation it implements.
//!
//! The pipeline:
//! ```text
//! data::mnist::load_split ─► data::batches::Samples ─► train::train(net, params, …) ─► checkpoint::save
//!   (IDX, checksums)           (normalise, shuffle)       (forward, softmax-CE, backward, SGD)
//! ```
//!
//! Shape legend used in comments: B batch, D input features (784), H hidden
//! units, C classes (10).

pub mod atomic;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod engine;
pub mod gradcheck;
pub mod init;
pub mod kernels;
pub mod layers;
pub mod linalg;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod params;
pub mod plot;
pub mod predict;
pub mod rng;
pub mod run;
pub mod sweep;
pub mod train;
