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

    #[test]
    fn f32_forward_matches_f64_sigmoid_within_a_few_ulp() {
        // Every length's tail, a dense sweep of [−110, 110] and the extremes.
        let mut z: Vec<f32> = (0..=22_000).map(|i| (i as f32 - 11_000.0) * 0.01).collect();
        z.extend([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            88.7,
            -88.7,
            -103.0,
            -104.5,
            200.0,
            -200.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]);
        for len in [z.len(), 1, 15, 17] {
            let mut a = z[..len].to_vec();
            forward(&mut a);
            for (&zi, &ai) in z.iter().zip(&a) {
                let want = sigmoid(zi as f64);
                let err = (ai as f64 - want).abs();
                // 4 ulp relative, or the smallest subnormal where σ underflows.
                assert!(
                    err <= 4.0 * f32::EPSILON as f64 * want + 1.5e-45,
                    "σ({zi}) = {ai}, want {want}"
                );
            }
        }
        let mut nan = [f32::NAN; 3];
        forward(&mut nan);
        assert!(nan.iter().all(|v| v.is_nan()));
    }

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
