//! The AVX2 + FMA kernels of [`super`]: the bodies of `super::simd` on two
//! 256-bit registers per 16 lanes (16 registers). They run on the wide
//! layout, whose loads are plain: on the compact one, each tap's two masked
//! loads and blend per vector cost more than the unused positions they save
//! (`scratchnet bench --cnn 7x32` at avx2: 6.0 s an epoch against 4.2 s).
//!
//! Register blocks: forward 6 filters × 1 vector (12 accumulators; 2 loads
//! and 6 broadcasts per 12 fused multiply-adds), 3 vectors for one filter,
//! 2 × 2 for two; ∂W 2 filters × 2 taps (8 accumulators, 8 loads per 8),
//! 5 taps for one filter. The sums are AVX-512's, lane by lane, so the bits
//! are too.

super::simd::level! {
    crate::kernels::simd::Avx2, "avx2,fma",
    forward: [3, 2, 6 x 1],
    compact: [4 x 1, 4 x 1],
    d_weight: [5, 2, 2 x 2],
    d_weight_compact: 4 x 1,
    compact_layout: false,
}
