//! Softmax and cross-entropy, fused.
//!
//! For one sample with logits z ∈ ℝᶜ and true class t:
//! ```text
//! forward   ŷ = softmax(z),  ŷ_i = e^(z_i − m) / Σ_j e^(z_j − m),   m = max_j z_j
//!           L = −log ŷ_t = log Σ_j e^(z_j − m) + m − z_t             (log-sum-exp: no overflow)
//! backward  ∂L/∂z = ŷ − y                                             (y = one-hot of t)
//! ```
//! Over a batch of B samples the loss is summed or averaged ([`Reduction`]);
//! the gradient is scaled by 1 or 1/B to match. The report's MLP sums (its
//! formulas carry no 1/B); its CNN code averages (`d_logits = (pred − y)/B`).

use crate::linalg::Scalar;

/// How per-sample losses (and so gradients) are combined over a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// L = Σ_b L_b, ∂L/∂z_b = ŷ_b − y_b
    Sum,
    /// L = (1/B) Σ_b L_b, ∂L/∂z_b = (ŷ_b − y_b)/B
    Mean,
}

impl Reduction {
    /// The factor on ŷ − y for a batch of `batch` samples: 1 or 1/B.
    pub fn scale(self, batch: usize) -> f64 {
        match self {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / batch as f64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
        }
    }
}

/// What one batch scored.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchScore {
    /// Σ_b L_b (always the sum, whatever the reduction).
    pub loss_sum: f64,
    /// Samples whose largest logit is the true class.
    pub correct: usize,
}

/// The index of the largest value (the first one on ties).
pub fn argmax<T: Scalar>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Forward and backward at once: scores the batch and writes ∂L/∂z into `d_logits`.
pub fn forward_backward<T: Scalar>(
    logits: &[T],
    labels: &[u8],
    reduction: Reduction,
    d_logits: &mut [T],
) -> BatchScore {
    forward_backward_scaled(logits, labels, T::of(reduction.scale(labels.len())), d_logits)
}

/// [`forward_backward`] for part of a batch: ∂L/∂z = (ŷ − y)·`scale`, where the
/// scale is the whole batch's ([`Reduction::scale`]).
pub fn forward_backward_scaled<T: Scalar>(
    logits: &[T],
    labels: &[u8],
    scale: T,
    d_logits: &mut [T],
) -> BatchScore {
    let batch = labels.len();
    let classes = logits.len() / batch.max(1);
    let mut score = BatchScore::default();
    for ((z, d), &t) in logits
        .chunks_exact(classes)
        .zip(d_logits.chunks_exact_mut(classes))
        .zip(labels)
    {
        let t = t as usize;
        let m = z[argmax(z)];
        let mut sum = T::zero();
        for (di, &zi) in d.iter_mut().zip(z) {
            *di = (zi - m).exp();
            sum += *di;
        }
        score.loss_sum += (sum.ln() + m - z[t]).to_f64().unwrap_or(f64::NAN);
        if argmax(z) == t {
            score.correct += 1;
        }
        let inv = T::one() / sum;
        for (i, di) in d.iter_mut().enumerate() {
            let y = if i == t { T::one() } else { T::zero() };
            *di = (*di * inv - y) * scale;
        }
    }
    score
}

/// Forward only: the score of a batch (for evaluation).
pub fn score<T: Scalar>(logits: &[T], labels: &[u8]) -> BatchScore {
    let classes = logits.len() / labels.len().max(1);
    let mut score = BatchScore::default();
    for (z, &t) in logits.chunks_exact(classes).zip(labels) {
        let m = z[argmax(z)];
        let sum: T = z.iter().map(|&zi| (zi - m).exp()).sum();
        score.loss_sum += (sum.ln() + m - z[t as usize]).to_f64().unwrap_or(f64::NAN);
        if argmax(z) == t as usize {
            score.correct += 1;
        }
    }
    score
}

/// softmax(z) of each row, into `probs`.
pub fn softmax<T: Scalar>(logits: &[T], classes: usize, probs: &mut [T]) {
    for (z, p) in logits.chunks_exact(classes).zip(probs.chunks_exact_mut(classes)) {
        let m = z[argmax(z)];
        let mut sum = T::zero();
        for (pi, &zi) in p.iter_mut().zip(z) {
            *pi = (zi - m).exp();
            sum += *pi;
        }
        for pi in p.iter_mut() {
            *pi = *pi / sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{TOLERANCE, max_relative_error, numeric_gradient, random_vec};
    use crate::rng::Rng;

    #[test]
    fn golden_uniform_logits_and_extremes() {
        // Equal logits: ŷ = 1/C, L = ln C, ∂L/∂z = 1/C − y.
        let z = [0.0f64; 10];
        let mut d = [0.0; 10];
        let s = forward_backward(&z, &[3], Reduction::Sum, &mut d);
        assert!((s.loss_sum - 10f64.ln()).abs() < 1e-12);
        assert!((d[3] - (0.1 - 1.0)).abs() < 1e-12 && (d[0] - 0.1).abs() < 1e-12);
        // Huge logits do not overflow.
        let z = [1000.0f32, -1000.0, 0.0];
        let mut d = [0.0f32; 3];
        let s = forward_backward(&z, &[1], Reduction::Sum, &mut d);
        assert!((s.loss_sum - 2000.0).abs() < 1e-3, "{}", s.loss_sum);
        assert_eq!(s.correct, 0);
        assert!(d.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn gradient_matches_finite_differences_for_both_reductions() {
        let mut rng = Rng::new(4, 0);
        let (batch, classes) = (5, 10);
        let z: Vec<f64> = random_vec::<f64>(batch * classes, &mut rng)
            .iter()
            .map(|v| v * 2.0)
            .collect();
        let labels = [0u8, 3, 9, 3, 7];
        for reduction in [Reduction::Sum, Reduction::Mean] {
            let div = if reduction == Reduction::Mean {
                batch as f64
            } else {
                1.0
            };
            let loss = |z: &[f64]| score(z, &labels).loss_sum / div;
            let mut d = vec![0.0; z.len()];
            let s = forward_backward(&z, &labels, reduction, &mut d);
            assert!((s.loss_sum - score(&z, &labels).loss_sum).abs() < 1e-12);
            let err = max_relative_error(&d, &numeric_gradient(&z, loss));
            assert!(err < TOLERANCE, "{reduction:?}: {err:e}");
        }
    }
}
