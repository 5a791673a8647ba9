//! The NEON kernels of [`super`]: the bodies of `super::simd` on four
//! 128-bit registers per 16 lanes (32 registers), on the wide layout (NEON
//! has no masked loads: a partial quarter of a vector is read lane by lane,
//! which only the wide layout's last vector needs).
//!
//! Register blocks: forward 6 filters × 1 vector (24 accumulator
//! registers), 3 vectors for one filter, 2 × 2 for two; ∂W 2 filters × 2
//! taps, 5 taps for one filter. The sums are the x86 levels', lane by lane,
//! so the bits are too.

super::simd::level! {
    crate::kernels::simd::Neon, "neon",
    forward: [3, 2, 6 x 1],
    compact: [4 x 1, 4 x 1],
    d_weight: [5, 2, 2 x 2],
    d_weight_compact: 4 x 1,
    compact_layout: false,
}
