//! Data: the IDX format, the MNIST-format datasets, downloading, batching.

pub mod batches;
pub mod download;
pub mod idx;
pub mod mnist;
