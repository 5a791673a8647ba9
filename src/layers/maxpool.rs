//! P×P max-pooling, stride P, over each channel of `[B, C, H, W]` maps (as
//! PyTorch's `nn.MaxPool2d(P)`: rows and columns past the last whole window are dropped).
//!
//! ```text
//! forward   y[b,c,i,j] = max_{0 ≤ di,dj < P} x[b,c,P·i+di,P·j+dj]      y [B, C, ⌊H/P⌋, ⌊W/P⌋]
//!           (the first maximum in row-major order wins ties; its index is kept)
//! backward  ∂L/∂x[b,c,p] = Σ over the outputs whose kept index is p of ∂L/∂y   (all else 0)
//! ```
//! Forward stores, for every output, the flat index of the input it copied:
//! that is all backward needs. [`naive_forward`] is the reference.

use crate::linalg::Scalar;

/// Sizes of a pooling layer: C channels of H×W, windows of P×P (`size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub size: usize,
}

impl MaxPool {
    pub fn out_height(&self) -> usize {
        self.height / self.size
    }

    pub fn out_width(&self) -> usize {
        self.width / self.size
    }

    /// Input values per sample.
    pub fn in_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Output values per sample.
    pub fn out_len(&self) -> usize {
        self.channels * self.out_height() * self.out_width()
    }

    /// y = pool(x) for `batch` samples; `argmax` receives each output's input index
    /// (within its sample).
    pub fn forward<T: Scalar>(&self, batch: usize, x: &[T], y: &mut [T], argmax: &mut [u32]) {
        let (h, w, oh, ow, k) = (
            self.height,
            self.width,
            self.out_height(),
            self.out_width(),
            self.size,
        );
        for b in 0..batch {
            let xb = &x[b * self.in_len()..(b + 1) * self.in_len()];
            let yb = &mut y[b * self.out_len()..(b + 1) * self.out_len()];
            let ab = &mut argmax[b * self.out_len()..(b + 1) * self.out_len()];
            for c in 0..self.channels {
                for i in 0..oh {
                    for j in 0..ow {
                        let o = (c * oh + i) * ow + j;
                        let mut best = (c * h + k * i) * w + k * j;
                        for di in 0..k {
                            for dj in 0..k {
                                let p = (c * h + k * i + di) * w + k * j + dj;
                                if xb[p] > xb[best] {
                                    best = p;
                                }
                            }
                        }
                        yb[o] = xb[best];
                        ab[o] = best as u32;
                    }
                }
            }
        }
    }

    /// ∂L/∂x from ∂L/∂y and the indices kept by forward.
    pub fn backward<T: Scalar>(&self, batch: usize, d_y: &[T], argmax: &[u32], d_x: &mut [T]) {
        d_x[..batch * self.in_len()].fill(T::zero());
        for b in 0..batch {
            let dxb = &mut d_x[b * self.in_len()..(b + 1) * self.in_len()];
            let range = b * self.out_len()..(b + 1) * self.out_len();
            for (&g, &p) in d_y[range.clone()].iter().zip(&argmax[range]) {
                dxb[p as usize] += g;
            }
        }
    }
}

/// Reference: the maximum of each window by a direct fold.
pub fn naive_forward<T: Scalar>(pool: &MaxPool, batch: usize, x: &[T]) -> Vec<T> {
    let (h, w, k) = (pool.height, pool.width, pool.size);
    let mut y = Vec::new();
    for b in 0..batch {
        for c in 0..pool.channels {
            for i in 0..pool.out_height() {
                for j in 0..pool.out_width() {
                    let at =
                        |di: usize, dj: usize| x[b * pool.in_len() + (c * h + k * i + di) * w + k * j + dj];
                    let window = (0..k).flat_map(|di| (0..k).map(move |dj| (di, dj)));
                    y.push(window.map(|(di, dj)| at(di, dj)).fold(T::neg_infinity(), T::max));
                }
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, max_relative_error, numeric_gradient, random_vec};
    use crate::rng::Rng;

    #[test]
    fn golden_forward_backward() {
        // One 2×4 map (odd sizes dropped elsewhere): windows [1 5; 3 2] and [0 -1; 7 7].
        let pool = MaxPool {
            channels: 1,
            height: 2,
            width: 4,
            size: 2,
        };
        let x = [1.0f64, 5.0, 0.0, -1.0, 3.0, 2.0, 7.0, 7.0];
        let (mut y, mut idx) = ([0.0; 2], [0u32; 2]);
        pool.forward(1, &x, &mut y, &mut idx);
        assert_eq!(y, [5.0, 7.0]);
        assert_eq!(idx, [1, 6]); // the first 7 wins the tie
        let mut d_x = [9.0; 8];
        pool.backward(1, &[0.5, -2.0], &idx, &mut d_x);
        assert_eq!(d_x, [0.0, 0.5, 0.0, 0.0, 0.0, 0.0, -2.0, 0.0]);
    }

    #[test]
    fn matches_naive_and_finite_differences() {
        let mut rng = Rng::new(31, 0);
        for (c, h, w, batch, size) in [
            (1, 22, 22, 3, 2),
            (3, 7, 5, 2, 2),
            (8, 24, 24, 1, 2),
            (2, 24, 24, 2, 3),
            (3, 11, 10, 2, 3),
            (2, 24, 24, 1, 4),
        ] {
            let pool = MaxPool {
                channels: c,
                height: h,
                width: w,
                size,
            };
            let x: Vec<f64> = random_vec(batch * pool.in_len(), &mut rng);
            let mut y = vec![0.0; batch * pool.out_len()];
            let mut idx = vec![0u32; y.len()];
            pool.forward(batch, &x, &mut y, &mut idx);
            assert_eq!(y, naive_forward(&pool, batch, &x));
            // Random inputs have no ties, so the maximum is locally differentiable.
            let r: Vec<f64> = random_vec(y.len(), &mut rng);
            let loss = |x: &[f64]| {
                naive_forward(&pool, batch, x)
                    .iter()
                    .zip(&r)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            };
            let mut d_x = vec![0.0; x.len()];
            pool.backward(batch, &r, &idx, &mut d_x);
            assert!(max_relative_error(&d_x, &numeric_gradient(&x, loss)) < TOLERANCE);
        }
    }
}
