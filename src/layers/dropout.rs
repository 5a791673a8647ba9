//! Inverted dropout (Srivastava et al., 2014), used only while training.
//!
//! ```text
//! forward   m_i = 1[u_i ≥ p] / (1 − p),  u_i ~ U[0, 1)     Y = X ⊙ m
//! backward  dX = dY ⊙ m
//! ```
//! Each kept unit is scaled by 1/(1 − p), so E\[Y\] = X and evaluation uses the
//! network unchanged (no mask, no rescaling).
//!
//! The mask of a sample is drawn from its own generator, keyed by the run's
//! seed, the global step and the sample's index in the training set: it does
//! not depend on how a batch is cut into shards or on the thread count, and a
//! resumed run draws the same masks as an uninterrupted one.

use crate::linalg::Scalar;
use crate::rng::Rng;

/// PRNG stream of the dropout masks (see [`crate::train`] for the others).
pub const DROPOUT_STREAM: u64 = 3;

/// What a training forward pass needs to draw its dropout masks.
#[derive(Clone, Copy, Debug)]
pub struct Noise<'a> {
    /// Probability p of dropping a unit, in [0, 1).
    pub rate: f32,
    pub seed: u64,
    /// The global step (batch number since the start of training).
    pub step: u64,
    /// Index in the training set of each row of the batch.
    pub ids: &'a [u32],
}

/// m for `mask` `[rows, width]`: row r is the mask of sample `noise.ids[r]`.
pub fn draw_mask<T: Scalar>(mask: &mut [T], width: usize, noise: &Noise) {
    let rows = mask.len() / width;
    assert!(noise.ids.len() >= rows, "dropout: one index per row");
    let rate = noise.rate as f64;
    // u ≥ p on 32 random bits: keep when the word is at least p·2³².
    let threshold = (rate * 4_294_967_296.0) as u64;
    let keep = T::of(1.0 / (1.0 - rate));
    for (row, &id) in mask.chunks_exact_mut(width).zip(noise.ids) {
        let mut rng = Rng::keyed(noise.seed, &[DROPOUT_STREAM, noise.step, id as u64]);
        for pair in row.chunks_mut(2) {
            let r = rng.next_u64();
            for (k, m) in pair.iter_mut().enumerate() {
                let word = (r >> (32 * k)) & 0xFFFF_FFFF;
                *m = if word >= threshold { keep } else { T::zero() };
            }
        }
    }
}

/// Y = X ⊙ m.
pub fn apply_mask<T: Scalar>(x: &[T], mask: &[T], y: &mut [T]) {
    for ((o, &v), &m) in y.iter_mut().zip(x).zip(mask) {
        *o = v * m;
    }
}

/// The mask of the last training forward and the masked activations.
pub struct Dropout<T> {
    mask: Vec<T>,
    out: Vec<T>,
    active: bool,
}

impl<T: Scalar> Dropout<T> {
    /// Buffers for up to `len` activations (batch × width).
    pub fn new(len: usize) -> Self {
        Dropout {
            mask: vec![T::zero(); len],
            out: vec![T::zero(); len],
            active: false,
        }
    }

    /// Y = X ⊙ m for `x` `[rows, width]` when `noise` asks for dropout, else X
    /// itself. Returns what the next layer should read.
    pub fn forward<'a>(&'a mut self, x: &'a [T], width: usize, noise: Option<&Noise>) -> &'a [T] {
        self.active = false;
        let Some(noise) = noise.filter(|n| n.rate > 0.0) else {
            return x;
        };
        let mask = &mut self.mask[..x.len()];
        draw_mask(mask, width, noise);
        let out = &mut self.out[..x.len()];
        apply_mask(x, mask, out);
        self.active = true;
        out
    }

    /// Whether the last forward dropped anything (its output is X ⊙ m, not X).
    pub fn active(&self) -> bool {
        self.active
    }

    /// The layer's output of the last forward: the masked activations, or `x`
    /// itself when nothing was dropped.
    pub fn output<'a>(&'a self, x: &'a [T]) -> &'a [T] {
        if self.active { &self.out[..x.len()] } else { x }
    }

    /// dY ← dY ⊙ m, turning dY into dX (nothing when the forward dropped nothing).
    pub fn backward(&self, d_y_then_d_x: &mut [T]) {
        if self.active {
            for (g, &m) in d_y_then_d_x.iter_mut().zip(&self.mask) {
                *g *= m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(rate: f32, ids: &[u32]) -> Noise<'_> {
        Noise {
            rate,
            seed: 9,
            step: 4,
            ids,
        }
    }

    #[test]
    fn keeps_about_one_minus_p_and_scales_them() {
        let ids: Vec<u32> = (0..50).collect();
        let x = vec![2.0f64; 50 * 200];
        let mut d = Dropout::new(x.len());
        let y = d.forward(&x, 200, Some(&noise(0.3, &ids))).to_vec();
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / y.len() as f64;
        assert!((kept - 0.7).abs() < 0.02, "kept {kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 2.0 / 0.7).abs() < 1e-6));
        // Backward multiplies by the same mask: the gradient of Σ Y is m.
        let mut g = vec![1.0; x.len()];
        d.backward(&mut g);
        for (gi, yi) in g.iter().zip(&y) {
            assert_eq!(*gi * 2.0, *yi);
        }
    }

    #[test]
    fn mask_depends_on_sample_step_and_seed_not_on_batch_position() {
        let x = vec![1.0f32; 2 * 64];
        let mut d = Dropout::new(x.len());
        let both = d.forward(&x, 64, Some(&noise(0.5, &[11, 12]))).to_vec();
        // The same sample alone, or at another row, gets the same mask.
        let alone = d.forward(&x[..64], 64, Some(&noise(0.5, &[12]))).to_vec();
        assert_eq!(alone, both[64..]);
        let swapped = d.forward(&x, 64, Some(&noise(0.5, &[12, 11]))).to_vec();
        assert_eq!(swapped[..64], both[64..]);
        let mut other_step = noise(0.5, &[11, 12]);
        other_step.step += 1;
        assert_ne!(d.forward(&x, 64, Some(&other_step)), &both[..]);
    }

    #[test]
    fn inactive_without_noise_or_at_rate_zero() {
        let x = vec![1.5f32; 8];
        let mut d = Dropout::new(8);
        assert_eq!(d.forward(&x, 4, None), &x[..]);
        assert_eq!(d.forward(&x, 4, Some(&noise(0.0, &[1, 2]))), &x[..]);
        let mut g = vec![3.0f32; 8];
        d.backward(&mut g);
        assert_eq!(g, vec![3.0; 8]);
    }
}
