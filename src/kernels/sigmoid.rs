//! σ(z) = 1/(1 + e^(−z)) over a slice, in place. The portable kernel is the
//! textbook's formula (`layers::sigmoid`, its twin, tested bit for bit
//! against it in `engine`); the AVX-512, AVX2 and NEON kernels evaluate e^x
//! by a polynomial and are tested within 4 ulp of the f64 sigmoid below.

/// σ(z), stable for large |z|: e^z / (1 + e^z) for z < 0, so no e^(+large)
/// is ever formed.
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// z ← σ(z) for every value, one at a time.
pub fn sigmoid_portable(z: &mut [f32]) {
    for v in z {
        *v = sigmoid(*v);
    }
}

#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use std::arch::x86_64::*;

    /// z ← σ(z) = 1/(1 + e^(−z)), sixteen values at a time, computed as e/(1 + e)
    /// with e = e^(−|z|) for z < 0 so that no e^(+large) is formed (as the
    /// portable [`super::sigmoid`]). e^x for x ≤ 0 is Cephes'
    /// `expf`: x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-7 polynomial for e^r
    /// and an exact scaling by 2ⁿ, within 2 ulp of e^x; NaN stays NaN.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sigmoid(z: &mut [f32]) {
        let one = _mm512_set1_ps(1.0);
        let mut chunks = z.chunks_exact_mut(16);
        for c in &mut chunks {
            // SAFETY: c holds 16 values.
            unsafe { _mm512_storeu_ps(c.as_mut_ptr(), sigmoid16(_mm512_loadu_ps(c.as_ptr()), one)) };
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mask = ((1u32 << rest.len()) - 1) as __mmask16;
            // SAFETY: the mask covers exactly the rest.len() values of `rest`.
            unsafe {
                let v = _mm512_maskz_loadu_ps(mask, rest.as_ptr());
                _mm512_mask_storeu_ps(rest.as_mut_ptr(), mask, sigmoid16(v, one));
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    fn sigmoid16(z: __m512, one: __m512) -> __m512 {
        // −|z|, clamped below where e^x underflows to 0 anyway (max keeps a NaN z).
        let neg = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(z),
            _mm512_set1_epi32(i32::MIN),
        ));
        let x = _mm512_max_ps(_mm512_set1_ps(-104.0), neg);
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, one));
        let e = _mm512_scalef_ps(p, n);
        // σ(z) = 1/(1 + e) for z ≥ 0, e/(1 + e) otherwise.
        let positive = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(z, _mm512_setzero_ps());
        let num = _mm512_mask_blend_ps(positive, e, one);
        _mm512_div_ps(num, _mm512_add_ps(one, e))
    }
}

/// σ for AVX2 with FMA, eight values at a time: the polynomial of the
/// AVX-512 kernel, with 2ⁿ built from its exponent bits in two halves (so
/// that results below the smallest normal float come out as subnormals).
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use std::arch::x86_64::*;

    /// z ← σ(z), eight values at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sigmoid(z: &mut [f32]) {
        let mut chunks = z.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: c holds 8 values.
            unsafe { _mm256_storeu_ps(c.as_mut_ptr(), sigmoid8(_mm256_loadu_ps(c.as_ptr()))) };
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut buf = [0.0f32; 8];
            buf[..rest.len()].copy_from_slice(rest);
            // SAFETY: buf holds 8 values.
            unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), sigmoid8(_mm256_loadu_ps(buf.as_ptr()))) };
            let n = rest.len();
            rest.copy_from_slice(&buf[..n]);
        }
    }

    /// 2ⁿ for whole n in [−150, 0], as the product of two normal powers of two.
    #[target_feature(enable = "avx2,fma")]
    fn exp2i(n: __m256) -> __m256 {
        let ni = _mm256_cvtps_epi32(n);
        let half = _mm256_srai_epi32::<1>(ni);
        let rest = _mm256_sub_epi32(ni, half);
        let pow = |e: __m256i| {
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                e,
                _mm256_set1_epi32(127),
            )))
        };
        _mm256_mul_ps(pow(half), pow(rest))
    }

    #[target_feature(enable = "avx2,fma")]
    fn sigmoid8(z: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        // −|z|, clamped below where e^x underflows to 0 anyway (max keeps a NaN z).
        let neg = _mm256_or_ps(z, _mm256_set1_ps(-0.0));
        let x = _mm256_max_ps(_mm256_set1_ps(-104.0), neg);
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, one));
        // A NaN z: n is NaN, and so is e (p is).
        let e = _mm256_mul_ps(p, exp2i(n));
        // σ(z) = 1/(1 + e) for z ≥ 0, e/(1 + e) otherwise.
        let positive = _mm256_cmp_ps::<_CMP_GE_OQ>(z, _mm256_setzero_ps());
        let num = _mm256_blendv_ps(e, one, positive);
        _mm256_div_ps(num, _mm256_add_ps(one, e))
    }
}

/// σ for aarch64 NEON, four values at a time: the polynomial and the
/// two-half 2ⁿ of the AVX2 kernel.
#[cfg(target_arch = "aarch64")]
pub mod neon {
    use std::arch::aarch64::*;

    /// z ← σ(z), four values at a time.
    ///
    /// # Safety
    /// The CPU must support NEON (every aarch64 CPU does).
    #[target_feature(enable = "neon")]
    pub unsafe fn sigmoid(z: &mut [f32]) {
        let mut chunks = z.chunks_exact_mut(4);
        for c in &mut chunks {
            // SAFETY: c holds 4 values.
            unsafe { vst1q_f32(c.as_mut_ptr(), sigmoid4(vld1q_f32(c.as_ptr()))) };
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut buf = [0.0f32; 4];
            buf[..rest.len()].copy_from_slice(rest);
            // SAFETY: buf holds 4 values.
            unsafe { vst1q_f32(buf.as_mut_ptr(), sigmoid4(vld1q_f32(buf.as_ptr()))) };
            let n = rest.len();
            rest.copy_from_slice(&buf[..n]);
        }
    }

    /// 2ⁿ for whole n in [−150, 0], as the product of two normal powers of two.
    #[target_feature(enable = "neon")]
    fn exp2i(n: float32x4_t) -> float32x4_t {
        let ni = vcvtnq_s32_f32(n);
        let half = vshrq_n_s32::<1>(ni);
        let rest = vsubq_s32(ni, half);
        let pow = |e: int32x4_t| vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(e, vdupq_n_s32(127))));
        vmulq_f32(pow(half), pow(rest))
    }

    #[target_feature(enable = "neon")]
    fn sigmoid4(z: float32x4_t) -> float32x4_t {
        let one = vdupq_n_f32(1.0);
        // −|z|, clamped below where e^x underflows to 0 anyway (a NaN z stays NaN:
        // vmaxq_f32 returns NaN when either input is).
        let neg = vnegq_f32(vabsq_f32(z));
        let x = vmaxq_f32(vdupq_n_f32(-104.0), neg);
        let n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(std::f32::consts::LOG2_E)));
        let r = vfmsq_f32(x, n, vdupq_n_f32(0.693_359_4));
        let r = vfmsq_f32(r, n, vdupq_n_f32(-2.121_944_4e-4));
        let mut p = vdupq_n_f32(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
            p = vfmaq_f32(vdupq_n_f32(c), p, r);
        }
        let p = vfmaq_f32(vaddq_f32(r, one), p, vmulq_f32(r, r));
        let e = vmulq_f32(p, exp2i(n));
        // σ(z) = 1/(1 + e) for z ≥ 0, e/(1 + e) otherwise.
        let positive = vcgeq_f32(z, vdupq_n_f32(0.0));
        let num = vbslq_f32(positive, one, e);
        vdivq_f32(num, vaddq_f32(one, e))
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::Kernels;

    fn sigmoid_f64(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    #[test]
    fn every_level_is_within_a_few_ulp_of_the_f64_sigmoid() {
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
        for k in Kernels::available() {
            for len in [z.len(), 1, 15, 17] {
                let mut a = z[..len].to_vec();
                (k.sigmoid)(&mut a);
                for (&zi, &ai) in z.iter().zip(&a) {
                    let want = sigmoid_f64(zi as f64);
                    let err = (ai as f64 - want).abs();
                    // 4 ulp relative, or the smallest subnormal where σ underflows.
                    assert!(
                        err <= 4.0 * f32::EPSILON as f64 * want + 1.5e-45,
                        "{k:?}: σ({zi}) = {ai}, want {want}"
                    );
                }
            }
            let mut nan = [f32::NAN; 3];
            (k.sigmoid)(&mut nan);
            assert!(nan.iter().all(|v| v.is_nan()), "{k:?}");
        }
    }
}
