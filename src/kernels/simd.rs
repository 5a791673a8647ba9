//! Sixteen f32 lanes as one type, for the kernels written once for every
//! level (`conv::simd`): one AVX-512 register, two AVX2 registers, or four
//! NEON registers.
//!
//! The convolution kernels work on 16 positions at a time and keep their ∂W
//! partial sums in 16 lanes (`conv::LANES`). Written over [`F32x16`], the
//! same body serves every width: each lane's sums run in the same order with
//! the same fused multiply-adds at every level, so the levels give the same
//! bits, and a level differs only in its register blocks (how many filters,
//! taps or vectors one block holds), which its own file picks for its
//! register count. A small trait of our own rather than a crate: the kernels
//! need masked loads and stores, a compress store and ReLU's exact
//! semantics, about a dozen operations, each a line or two per level.
//!
//! Every method is `#[inline(always)]` and is only ever inlined into a
//! function compiled with its level's target features (`#[target_feature]`
//! on the level's entry points), where the intrinsics inline in turn.

/// Sixteen f32 lanes and the operations the kernels use on them.
///
/// # Safety
/// Every method is `unsafe`: it must run inside a function with the level's
/// target features, on a CPU that has them, and pointers must be valid for
/// the lanes the method reads or writes (masked-off lanes are never touched).
pub trait F32x16: Copy {
    /// A lane mask in the level's own form, built once from 16 bits.
    type Mask: Copy;
    /// # Safety
    /// See the trait.
    unsafe fn zero() -> Self;
    /// # Safety
    /// See the trait.
    unsafe fn splat(x: f32) -> Self;
    /// # Safety
    /// See the trait.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// See the trait.
    unsafe fn store(self, p: *mut f32);
    /// The mask of the lanes whose bits are set (lane i is bit i).
    ///
    /// # Safety
    /// See the trait.
    unsafe fn mask(bits: u16) -> Self::Mask;
    /// The lanes in `m` from `p`, 0 in the others.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn load_masked(m: Self::Mask, p: *const f32) -> Self;
    /// The lanes in `m` from `p`, the others from `self`.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn load_masked_into(self, m: Self::Mask, p: *const f32) -> Self;
    /// Stores the lanes in `m`.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn store_masked(self, m: Self::Mask, p: *mut f32);
    /// The lanes whose bits are set in `bits`, in order, to p, p + 1, …
    ///
    /// # Safety
    /// See the trait.
    unsafe fn store_compressed(self, bits: u16, p: *mut f32);
    /// a·b + c, fused (one rounding).
    ///
    /// # Safety
    /// See the trait.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    /// # Safety
    /// See the trait.
    unsafe fn add(self, b: Self) -> Self;
    /// max(0, z) as x86's `max(0, z)` computes it: z itself when z is NaN or
    /// −0 (the portable epilogue's select, `z < 0 ? 0 : z`).
    ///
    /// # Safety
    /// See the trait.
    unsafe fn relu(self) -> Self;
    /// `self` where h > 0, +0 elsewhere (NaN h gives 0): ReLU's backward.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn where_positive(self, h: Self) -> Self;
}

/// The lanes whose bits are set, in order, written one by one (for the
/// levels without a compress instruction).
#[inline(always)]
#[allow(dead_code)]
unsafe fn store_compressed_lanes(lanes: &[f32; 16], bits: u16, p: *mut f32) {
    let mut o = 0;
    for (i, &v) in lanes.iter().enumerate() {
        if bits >> i & 1 == 1 {
            // SAFETY: the caller's: p is valid for as many values as bits are set.
            unsafe { *p.add(o) = v };
            o += 1;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::F32x16;

    /// One AVX-512 register.
    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    // SAFETY (every method): the trait's contract; AVX-512F is enabled in
    // the caller the method is inlined into.
    impl F32x16 for Avx512 {
        type Mask = __mmask16;

        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Avx512(_mm512_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            unsafe { Avx512(_mm512_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { Avx512(_mm512_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mask(bits: u16) -> __mmask16 {
            bits
        }
        #[inline(always)]
        unsafe fn load_masked(m: __mmask16, p: *const f32) -> Self {
            unsafe { Avx512(_mm512_maskz_loadu_ps(m, p)) }
        }
        #[inline(always)]
        unsafe fn load_masked_into(self, m: __mmask16, p: *const f32) -> Self {
            unsafe { Avx512(_mm512_mask_loadu_ps(self.0, m, p)) }
        }
        #[inline(always)]
        unsafe fn store_masked(self, m: __mmask16, p: *mut f32) {
            unsafe { _mm512_mask_storeu_ps(p, m, self.0) }
        }
        #[inline(always)]
        unsafe fn store_compressed(self, bits: u16, p: *mut f32) {
            let stored = ((1u32 << bits.count_ones()) - 1) as __mmask16;
            unsafe { _mm512_mask_storeu_ps(p, stored, _mm512_maskz_compress_ps(bits, self.0)) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            unsafe { Avx512(_mm512_fmadd_ps(a.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            unsafe { Avx512(_mm512_add_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn relu(self) -> Self {
            unsafe { Avx512(_mm512_max_ps(_mm512_setzero_ps(), self.0)) }
        }
        #[inline(always)]
        unsafe fn where_positive(self, h: Self) -> Self {
            unsafe {
                let keep = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(h.0, _mm512_setzero_ps());
                Avx512(_mm512_maskz_mov_ps(keep, self.0))
            }
        }
    }

    /// Two AVX2 registers: lanes 0–7 and 8–15.
    #[derive(Clone, Copy)]
    pub struct Avx2([__m256; 2]);

    /// Two lane masks: all ones where a lane is selected.
    #[derive(Clone, Copy)]
    pub struct Mask2 {
        v: [__m256i; 2],
    }

    // SAFETY (every method): the trait's contract; AVX2 and FMA are enabled
    // in the caller the method is inlined into. The second half's address
    // is formed with wrapping arithmetic, as it may lie past the slice when
    // its lanes are masked off (masked lanes are not accessed).
    impl F32x16 for Avx2 {
        type Mask = Mask2;

        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Avx2([_mm256_setzero_ps(); 2]) }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            unsafe { Avx2([_mm256_set1_ps(x); 2]) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { Avx2([_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe {
                _mm256_storeu_ps(p, self.0[0]);
                _mm256_storeu_ps(p.add(8), self.0[1]);
            }
        }
        #[inline(always)]
        unsafe fn mask(bits: u16) -> Mask2 {
            unsafe {
                let select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
                let lo = _mm256_and_si256(_mm256_set1_epi32(i32::from(bits & 0xff)), select);
                let hi = _mm256_and_si256(_mm256_set1_epi32(i32::from(bits >> 8)), select);
                Mask2 {
                    v: [_mm256_cmpeq_epi32(lo, select), _mm256_cmpeq_epi32(hi, select)],
                }
            }
        }
        #[inline(always)]
        unsafe fn load_masked(m: Mask2, p: *const f32) -> Self {
            unsafe {
                Avx2([
                    _mm256_maskload_ps(p, m.v[0]),
                    _mm256_maskload_ps(p.wrapping_add(8), m.v[1]),
                ])
            }
        }
        #[inline(always)]
        unsafe fn load_masked_into(self, m: Mask2, p: *const f32) -> Self {
            unsafe {
                let new = Self::load_masked(m, p);
                Avx2([
                    _mm256_blendv_ps(self.0[0], new.0[0], _mm256_castsi256_ps(m.v[0])),
                    _mm256_blendv_ps(self.0[1], new.0[1], _mm256_castsi256_ps(m.v[1])),
                ])
            }
        }
        #[inline(always)]
        unsafe fn store_masked(self, m: Mask2, p: *mut f32) {
            unsafe {
                _mm256_maskstore_ps(p, m.v[0], self.0[0]);
                _mm256_maskstore_ps(p.wrapping_add(8), m.v[1], self.0[1]);
            }
        }
        #[inline(always)]
        unsafe fn store_compressed(self, bits: u16, p: *mut f32) {
            let mut lanes = [0.0f32; 16];
            unsafe {
                self.store(lanes.as_mut_ptr());
                super::store_compressed_lanes(&lanes, bits, p)
            }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            unsafe {
                Avx2([
                    _mm256_fmadd_ps(a.0[0], b.0[0], c.0[0]),
                    _mm256_fmadd_ps(a.0[1], b.0[1], c.0[1]),
                ])
            }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            unsafe { Avx2([_mm256_add_ps(self.0[0], b.0[0]), _mm256_add_ps(self.0[1], b.0[1])]) }
        }
        #[inline(always)]
        unsafe fn relu(self) -> Self {
            unsafe {
                let zero = _mm256_setzero_ps();
                Avx2([_mm256_max_ps(zero, self.0[0]), _mm256_max_ps(zero, self.0[1])])
            }
        }
        #[inline(always)]
        unsafe fn where_positive(self, h: Self) -> Self {
            unsafe {
                let zero = _mm256_setzero_ps();
                let keep0 = _mm256_cmp_ps::<_CMP_GT_OQ>(h.0[0], zero);
                let keep1 = _mm256_cmp_ps::<_CMP_GT_OQ>(h.0[1], zero);
                Avx2([_mm256_and_ps(self.0[0], keep0), _mm256_and_ps(self.0[1], keep1)])
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
pub use arm::Neon;

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    use super::F32x16;

    /// Four NEON registers: lanes 0–3, 4–7, 8–11 and 12–15.
    #[derive(Clone, Copy)]
    pub struct Neon([float32x4_t; 4]);

    /// The 16 bits, and four lane masks (all ones where a lane is selected).
    #[derive(Clone, Copy)]
    pub struct Mask4 {
        bits: u16,
        v: [uint32x4_t; 4],
    }

    impl Mask4 {
        /// The four bits of quarter `q`.
        #[inline(always)]
        fn quarter(self, q: usize) -> u16 {
            self.bits >> (4 * q) & 0xf
        }
    }

    /// The lanes of quarter `q` in `m` from `p` (all four at once when all
    /// are selected, else one by one), 0 in the others.
    #[inline(always)]
    unsafe fn load_quarter(m: Mask4, q: usize, p: *const f32) -> float32x4_t {
        let p = p.wrapping_add(4 * q);
        unsafe {
            match m.quarter(q) {
                0xf => vld1q_f32(p),
                0 => vdupq_n_f32(0.0),
                bits => {
                    let mut lanes = [0.0f32; 4];
                    for (i, v) in lanes.iter_mut().enumerate() {
                        if bits >> i & 1 == 1 {
                            *v = *p.add(i);
                        }
                    }
                    vld1q_f32(lanes.as_ptr())
                }
            }
        }
    }

    // SAFETY (every method): the trait's contract; NEON is enabled in the
    // caller the method is inlined into. Addresses of quarters whose lanes
    // are all masked off are formed with wrapping arithmetic and not used.
    impl F32x16 for Neon {
        type Mask = Mask4;

        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Neon([vdupq_n_f32(0.0); 4]) }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            unsafe { Neon([vdupq_n_f32(x); 4]) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { Neon(std::array::from_fn(|q| vld1q_f32(p.add(4 * q)))) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            for q in 0..4 {
                unsafe { vst1q_f32(p.add(4 * q), self.0[q]) }
            }
        }
        #[inline(always)]
        unsafe fn mask(bits: u16) -> Mask4 {
            unsafe {
                let select: [u32; 4] = [1, 2, 4, 8];
                let select = vld1q_u32(select.as_ptr());
                Mask4 {
                    bits,
                    v: std::array::from_fn(|q| {
                        vtstq_u32(vdupq_n_u32(u32::from(bits >> (4 * q) & 0xf)), select)
                    }),
                }
            }
        }
        #[inline(always)]
        unsafe fn load_masked(m: Mask4, p: *const f32) -> Self {
            unsafe { Neon(std::array::from_fn(|q| load_quarter(m, q, p))) }
        }
        #[inline(always)]
        unsafe fn load_masked_into(self, m: Mask4, p: *const f32) -> Self {
            unsafe {
                Neon(std::array::from_fn(|q| {
                    vbslq_f32(m.v[q], load_quarter(m, q, p), self.0[q])
                }))
            }
        }
        #[inline(always)]
        unsafe fn store_masked(self, m: Mask4, p: *mut f32) {
            for q in 0..4 {
                let (bits, at) = (m.quarter(q), p.wrapping_add(4 * q));
                unsafe {
                    if bits == 0xf {
                        vst1q_f32(at, self.0[q]);
                    } else if bits != 0 {
                        let mut lanes = [0.0f32; 4];
                        vst1q_f32(lanes.as_mut_ptr(), self.0[q]);
                        for (i, &v) in lanes.iter().enumerate() {
                            if bits >> i & 1 == 1 {
                                *at.add(i) = v;
                            }
                        }
                    }
                }
            }
        }
        #[inline(always)]
        unsafe fn store_compressed(self, bits: u16, p: *mut f32) {
            let mut lanes = [0.0f32; 16];
            unsafe {
                self.store(lanes.as_mut_ptr());
                super::store_compressed_lanes(&lanes, bits, p)
            }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            unsafe { Neon(std::array::from_fn(|q| vfmaq_f32(c.0[q], a.0[q], b.0[q]))) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            unsafe { Neon(std::array::from_fn(|q| vaddq_f32(self.0[q], b.0[q]))) }
        }
        #[inline(always)]
        unsafe fn relu(self) -> Self {
            unsafe {
                let zero = vdupq_n_f32(0.0);
                // 0 where 0 > z, else z: NaN and −0 kept, as x86's max(0, z).
                Neon(std::array::from_fn(|q| {
                    vbslq_f32(vcgtq_f32(zero, self.0[q]), zero, self.0[q])
                }))
            }
        }
        #[inline(always)]
        unsafe fn where_positive(self, h: Self) -> Self {
            unsafe {
                let zero = vdupq_n_f32(0.0);
                Neon(std::array::from_fn(|q| {
                    let keep = vcgtq_f32(h.0[q], zero);
                    vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(self.0[q]), keep))
                }))
            }
        }
    }
}
