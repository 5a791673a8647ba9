//! The vector loops of the engine's steps: y ← y + a·x, Σ aᵢ·bᵢ, and
//! y = Σ_t a_t·x_t (many y ← y + a·x at once, in registers).
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
/// Outputs per block of [`combine_portable`] (kept in registers).
const COMBINE_BLOCK: usize = 32;

/// y\[i\] = Σ_t a\[t·a_stride\]·x\[t·ld + i\] for t < terms, from +0 and in
/// order of t, each product rounded and then added: the bits of `y.fill(0)`
/// followed by [`axpy_portable`] for each term, with y in registers.
#[inline(always)]
pub fn combine_portable(y: &mut [f32], terms: usize, a: &[f32], a_stride: usize, x: &[f32], ld: usize) {
    let n = y.len();
    assert!(
        terms == 0 || a.len() > (terms - 1) * a_stride,
        "combine: {} coefficients",
        a.len()
    );
    assert!(
        terms == 0 || n == 0 || x.len() >= (terms - 1) * ld + n,
        "combine: {} values",
        x.len()
    );
    for (block, out) in y.chunks_mut(COMBINE_BLOCK).enumerate() {
        let (j0, len) = (block * COMBINE_BLOCK, out.len());
        let mut acc = [0.0f32; COMBINE_BLOCK];
        for t in 0..terms {
            let g = a[t * a_stride];
            for (acc, &xi) in acc.iter_mut().zip(&x[t * ld + j0..t * ld + j0 + len]) {
                *acc += g * xi;
            }
        }
        out.copy_from_slice(&acc[..len]);
    }
}

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

    /// [`super::combine_portable`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn combine(y: &mut [f32], terms: usize, a: &[f32], a_stride: usize, x: &[f32], ld: usize) {
        super::combine_portable(y, terms, a, a_stride, x, ld)
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
                // combine: the bits of a zeroed y and one axpy per term.
                let (terms, ld) = (5, n + 3);
                let x: Vec<f32> = random_vec(terms * ld, &mut rng);
                let coef: Vec<f32> = random_vec(terms * 2, &mut rng);
                let mut want = vec![0.0f32; n];
                for t in 0..terms {
                    axpy_portable(&mut want, coef[t * 2], &x[t * ld..t * ld + n]);
                }
                let mut got = vec![f32::NAN; n];
                (k.combine)(&mut got, terms, &coef, 2, &x, ld);
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{k:?}"
                );
                let (mut y1, mut y2) = (b.clone(), b.clone());
                (k.axpy)(&mut y1, 0.37, &a);
                axpy_portable(&mut y2, 0.37, &a);
                assert_eq!(y1, y2, "{k:?}");
            }
        }
    }
}
