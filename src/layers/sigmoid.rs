//! Logistic sigmoid, applied in place.
//!
//! ```text
//! forward   A = σ(Z) = 1 / (1 + e^(−Z))      computed as e^Z / (1 + e^Z) for Z < 0,
//!                                            so no e^(+large) is ever formed
//! backward  dZ = dA ⊙ σ(Z) ⊙ (1 − σ(Z)) = dA ⊙ A ⊙ (1 − A)
//! ```
//! Backward needs only the output A, so forward overwrites Z with A.

use crate::linalg::Scalar;

/// σ(z), stable for large |z|.
pub fn sigmoid<T: Scalar>(z: T) -> T {
    if z >= T::zero() {
        T::one() / (T::one() + (-z).exp())
    } else {
        let e = z.exp();
        e / (T::one() + e)
    }
}

/// Z ← σ(Z).
pub fn forward<T: Scalar>(z_then_a: &mut [T]) {
    for z in z_then_a {
        *z = sigmoid(*z);
    }
}

/// dA ← dA ⊙ A ⊙ (1 − A), turning dA into dZ.
pub fn backward<T: Scalar>(a: &[T], d_a_then_d_z: &mut [T]) {
    for (g, &s) in d_a_then_d_z.iter_mut().zip(a) {
        *g *= s * (T::one() - s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, max_relative_error, numeric_gradient};
    use crate::linalg::random_vec;
    use crate::rng::Rng;

    #[test]
    fn stable_at_extremes_and_golden_values() {
        assert_eq!(sigmoid(0.0f32), 0.5);
        assert_eq!(sigmoid(1000.0f32), 1.0);
        assert_eq!(sigmoid(-1000.0f32), 0.0);
        assert!(sigmoid(-100.0f32) > 0.0 && sigmoid(-100.0f32).is_finite());
        // σ(2) = 1/(1+e^-2) = 0.8807970779778823 (closed form)
        assert!((sigmoid(2.0f64) - 0.880_797_077_977_882_3).abs() < 1e-15);
        assert!((sigmoid(-2.0f64) - (1.0 - 0.880_797_077_977_882_3)).abs() < 1e-15);
    }

    // The f32 slice is checked within 4 ulp of the f64 sigmoid as the
    // portable kernel (`kernels::sigmoid`), which `engine::tests` proves to
    // be this function bit for bit.

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(2, 0);
        let z: Vec<f64> = random_vec::<f64>(12, &mut rng).iter().map(|v| v * 3.0).collect();
        let r = random_vec(12, &mut rng);
        let loss = |z: &[f64]| {
            let mut a = z.to_vec();
            forward(&mut a);
            a.iter().zip(&r).map(|(a, r)| a * r).sum::<f64>()
        };
        let mut a = z.clone();
        forward(&mut a);
        let mut d = r.clone();
        backward(&a, &mut d);
        assert!(max_relative_error(&d, &numeric_gradient(&z, loss)) < TOLERANCE);
    }
}
