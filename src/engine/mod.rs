//! The fast wing: the textbook models computed by the kernels of one level
//! (`kernels`), with the fusions that keep data in cache.
//!
//! | engine                | reproduces                           | how it differs                                  |
//! | --------------------- | ------------------------------------ | ----------------------------------------------- |
//! | [`FastMlp`]           | `models::Mlp`                        | products and σ by the level's kernels           |
//! | [`MlpStep`]           | `models::Mlp` in the sample-sharded step | the hidden layer split across threads       |
//! | [`FastCnn`]           | `models::Cnn`                        | direct convolution; output layer fused into it  |
//! | [`conv::ConvRelu`]    | `layers::conv2d` + `layers::relu`    | three strategies ([`conv::Strategy`])          |
//! | [`dense`]             | `layers::dense`                      | ten-output kernels, unpacked products           |
//!
//! Each is tested against its textbook twin on real steps (`tests.rs`, and
//! `train/tests.rs` for whole training steps), within a stated tolerance:
//! the kernels round differently from the textbook's products. Which results
//! are the same bits across thread counts and levels is the reproducibility
//! contract of `lib.rs`.

pub mod cnn;
pub mod conv;
pub mod dense;
pub mod mlp;
pub mod mlp_step;

#[cfg(test)]
mod tests;

pub use cnn::FastCnn;
pub use mlp::FastMlp;
pub use mlp_step::MlpStep;

use crate::kernels::Kernels;
use crate::models::Net;

/// A model as the engine runs it.
#[derive(Clone, Copy, Debug)]
pub enum Fast {
    Mlp(FastMlp),
    Cnn(FastCnn),
}

impl Fast {
    /// `net` on `kernels`; a CNN's convolution sums ∂L/∂W in `runs` runs of
    /// samples per shard.
    pub fn new(net: &Net, kernels: &'static Kernels, runs: usize) -> Fast {
        match *net {
            Net::Mlp(net) => Fast::Mlp(FastMlp { net, kernels }),
            Net::Cnn(net) => Fast::Cnn(FastCnn::new(net, kernels, runs)),
        }
    }
}
