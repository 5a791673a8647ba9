//! Fully connected layer, with PyTorch's weight layout (`W` is `[out, in]`).
//!
//! ```text
//! forward   Y[B,out] = X[B,in] · Wᵀ + b          (the report's z = x·W₁ + b₁ with W₁ = Wᵀ)
//! backward  dX[B,in]  = dY · W
//!           dW[out,in] = dYᵀ · X                  (the report's ∂L/∂W₁ = xᵀ·δ, transposed)
//!           db[out]    = Σ_rows dY
//! ```
//! Backward needs X (the layer's input) and W; forward stores nothing else.

use crate::linalg::{Scalar, gemm_nt, gemm_tn, matmul};

/// Y = X·Wᵀ + b for `batch` rows.
pub fn forward<T: Scalar>(batch: usize, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    let (n_out, n_in) = (b.len(), x.len() / batch.max(1));
    debug_assert_eq!(w.len(), n_out * n_in);
    // Start each output row from the bias, then accumulate the product (β = 1).
    for row in y.chunks_exact_mut(n_out) {
        row.copy_from_slice(b);
    }
    gemm_nt(batch, n_out, n_in, x, n_in, w, n_in, y, n_out);
}

/// Writes dW and db; writes dX when asked (the first layer does not need it).
pub fn backward<T: Scalar>(
    batch: usize,
    x: &[T],
    w: &[T],
    d_y: &[T],
    d_x: Option<&mut [T]>,
    d_w: &mut [T],
    d_b: &mut [T],
) {
    let (n_out, n_in) = (d_b.len(), x.len() / batch.max(1));
    gemm_tn(n_out, n_in, batch, d_y, n_out, x, n_in, d_w, n_in);
    d_b.fill(T::zero());
    for row in d_y.chunks_exact(n_out) {
        for (acc, &g) in d_b.iter_mut().zip(row) {
            *acc += g;
        }
    }
    if let Some(d_x) = d_x {
        backward_input(batch, w, d_y, d_x);
    }
}

/// dX = dY·W alone (each row of dX from its row of dY only).
pub fn backward_input<T: Scalar>(batch: usize, w: &[T], d_y: &[T], d_x: &mut [T]) {
    let n_out = d_y.len() / batch.max(1);
    let n_in = w.len() / n_out.max(1);
    matmul(batch, n_out, n_in, d_y, w, T::zero(), d_x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{max_relative_error, numeric_gradient, random_vec};
    use crate::rng::Rng;

    /// Golden values computed by hand: X = [[1,2],[3,4]], W = [[1,0],[0,1],[1,1]], b = [0.5,-1,0].
    #[test]
    fn golden_forward_backward() {
        let x = [1.0f64, 2.0, 3.0, 4.0];
        let w = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let b = [0.5, -1.0, 0.0];
        let mut y = [0.0; 6];
        forward(2, &x, &w, &b, &mut y);
        assert_eq!(y, [1.5, 1.0, 3.0, 3.5, 3.0, 7.0]);
        let d_y = [1.0, 0.0, 2.0, 0.0, 1.0, -1.0];
        let (mut d_x, mut d_w, mut d_b) = ([0.0; 4], [0.0; 6], [0.0; 3]);
        backward(2, &x, &w, &d_y, Some(&mut d_x), &mut d_w, &mut d_b);
        assert_eq!(d_x, [3.0, 2.0, -1.0, 0.0]);
        assert_eq!(d_w, [1.0, 2.0, 3.0, 4.0, -1.0, 0.0]);
        assert_eq!(d_b, [1.0, 1.0, 1.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(1, 0);
        let (batch, n_in, n_out) = (4, 5, 3);
        let x = random_vec(batch * n_in, &mut rng);
        let w = random_vec(n_out * n_in, &mut rng);
        let b = random_vec(n_out, &mut rng);
        // L = Σ r ⊙ Y for a fixed random r, so dL/dY = r.
        let r = random_vec(batch * n_out, &mut rng);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut y = vec![0.0; batch * n_out];
            forward(batch, x, w, b, &mut y);
            y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mut d_x, mut d_w, mut d_b) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
        backward(batch, &x, &w, &r, Some(&mut d_x), &mut d_w, &mut d_b);
        let nx = numeric_gradient(&x, |v| loss(v, &w, &b));
        let nw = numeric_gradient(&w, |v| loss(&x, v, &b));
        let nb = numeric_gradient(&b, |v| loss(&x, &w, v));
        // Threshold: see gradcheck::TOLERANCE.
        for (a, n) in [(&d_x, &nx), (&d_w, &nw), (&d_b, &nb)] {
            assert!(max_relative_error(a, n) < crate::gradcheck::TOLERANCE);
        }
    }
}
