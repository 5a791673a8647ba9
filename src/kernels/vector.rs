//! The two vector loops of the engine's steps: y ← y + a·x and Σ aᵢ·bᵢ.
//! The portable versions are plain loops; the AVX2 versions are the same
//! loops compiled for AVX2 (8 floats a step) with the same operations (no
//! fused multiply-add), so every level gives the same bits (tested below).

/// y ← y + a·x.
#[inline(always)]
pub fn axpy_portable(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Σ aᵢ·bᵢ, summed in eight interleaved partial sums (a fixed order), then
/// the tail.
#[inline(always)]
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&x, &y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().copied().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    /// [`super::axpy_portable`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        super::axpy_portable(y, a, x)
    }

    /// [`super::dot_portable`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_portable(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Kernels;
    use crate::linalg::random_vec;
    use crate::rng::Rng;

    #[test]
    fn every_level_gives_the_portable_bits() {
        let mut rng = Rng::new(13, 0);
        for k in Kernels::available() {
            for n in [0, 1, 7, 8, 9, 610, 1000] {
                let a: Vec<f32> = random_vec(n, &mut rng);
                let b: Vec<f32> = random_vec(n, &mut rng);
                assert_eq!((k.dot)(&a, &b).to_bits(), dot_portable(&a, &b).to_bits(), "{k:?}");
                let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
                assert!(((k.dot)(&a, &b) as f64 - want).abs() < 1e-4 * (n as f64).sqrt().max(1.0));
                let (mut y1, mut y2) = (b.clone(), b.clone());
                (k.axpy)(&mut y1, 0.37, &a);
                axpy_portable(&mut y2, 0.37, &a);
                assert_eq!(y1, y2, "{k:?}");
            }
        }
    }
}
