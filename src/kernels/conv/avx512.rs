//! The AVX-512 kernels of [`super`]: the bodies of `super::simd` on one
//! 512-bit register per 16 lanes (32 registers), on the compact layout
//! where it fits (masked loads cost no more than plain ones here).
//!
//! Register blocks: forward 4 filters × 6 vectors (24 accumulators, 10 loads
//! per 24 fused multiply-adds; on the compact layout 8 filters × 3 vectors,
//! 14 loads per 24), ∂W 3 filters × 7 taps (21 accumulators, 10 loads per
//! 21; on the compact layout 8 × 3, 14 loads per 24).

super::simd::level! {
    crate::kernels::simd::Avx512, "avx512f",
    forward: [8, 8, 4 x 6],
    compact: [8 x 3, 4 x 6],
    d_weight: [7, 7, 3 x 7],
    d_weight_compact: 8 x 3,
    compact_layout: true,
}
