//! The textbook layers: each file holds one layer's forward and backward pass
//! side by side, with the maths and tensor shapes in its module
//! documentation. Plain Rust over `linalg`'s products, generic over the
//! element type (f32 to train, f64 for gradient checks), with no
//! processor-specific code; the engine's fast versions are tested against
//! them.

pub mod conv2d;
pub mod dense;
pub mod dropout;
pub mod maxpool;
pub mod relu;
pub mod sigmoid;
pub mod softmax_ce;
pub mod tanh;
