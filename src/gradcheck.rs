//! Finite-difference gradient checking in f64.
//!
//! The analytic gradient g of a scalar function f is compared with the central
//! difference (f(θ + εeᵢ) − f(θ − εeᵢ)) / 2ε for every coordinate i.
//! The relative error of a pair is |g − n| / max(|g| + |n|, [`SCALE_FLOOR`]·maxⱼ|nⱼ|, [`FLOOR`]):
//! relative to the pair itself, except that coordinates far smaller than the
//! tensor's largest gradient are measured against that scale (their finite
//! differences carry the same absolute noise, ~1e-10, as the rest).

use crate::rng::Rng;

/// Step of the central difference. With f64, truncation error is O(ε²·f‴) ≈ 1e-10
/// and cancellation error is O(|f|·δ/ε) ≈ |f|·1e-16/1e-5 = |f|·1e-11.
pub const EPSILON: f64 = 1e-5;

/// Relative errors are measured against max(|g| + |n|, FLOOR), so that
/// coordinates whose true gradient is ~0 do not divide by ~0.
pub const FLOOR: f64 = 1e-7;

/// Coordinates are compared at no finer scale than this fraction of the tensor's
/// largest numeric gradient.
pub const SCALE_FLOOR: f64 = 1e-3;

/// Pass threshold for max relative error. Correct gradients measure ~1e-9 or
/// below in f64 (errors above are O(1e-10)/|g|); any real mistake (missing
/// factor, wrong sign, wrong index) gives errors of order 1e-2 to 1.
pub const TOLERANCE: f64 = 1e-6;

/// Central-difference gradient of `f` at `theta`.
pub fn numeric_gradient(theta: &[f64], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut x = theta.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + EPSILON;
            let plus = f(&x);
            x[i] = orig - EPSILON;
            let minus = f(&x);
            x[i] = orig;
            (plus - minus) / (2.0 * EPSILON)
        })
        .collect()
}

/// maxᵢ |aᵢ − nᵢ| / max(|aᵢ| + |nᵢ|, SCALE_FLOOR·maxⱼ|nⱼ|, FLOOR)
pub fn max_relative_error(analytic: &[f64], numeric: &[f64]) -> f64 {
    assert_eq!(analytic.len(), numeric.len());
    let scale = numeric.iter().fold(0.0f64, |m, n| m.max(n.abs())) * SCALE_FLOOR;
    analytic
        .iter()
        .zip(numeric)
        .map(|(a, n)| (a - n).abs() / (a.abs() + n.abs()).max(scale).max(FLOOR))
        .fold(0.0, f64::max)
}

pub use crate::linalg::random_vec;

/// Checks every parameter gradient of `net` on a random batch: returns, per
/// tensor of its layout, the name and the max relative error between the
/// back-propagated gradient of the softmax cross-entropy loss and its central
/// finite difference. Biases are set to random values so they are exercised
/// away from zero.
pub fn check_network<N: crate::models::Network<f64>>(
    net: &N,
    batch: usize,
    reduction: crate::layers::softmax_ce::Reduction,
    seed: u64,
) -> Vec<(String, f64)> {
    check_network_with_dropout(net, batch, reduction, seed, 0.0)
}

/// [`check_network`] for a training pass with dropout at `rate`: the masks are
/// fixed by the seed, step and sample indices, so the loss stays a smooth
/// function of the parameters and the same finite differences apply.
pub fn check_network_with_dropout<N: crate::models::Network<f64>>(
    net: &N,
    batch: usize,
    reduction: crate::layers::softmax_ce::Reduction,
    seed: u64,
    rate: f32,
) -> Vec<(String, f64)> {
    use crate::layers::softmax_ce::{Reduction, forward_backward, score};
    let ids: Vec<u32> = (0..batch as u32).collect();
    let noise = crate::models::Noise {
        rate,
        seed,
        step: 1,
        ids: &ids,
    };
    let mut rng = Rng::new(seed, 0);
    let x: Vec<f64> = random_vec(batch * net.input_dim(), &mut rng);
    let labels: Vec<u8> = (0..batch)
        .map(|_| rng.below(net.classes() as u64) as u8)
        .collect();
    let layout = net.layout();
    let mut params = vec![0.0f64; layout.len()];
    net.init(&mut params, &mut rng);
    for (spec, r) in layout.ranges() {
        if spec.shape.len() == 1 {
            params[r].iter_mut().for_each(|v| *v = 0.3 * rng.normal());
        }
    }
    let div = match reduction {
        Reduction::Sum => 1.0,
        Reduction::Mean => batch as f64,
    };
    let mut ws = net.workspace(batch);
    let logits = net
        .forward_with(&params, &x, batch, Some(&noise), &mut ws)
        .to_vec();
    let mut d_logits = vec![0.0; logits.len()];
    forward_backward(&logits, &labels, reduction, &mut d_logits);
    let mut grads = vec![0.0; params.len()];
    net.backward(&params, &x, batch, &d_logits, &mut ws, &mut grads);
    let mut ws2 = net.workspace(batch);
    let numeric = numeric_gradient(&params, |p| {
        score(net.forward_with(p, &x, batch, Some(&noise), &mut ws2), &labels).loss_sum / div
    });
    layout
        .ranges()
        .map(|(spec, r)| {
            (
                spec.name.clone(),
                max_relative_error(&grads[r.clone()], &numeric[r]),
            )
        })
        .collect()
}
