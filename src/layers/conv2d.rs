//! 2-D convolution of one-channel images by F filters of K×K: valid, stride 1
//! (cross-correlation, as in PyTorch and the report).
//!
//! ```text
//! shapes   x [B,1,S,S]   W [F,1,K,K]   b [F] (optional)   z [B,F,OS,OS]   OS = S − K + 1
//! im2col   P[b][(oy,ox), (ky,kx)] = x[b, oy+ky, ox+kx]                 P[b] [OS², K²]
//! forward  z[b] = W · P[b]ᵀ (+ b)                                      z[b] [F, OS²]
//! backward δ[b] = ∂L/∂z[b]                                             δ[b] [F, OS²]
//!          ∂L/∂W = Σ_b δ[b] · P[b]                                     (the report's ΔW)
//!          ∂L/∂b = Σ_b Σ_pos δ[b]
//!          ∂L/∂P[b] = δ[b]ᵀ · W,  ∂L/∂x[b] = col2im(∂L/∂P[b])           (scatter-add of each patch)
//! ```
//! Each sample's patch matrix P\[b\] is built into a buffer sized once
//! ([`Conv2dScratch`]) and multiplied through `linalg`. Backward needs x and
//! W; forward stores nothing else. [`naive_forward`] and [`naive_backward`]
//! are the seven-loop definitions the tests compare against.

use crate::linalg::{Scalar, matmul, matmul_a_bt, matmul_at_b};

/// Sizes of a convolution layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Input side S (28 for MNIST).
    pub side: usize,
    /// Kernel side K.
    pub kernel: usize,
    /// Number of filters F.
    pub filters: usize,
}

/// One sample's patch matrix and its gradient, `[OS², K²]` each.
pub struct Conv2dScratch<T> {
    cols: Vec<T>,
    d_cols: Vec<T>,
}

impl Conv2d {
    /// Output side OS = S − K + 1.
    pub fn out_side(&self) -> usize {
        self.side - self.kernel + 1
    }

    /// Output positions per filter, OS².
    pub fn positions(&self) -> usize {
        self.out_side() * self.out_side()
    }

    /// Patch length K².
    pub fn patch(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Output values per sample, F·OS².
    pub fn out_len(&self) -> usize {
        self.filters * self.positions()
    }

    pub fn scratch<T: Scalar>(&self) -> Conv2dScratch<T> {
        let n = self.positions() * self.patch();
        Conv2dScratch {
            cols: vec![T::zero(); n],
            d_cols: vec![T::zero(); n],
        }
    }

    /// P ← im2col(one image): one row of K² pixels per output position.
    pub fn im2col<T: Scalar>(&self, img: &[T], cols: &mut [T]) {
        let (s, k, os) = (self.side, self.kernel, self.out_side());
        let mut rows = cols.chunks_exact_mut(k * k);
        for oy in 0..os {
            for ox in 0..os {
                let row = rows.next().expect("OS² rows");
                for ky in 0..k {
                    let src = &img[(oy + ky) * s + ox..(oy + ky) * s + ox + k];
                    row[ky * k..(ky + 1) * k].copy_from_slice(src);
                }
            }
        }
    }

    /// ∂L/∂x of one image ← scatter-add of each patch's gradient back to its pixels.
    pub fn col2im<T: Scalar>(&self, d_cols: &[T], d_x: &mut [T]) {
        let (s, k, os) = (self.side, self.kernel, self.out_side());
        d_x.fill(T::zero());
        let mut rows = d_cols.chunks_exact(k * k);
        for oy in 0..os {
            for ox in 0..os {
                let row = rows.next().expect("OS² rows");
                for ky in 0..k {
                    for kx in 0..k {
                        d_x[(oy + ky) * s + ox + kx] += row[ky * k + kx];
                    }
                }
            }
        }
    }

    /// z\[b\] = W·P\[b\]ᵀ (+ b) for each sample: `x` is `[B, S·S]`, `z` is `[B, F·OS²]`.
    pub fn forward<T: Scalar>(
        &self,
        batch: usize,
        x: &[T],
        w: &[T],
        bias: Option<&[T]>,
        scratch: &mut Conv2dScratch<T>,
        z: &mut [T],
    ) {
        let (ss, out, p) = (self.side * self.side, self.out_len(), self.positions());
        for (img, zb) in x[..batch * ss].chunks_exact(ss).zip(z.chunks_exact_mut(out)) {
            for (f, zf) in zb.chunks_exact_mut(p).enumerate() {
                zf.fill(bias.map_or(T::zero(), |b| b[f]));
            }
            self.im2col(img, &mut scratch.cols);
            matmul_a_bt(self.filters, self.patch(), p, w, &scratch.cols, T::one(), zb);
        }
    }

    /// From δ = ∂L/∂z `[B, F·OS²]`: writes ∂L/∂W, ∂L/∂b (when given) and
    /// ∂L/∂x (when asked).
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Scalar>(
        &self,
        batch: usize,
        x: &[T],
        w: &[T],
        d_z: &[T],
        scratch: &mut Conv2dScratch<T>,
        d_w: &mut [T],
        mut d_b: Option<&mut [T]>,
        mut d_x: Option<&mut [T]>,
    ) {
        let (ss, out, p, kk) = (
            self.side * self.side,
            self.out_len(),
            self.positions(),
            self.patch(),
        );
        d_w.fill(T::zero());
        if let Some(d_b) = d_b.as_deref_mut() {
            d_b.fill(T::zero());
        }
        for (b, (img, delta)) in x[..batch * ss]
            .chunks_exact(ss)
            .zip(d_z.chunks_exact(out))
            .enumerate()
        {
            // ∂L/∂W += δ[b]·P[b]
            self.im2col(img, &mut scratch.cols);
            matmul(self.filters, p, kk, delta, &scratch.cols, T::one(), d_w);
            if let Some(d_b) = d_b.as_deref_mut() {
                for (acc, df) in d_b.iter_mut().zip(delta.chunks_exact(p)) {
                    *acc += df.iter().copied().sum::<T>();
                }
            }
            if let Some(d_x) = d_x.as_deref_mut() {
                // ∂L/∂P[b] = δ[b]ᵀ·W, then each patch's gradient back to its pixels.
                matmul_at_b(p, self.filters, kk, delta, w, T::zero(), &mut scratch.d_cols);
                self.col2im(&scratch.d_cols, &mut d_x[b * ss..(b + 1) * ss]);
            }
        }
    }
}

/// Reference forward by direct loops: z\[b,f,oy,ox\] = b_f + Σ_{ky,kx} W\[f,ky,kx\]·x\[b,oy+ky,ox+kx\].
pub fn naive_forward<T: Scalar>(c: &Conv2d, batch: usize, x: &[T], w: &[T], bias: Option<&[T]>, z: &mut [T]) {
    let (s, k, os, f) = (c.side, c.kernel, c.out_side(), c.filters);
    for b in 0..batch {
        for fi in 0..f {
            for oy in 0..os {
                for ox in 0..os {
                    let mut acc = bias.map_or(T::zero(), |bb| bb[fi]);
                    for ky in 0..k {
                        for kx in 0..k {
                            acc += w[fi * k * k + ky * k + kx] * x[b * s * s + (oy + ky) * s + ox + kx];
                        }
                    }
                    z[((b * f + fi) * os + oy) * os + ox] = acc;
                }
            }
        }
    }
}

/// Reference backward by direct loops: ∂L/∂W, ∂L/∂b and ∂L/∂x from δ = ∂L/∂z.
#[allow(clippy::too_many_arguments)]
pub fn naive_backward<T: Scalar>(
    c: &Conv2d,
    batch: usize,
    x: &[T],
    w: &[T],
    d_z: &[T],
    d_w: &mut [T],
    d_b: &mut [T],
    d_x: &mut [T],
) {
    let (s, k, os, f) = (c.side, c.kernel, c.out_side(), c.filters);
    d_w.fill(T::zero());
    d_b.fill(T::zero());
    d_x.fill(T::zero());
    for b in 0..batch {
        for fi in 0..f {
            for oy in 0..os {
                for ox in 0..os {
                    let g = d_z[((b * f + fi) * os + oy) * os + ox];
                    d_b[fi] += g;
                    for ky in 0..k {
                        for kx in 0..k {
                            let xi = b * s * s + (oy + ky) * s + ox + kx;
                            d_w[fi * k * k + ky * k + kx] += g * x[xi];
                            d_x[xi] += g * w[fi * k * k + ky * k + kx];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, max_relative_error, numeric_gradient, random_vec};
    use crate::rng::Rng;

    fn check_against_naive<T: Scalar>(c: &Conv2d, batch: usize, rng: &mut Rng) {
        let x: Vec<T> = random_vec(batch * c.side * c.side, rng);
        let w: Vec<T> = random_vec(c.filters * c.patch(), rng);
        let bias: Vec<T> = random_vec(c.filters, rng);
        let mut scratch = c.scratch();
        let mut z = vec![T::zero(); batch * c.out_len()];
        c.forward(batch, &x, &w, Some(&bias), &mut scratch, &mut z);
        let mut want = vec![T::zero(); z.len()];
        naive_forward(c, batch, &x, &w, Some(&bias), &mut want);
        // Sums of K² ≤ 121 products of N(0,1) values.
        let close = |a: T, b: T, tol: f64| (a - b).abs() < T::of(tol) * (T::one() + b.abs());
        for (&a, &b) in z.iter().zip(&want) {
            assert!(close(a, b, 1e-4), "{c:?} B={batch}: {a:?} vs {b:?}");
        }
        let d_z: Vec<T> = random_vec(z.len(), rng);
        let zeros = |n| vec![T::zero(); n];
        let (mut d_w, mut d_b, mut d_x) = (zeros(w.len()), zeros(c.filters), zeros(x.len()));
        c.backward(
            batch,
            &x,
            &w,
            &d_z,
            &mut scratch,
            &mut d_w,
            Some(&mut d_b),
            Some(&mut d_x),
        );
        let (mut w_w, mut w_b, mut w_x) = (zeros(w.len()), zeros(c.filters), zeros(x.len()));
        naive_backward(c, batch, &x, &w, &d_z, &mut w_w, &mut w_b, &mut w_x);
        // ∂L/∂W sums B·OS² products: tolerance relative to that scale.
        let scale = ((batch * c.positions()) as f64).sqrt();
        for (&a, &b) in d_w.iter().zip(&w_w).chain(d_b.iter().zip(&w_b)) {
            assert!(close(a, b, 2e-5 * scale), "dW {c:?} B={batch}: {a:?} vs {b:?}");
        }
        for (&a, &b) in d_x.iter().zip(&w_x) {
            assert!(close(a, b, 1e-4), "dx {c:?} B={batch}: {a:?} vs {b:?}");
        }
    }

    /// im2col and the products against the direct loops, on every kernel size
    /// of the report, in f32 and f64.
    #[test]
    fn matches_the_seven_loops_on_all_report_shapes() {
        let mut rng = Rng::new(21, 0);
        for kernel in 3..=11 {
            for filters in [1, 3, 8] {
                let c = Conv2d {
                    side: 28,
                    kernel,
                    filters,
                };
                check_against_naive::<f32>(&c, 3, &mut rng);
                check_against_naive::<f64>(&c, 2, &mut rng);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let c = Conv2d {
            side: 6,
            kernel: 3,
            filters: 3,
        };
        let mut rng = Rng::new(22, 0);
        let batch = 2;
        let x: Vec<f64> = random_vec(batch * 36, &mut rng);
        let w: Vec<f64> = random_vec(c.filters * c.patch(), &mut rng);
        let b: Vec<f64> = random_vec(c.filters, &mut rng);
        let r: Vec<f64> = random_vec(batch * c.out_len(), &mut rng);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut z = vec![0.0; r.len()];
            c.forward(batch, x, w, Some(b), &mut c.scratch(), &mut z);
            z.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mut d_w, mut d_b, mut d_x) = (vec![0.0; w.len()], vec![0.0; b.len()], vec![0.0; x.len()]);
        c.backward(
            batch,
            &x,
            &w,
            &r,
            &mut c.scratch(),
            &mut d_w,
            Some(&mut d_b),
            Some(&mut d_x),
        );
        assert!(max_relative_error(&d_w, &numeric_gradient(&w, |v| loss(&x, v, &b))) < TOLERANCE);
        assert!(max_relative_error(&d_b, &numeric_gradient(&b, |v| loss(&x, &w, v))) < TOLERANCE);
        assert!(max_relative_error(&d_x, &numeric_gradient(&x, |v| loss(v, &w, &b))) < TOLERANCE);
    }
}
