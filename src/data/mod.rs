//! Data: the IDX format, the MNIST-format datasets, downloading, batching.

pub mod batches;
#[cfg(feature = "download")]
pub mod download;
pub mod idx;
pub mod mnist;
