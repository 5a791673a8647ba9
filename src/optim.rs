//! Gradient descent over the flat parameter buffer (report, section 2.1 step 5):
//! θ ← θ − η · ∂L/∂θ for every parameter at once.

/// One SGD step.
pub fn sgd_step(params: &mut [f32], grads: &[f32], lr: f32) {
    assert_eq!(params.len(), grads.len());
    for (p, &g) in params.iter_mut().zip(grads) {
        *p -= lr * g;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hand_computed_step() {
        let mut p = [1.0f32, -2.0, 0.5];
        super::sgd_step(&mut p, &[0.5, -1.0, 0.0], 0.1);
        assert_eq!(p, [0.95, -1.9, 0.5]);
    }
}
