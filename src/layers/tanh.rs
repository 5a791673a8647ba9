//! Hyperbolic tangent, applied in place.
//!
//! ```text
//! forward   A = tanh(Z)
//! backward  dZ = dA ⊙ (1 − A²)
//! ```
//! Backward needs only the output A, so forward overwrites Z with A.

use crate::linalg::Scalar;

/// Z ← tanh(Z).
pub fn forward<T: Scalar>(z_then_a: &mut [T]) {
    for v in z_then_a {
        *v = v.tanh();
    }
}

/// dA ← dA ⊙ (1 − A²), turning dA into dZ.
pub fn backward<T: Scalar>(a: &[T], d_a_then_d_z: &mut [T]) {
    for (g, &t) in d_a_then_d_z.iter_mut().zip(a) {
        *g *= T::one() - t * t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, max_relative_error, numeric_gradient, random_vec};
    use crate::rng::Rng;

    #[test]
    fn golden_and_gradient() {
        // tanh(1) = 0.7615941559557649 (closed form (e² − 1)/(e² + 1))
        let mut a = [1.0f64, 0.0, -1.0];
        forward(&mut a);
        assert!((a[0] - 0.761_594_155_955_764_9).abs() < 1e-15 && a[1] == 0.0 && (a[2] + a[0]).abs() < 1e-15);
        let mut rng = Rng::new(6, 0);
        let z: Vec<f64> = random_vec::<f64>(15, &mut rng).iter().map(|v| v * 2.0).collect();
        let r = random_vec::<f64>(15, &mut rng);
        let loss = |z: &[f64]| {
            let mut a = z.to_vec();
            forward(&mut a);
            a.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut a = z.clone();
        forward(&mut a);
        let mut d = r.clone();
        backward(&a, &mut d);
        assert!(max_relative_error(&d, &numeric_gradient(&z, loss)) < TOLERANCE);
    }
}
