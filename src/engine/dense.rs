//! A dense layer on the kernels: the textbook twin is `layers::dense` (the
//! same equations; tested against it in `engine::tests`).
//!
//! ```text
//! forward   Y[B,out] = X[B,in] · Wᵀ + b
//! backward  dX = dY · W,   dW = dYᵀ · X,   db = Σ_rows dY
//! ```
//! A layer with ten outputs uses the ten-output kernels (`kernels::dense10`),
//! any other the strided products (`kernels::gemm`); ∂X of a wider layer is a
//! general product (`linalg::matmul`).

use crate::kernels::Kernels;
use crate::kernels::dense10::OUTPUTS;
use crate::linalg::matmul;

/// Y = X·Wᵀ + b for `batch` rows.
pub fn forward(k: &Kernels, batch: usize, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    let (n_out, n_in) = (b.len(), x.len() / batch.max(1));
    // Start each output row from the bias, then accumulate the product.
    for row in y.chunks_exact_mut(n_out) {
        row.copy_from_slice(b);
    }
    if n_out == OUTPUTS {
        (k.dense10_forward)(batch, x, w, y);
    } else {
        (k.gemm_nt)(batch, n_out, n_in, x, n_in, w, n_in, y, n_out);
    }
}

/// Writes dW and db; writes dX when asked (the first layer does not need it).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    k: &Kernels,
    batch: usize,
    x: &[f32],
    w: &[f32],
    d_y: &[f32],
    d_x: Option<&mut [f32]>,
    d_w: &mut [f32],
    d_b: &mut [f32],
) {
    let (n_out, n_in) = (d_b.len(), x.len() / batch.max(1));
    if n_out == OUTPUTS {
        (k.dense10_d_weight)(batch, x, d_y, d_w);
    } else {
        (k.gemm_tn)(n_out, n_in, batch, d_y, n_out, x, n_in, d_w, n_in);
    }
    d_b.fill(0.0);
    for row in d_y.chunks_exact(n_out) {
        for (acc, &g) in d_b.iter_mut().zip(row) {
            *acc += g;
        }
    }
    if let Some(d_x) = d_x {
        backward_input(k, batch, w, d_y, d_x);
    }
}

/// dX = dY·W alone (each row of dX from its row of dY only).
pub fn backward_input(k: &Kernels, batch: usize, w: &[f32], d_y: &[f32], d_x: &mut [f32]) {
    let n_out = d_y.len() / batch.max(1);
    let n_in = w.len() / n_out.max(1);
    if n_out == OUTPUTS {
        (k.dense10_d_input)(batch, d_y, w, d_x);
    } else {
        matmul(batch, n_out, n_in, d_y, w, 0.0, d_x);
    }
}
