//! Layers: each file holds one layer's forward and backward pass side by side,
//! with the maths and tensor shapes in its module documentation.

pub mod conv2d;
pub mod conv_wide;
pub mod dense;
pub mod dense_narrow;
pub mod dropout;
pub mod maxpool;
pub mod relu;
pub mod sigmoid;
pub mod softmax_ce;
pub mod tanh;
