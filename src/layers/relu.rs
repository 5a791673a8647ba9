//! Rectified linear unit.
//!
//! ```text
//! forward   H = max(Z, 0)
//! backward  dZ = dH ⊙ 1[Z > 0]
//! ```
//! Backward needs the sign of Z, which H keeps (H > 0 exactly where Z > 0),
//! so forward may overwrite Z with H.

use crate::linalg::{Scalar, relu_mask};

/// Z ← max(Z, 0).
pub fn forward<T: Scalar>(z_then_h: &mut [T]) {
    for v in z_then_h {
        // A select rather than a branch, so the loop vectorises.
        *v = if *v < T::zero() { T::zero() } else { *v };
    }
}

/// dH ← dH ⊙ 1\[H > 0\], turning dH into dZ.
pub fn backward<T: Scalar>(h: &[T], d_h_then_d_z: &mut [T]) {
    for (g, &h) in d_h_then_d_z.iter_mut().zip(h) {
        *g = relu_mask(h, *g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, max_relative_error, numeric_gradient, random_vec};
    use crate::rng::Rng;

    #[test]
    fn golden_and_gradient() {
        let mut h = [-1.0f64, 0.0, 2.0];
        forward(&mut h);
        assert_eq!(h, [0.0, 0.0, 2.0]);
        let mut d = [5.0, 5.0, 5.0];
        backward(&h, &mut d);
        assert_eq!(d, [0.0, 0.0, 5.0]);

        let mut rng = Rng::new(3, 0);
        // Keep inputs away from the kink at 0, where the derivative is undefined.
        let z: Vec<f64> = random_vec::<f64>(20, &mut rng)
            .iter()
            .map(|v| if v.abs() < 0.1 { v + 0.3 } else { *v })
            .collect();
        let r = random_vec(20, &mut rng);
        let loss = |z: &[f64]| {
            let mut h = z.to_vec();
            forward(&mut h);
            h.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut h = z.clone();
        forward(&mut h);
        let mut d = r.clone();
        backward(&h, &mut d);
        assert!(max_relative_error(&d, &numeric_gradient(&z, loss)) < TOLERANCE);
    }
}
