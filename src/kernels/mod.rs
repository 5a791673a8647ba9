//! Every processor-specific loop of the crate, behind one door.
//!
//! A kernel *level* is a set of implementations for one kind of CPU:
//!
//! | level      | what it uses                                                      |
//! | ---------- | ----------------------------------------------------------------- |
//! | `avx512`   | AVX-512F kernels for the products, σ, the ten-output layer, the convolution and 2×2 max-pooling |
//! | `avx2`     | AVX2+FMA kernels for the dense forward product, σ, the ten-output layer and the convolution; AVX2 builds of the portable loops |
//! | `neon`     | aarch64 NEON kernels for the dense forward product, σ and the convolution; the portable loops (NEON-vectorised) for the rest |
//! | `portable` | plain Rust loops the compiler may vectorise; products by `matrixmultiply` |
//!
//! The CPU is asked once what it supports ([`Level::available`]); the table
//! for a level ([`Kernels::for_level`]) is built only when the CPU has it, so
//! every function pointer in a table is safe to call. Which level runs is
//! chosen by [`Choice`]: `SCRATCHNET_KERNELS=auto|reference|avx512|avx2|neon|portable`
//! ([`from_env`]); `reference` runs the textbook wing alone (`layers`,
//! `models`), without this module.
//!
//! Kernels import nothing above them (only `linalg`'s element type and
//! products). Each kernel file says what it computes and which test proves it
//! equal to its reference; the engine's steps, built from these kernels, are
//! tested against the textbook models.

use std::sync::OnceLock;

pub mod conv;
pub mod dense10;
pub mod gemm;
pub mod pool;
pub mod sigmoid;
pub mod simd;
pub mod sparse;
pub mod vector;

/// The environment variable that chooses the kernels.
pub const ENV: &str = "SCRATCHNET_KERNELS";

/// A set of kernels for one kind of CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Avx512,
    Avx2,
    Neon,
    Portable,
}

impl Level {
    /// Every level, fastest first.
    pub const ALL: [Level; 4] = [Level::Avx512, Level::Avx2, Level::Neon, Level::Portable];

    pub fn name(self) -> &'static str {
        match self {
            Level::Avx512 => "avx512",
            Level::Avx2 => "avx2",
            Level::Neon => "neon",
            Level::Portable => "portable",
        }
    }

    /// Whether this CPU can run the level.
    pub fn available(self) -> bool {
        cpu().contains(&self)
    }

    /// The fastest level this CPU has.
    pub fn best() -> Level {
        cpu()[0]
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The levels this CPU supports, fastest first (asked once).
fn cpu() -> &'static [Level] {
    static LEVELS: OnceLock<Vec<Level>> = OnceLock::new();
    LEVELS.get_or_init(|| {
        let mut levels = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                levels.push(Level::Avx512);
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                levels.push(Level::Avx2);
            }
        }
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("neon") {
            levels.push(Level::Neon);
        }
        levels.push(Level::Portable);
        levels
    })
}

/// Which code trains and evaluates: the textbook wing, or the engine on one
/// kernel level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Choice {
    /// What `SCRATCHNET_KERNELS` says, else the fastest level of this CPU.
    #[default]
    Auto,
    /// The textbook wing alone: `layers` and `models` over `linalg`.
    Reference,
    /// The engine on this kernel level.
    Level(Level),
}

/// What a [`Choice`] comes to on this machine.
#[derive(Clone, Copy, Debug)]
pub enum Resolved {
    Reference,
    Engine(&'static Kernels),
}

impl Resolved {
    /// The name printed in a run's header and saved in its config:
    /// `reference` or the level's name.
    pub fn name(&self) -> &'static str {
        match self {
            Resolved::Reference => "reference",
            Resolved::Engine(k) => k.level.name(),
        }
    }
}

impl Choice {
    /// Parses `auto`, `reference` or a level's name.
    pub fn parse(s: &str) -> Result<Choice, String> {
        let levels = Level::ALL.map(Level::name).join(", ");
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Choice::Auto),
            "reference" => Ok(Choice::Reference),
            name => Level::ALL
                .into_iter()
                .find(|l| l.name() == name)
                .map(Choice::Level)
                .ok_or_else(|| {
                    format!("{ENV}={s} is not a kernel choice (expected auto, reference, {levels})")
                }),
        }
    }

    /// The code this choice runs on this CPU; an error names a level the CPU lacks.
    pub fn resolve(self) -> Result<Resolved, String> {
        match self {
            Choice::Auto => match from_env()? {
                Choice::Auto => Ok(Resolved::Engine(Kernels::for_level(Level::best())?)),
                other => other.resolve(),
            },
            Choice::Reference => Ok(Resolved::Reference),
            Choice::Level(level) => Ok(Resolved::Engine(Kernels::for_level(level)?)),
        }
    }
}

/// The choice `SCRATCHNET_KERNELS` makes (`auto` when unset); an error for
/// a value that is not a choice.
pub fn from_env() -> Result<Choice, String> {
    match std::env::var_os(ENV) {
        None => Ok(Choice::Auto),
        Some(v) => match v.to_str() {
            Some(s) => Choice::parse(s),
            None => Err(format!("{ENV} is not valid UTF-8")),
        },
    }
}

/// y ← y + a·x
pub type AxpyFn = fn(&mut [f32], f32, &[f32]);
/// y = Σ_t a_t·x_t `(y, terms, a, a_stride, x, ld)` ([`vector::combine_portable`]).
pub type CombineFn = fn(&mut [f32], usize, &[f32], usize, &[f32], usize);
/// Σ aᵢ·bᵢ
pub type DotFn = fn(&[f32], &[f32]) -> f32;
/// A strided product `(m, n, k, a, lda, b, ldb, c, ldc)` ([`gemm`]).
pub type GemmFn = fn(usize, usize, usize, &[f32], usize, &[f32], usize, &mut [f32], usize);
/// The sparse forward product `(x by columns, n, wᵀ, ldw, c, ldc, Σ_k Wᵀ[k, :])` ([`sparse`]).
pub type SparseForwardFn = fn(&sparse::Columns, usize, &[f32], usize, &mut [f32], usize, &[f32]);
/// The sparse ∂W product `(x by columns, n, a, lda, gᵀ, ldg, Σ_b A[b, :])` ([`sparse`]).
pub type SparseDWeightFn = fn(&sparse::Columns, usize, &[f32], usize, &mut [f32], usize, &[f32]);
/// A transpose `(rows, cols, w, ld, wᵀ, ldt)` ([`sparse::transpose`]).
pub type TransposeFn = fn(usize, usize, &[f32], usize, &mut [f32], usize);

/// A level's first-layer products on sparse inputs ([`sparse`]).
#[derive(Clone, Copy)]
pub struct SparseKernels {
    /// Appends a row of X ([`sparse::Rows::push`]).
    pub push_row: fn(&mut sparse::Rows, &[f32]),
    pub transpose: TransposeFn,
    /// C += X·Wᵀ.
    pub forward: SparseForwardFn,
    /// Gᵀ = Xᵀ·A.
    pub d_weight_t: SparseDWeightFn,
}

/// A ten-output product `(batch, a, b, out)` ([`dense10`]).
pub type Dense10Fn = fn(usize, &[f32], &[f32], &mut [f32]);

/// A convolution's forward pass with its epilogue `(shape, img, w, epilogue, wide, out)`.
pub type ConvForwardFn = fn(&conv::Shape, &[f32], &[f32], conv::Epilogue<f32>, &mut [f32], &mut [f32]);
/// δ laid out wide `(shape, δ, h, wide)`.
pub type ConvDeltaFn = fn(&conv::Shape, &[f32], Option<&[f32]>, &mut [f32]);
/// ∂W lanes from a wide δ `(shape, img, δ, lanes)`.
pub type ConvDWeightFn = fn(&conv::Shape, &[f32], &[f32], &mut [f32]);
/// ∂W lanes from a compact δ `(shape, img, δ, h, lanes)`.
pub type ConvDWeightCompactFn = fn(&conv::Shape, &[f32], &mut [f32], Option<&[f32]>, &mut [f32]);

/// Max-pooling's forward pass `(pool, batch, x, y)` ([`pool`]).
pub type PoolForwardFn = fn(&pool::Pool, usize, &[f32], &mut [f32]);
/// Max-pooling's backward pass `(pool, batch, x, y, ∂L/∂y, ∂L/∂x)` ([`pool`]).
pub type PoolBackwardFn = fn(&pool::Pool, usize, &[f32], &[f32], &[f32], &mut [f32]);

/// The convolution kernels of a level ([`conv`]).
#[derive(Clone, Copy)]
pub struct ConvKernels {
    /// Output maps with their epilogue, `[F, OS, OS]`; `wide` is scratch of F·L values.
    pub forward: ConvForwardFn,
    /// δ laid out wide, with ReLU's mask when `h` is given.
    pub delta: ConvDeltaFn,
    /// ∂W partial sums in 16 lanes from a wide δ (`conv::LANES`, at every level).
    pub d_weight: ConvDWeightFn,
    /// ∂W partial sums in 16 lanes from a compact δ, masked in place when `h` is given.
    pub d_weight_compact: ConvDWeightCompactFn,
    /// Whether `forward` runs on the compact layout where it can, and ∂W
    /// should too ([`conv::compact`]).
    pub compact_layout: bool,
}

/// The kernels of one level: every processor-specific function the engine calls.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub level: Level,
    pub gemm_nt: GemmFn,
    pub gemm_tn: GemmFn,
    pub sigmoid: fn(&mut [f32]),
    pub axpy: AxpyFn,
    pub combine: CombineFn,
    pub dot: DotFn,
    pub dense10_forward: Dense10Fn,
    pub dense10_d_weight: Dense10Fn,
    pub dense10_d_input: Dense10Fn,
    /// The first layer's products skipping zero inputs; `None` where the
    /// level multiplies the dense rows (`gemm_nt`, `gemm_tn`).
    pub sparse: Option<SparseKernels>,
    /// Direct convolution kernels; `None` where the level has none (the
    /// engine's convolution then uses its portable strategies).
    pub conv: Option<ConvKernels>,
    pub pool_forward: PoolForwardFn,
    pub pool_backward: PoolBackwardFn,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kernels({})", self.level)
    }
}

/// The portable convolution kernels: the references the fast ones are
/// tested against (the engine uses them only in tests).
pub const PORTABLE_CONV: ConvKernels = ConvKernels {
    forward: conv::forward_compact_portable,
    delta: conv::delta_portable,
    d_weight: conv::d_weight_portable,
    d_weight_compact: conv::d_weight_compact_portable,
    compact_layout: true,
};

const PORTABLE: Kernels = Kernels {
    level: Level::Portable,
    gemm_nt: crate::linalg::gemm_nt::<f32>,
    gemm_tn: crate::linalg::gemm_tn::<f32>,
    sigmoid: sigmoid::sigmoid_portable,
    axpy: vector::axpy_portable,
    combine: vector::combine_portable,
    dot: vector::dot_portable,
    dense10_forward: dense10::forward_portable::<f32>,
    dense10_d_weight: dense10::d_weight_portable::<f32>,
    dense10_d_input: dense10::d_input_portable::<f32>,
    sparse: None,
    conv: None,
    pool_forward: pool::forward,
    pool_backward: pool::backward,
};

impl Kernels {
    /// The table of `level`, or an error when this CPU lacks it.
    pub fn for_level(level: Level) -> Result<&'static Kernels, String> {
        if !level.available() {
            let have = cpu().iter().map(|l| l.name()).collect::<Vec<_>>().join(", ");
            return Err(format!(
                "{ENV}={level}: this CPU does not support the {level} kernels (it has: {have})"
            ));
        }
        Ok(match level {
            Level::Portable => &PORTABLE,
            #[cfg(target_arch = "aarch64")]
            Level::Neon => &arm::NEON,
            #[cfg(not(target_arch = "aarch64"))]
            Level::Neon => unreachable!("the NEON level is never available here"),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => &x86::AVX512,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => &x86::AVX2,
            #[cfg(not(target_arch = "x86_64"))]
            Level::Avx512 | Level::Avx2 => unreachable!("x86 levels are never available here"),
        })
    }

    /// The tables of every level this CPU has (for tests and benchmarks).
    pub fn available() -> Vec<&'static Kernels> {
        cpu().iter().filter_map(|&l| Kernels::for_level(l).ok()).collect()
    }
}

/// A level's convolution table: the kernels of `conv::LEVEL` behind safe
/// entry points.
///
/// Only for the table of that level, which is handed out only when the CPU
/// has it; the kernels check their slices' extents themselves.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! conv_kernels {
    ($level:ident) => {
        // SAFETY: see the macro.
        ConvKernels {
            forward: |c, img, w, epi, wide, out| unsafe { conv::$level::forward(c, img, w, epi, wide, out) },
            delta: |c, d_z, h, wide| unsafe { conv::$level::delta(c, d_z, h, wide) },
            d_weight: |c, img, delta, lanes| unsafe { conv::$level::d_weight(c, img, delta, lanes) },
            d_weight_compact: |c, img, delta, h, lanes| unsafe {
                conv::$level::d_weight_compact(c, img, delta, h, lanes)
            },
            compact_layout: conv::$level::COMPACT_LAYOUT,
        }
    };
}

/// The NEON table: its own forward product, σ and convolution, and the portable loops (which
/// the compiler vectorises for NEON, always present on aarch64) for the rest.
#[cfg(target_arch = "aarch64")]
mod arm {
    use super::{ConvKernels, Kernels, Level, PORTABLE, conv, gemm, sigmoid};
    use crate::linalg::{check_nt, check_tn};

    pub(super) const NEON: Kernels = Kernels {
        level: Level::Neon,
        gemm_nt: gemm_nt_neon,
        gemm_tn: gemm_tn_neon,
        sigmoid: sigmoid_neon,
        conv: Some(conv_kernels!(neon)),
        ..PORTABLE
    };

    // SAFETY (every wrapper below): reachable only through the NEON table,
    // handed out only when the CPU has NEON; the wrappers check the extents.

    #[allow(clippy::too_many_arguments)]
    fn gemm_tn_neon(
        m: usize,
        n: usize,
        kp: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        check_tn(m, n, kp, a, lda, b, ldb, c, ldc);
        unsafe { gemm::neon::gemm_tn(m, n, kp, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc) }
    }

    fn sigmoid_neon(z: &mut [f32]) {
        unsafe { sigmoid::neon::sigmoid(z) }
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_nt_neon(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        check_nt(m, n, k, a, lda, b, ldb, c, ldc);
        unsafe { gemm::neon::gemm_nt(m, n, k, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc) }
    }
}

/// The x86 tables. Each wrapper calls a `#[target_feature]` kernel; the
/// wrappers are private and reachable only through a table that
/// [`Kernels::for_level`] hands out after checking the CPU has the level.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{
        ConvKernels, Kernels, Level, PORTABLE, SparseKernels, conv, dense10, gemm, pool, sigmoid, sparse,
        vector,
    };
    use crate::linalg::{check_nt, check_tn};

    pub(super) const AVX2: Kernels = Kernels {
        level: Level::Avx2,
        gemm_nt: gemm_nt_avx2,
        gemm_tn: gemm_tn_avx2,
        sigmoid: sigmoid_avx2,
        axpy: axpy_avx2,
        combine: combine_avx2,
        dot: dot_avx2,
        dense10_forward: dense10_forward_avx2,
        dense10_d_weight: dense10_d_weight_avx2,
        dense10_d_input: dense10_d_input_avx2,
        sparse: Some(SparseKernels {
            push_row: sparse_push_row_avx2,
            transpose: transpose_avx2,
            forward: sparse_forward_avx2,
            d_weight_t: sparse_d_weight_avx2,
        }),
        conv: Some(conv_kernels!(avx2)),
        ..PORTABLE
    };

    pub(super) const AVX512: Kernels = Kernels {
        level: Level::Avx512,
        axpy: axpy_avx2,
        combine: combine_avx2,
        dot: dot_avx2,
        gemm_nt: gemm_nt_avx512,
        gemm_tn: gemm_tn_avx512,
        sigmoid: sigmoid_avx512,
        dense10_forward: dense10_forward_avx512,
        dense10_d_weight: dense10_d_weight_avx512,
        dense10_d_input: dense10_d_input_avx512,
        sparse: None,
        conv: Some(conv_kernels!(avx512)),
        pool_forward: pool_forward_avx512,
        pool_backward: pool_backward_avx512,
    };

    // SAFETY (every wrapper below): reachable only through the table of its
    // level, which is handed out only when the CPU supports that level; the
    // kernels check their slices' extents themselves, or the wrapper does.

    fn pool_forward_avx512(p: &pool::Pool, batch: usize, x: &[f32], y: &mut [f32]) {
        unsafe { pool::avx512::forward(p, batch, x, y) }
    }

    fn pool_backward_avx512(
        p: &pool::Pool,
        batch: usize,
        x: &[f32],
        y: &[f32],
        d_y: &[f32],
        d_x: &mut [f32],
    ) {
        unsafe { pool::avx512::backward(p, batch, x, y, d_y, d_x) }
    }

    fn axpy_avx2(y: &mut [f32], a: f32, x: &[f32]) {
        unsafe { vector::avx2::axpy(y, a, x) }
    }

    fn combine_avx2(y: &mut [f32], terms: usize, a: &[f32], a_stride: usize, x: &[f32], ld: usize) {
        unsafe { vector::avx2::combine(y, terms, a, a_stride, x, ld) }
    }

    fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        unsafe { vector::avx2::dot(a, b) }
    }

    fn dense10_forward_avx2(batch: usize, x: &[f32], w: &[f32], y: &mut [f32]) {
        unsafe { dense10::avx2::forward(batch, x, w, y) }
    }

    fn dense10_d_weight_avx2(batch: usize, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
        unsafe { dense10::avx2::d_weight(batch, x, d_y, d_w) }
    }

    fn dense10_d_input_avx2(batch: usize, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
        unsafe { dense10::avx2::d_input(batch, d_y, w, d_x) }
    }

    fn dense10_forward_avx512(batch: usize, x: &[f32], w: &[f32], y: &mut [f32]) {
        unsafe { dense10::avx512::forward(batch, x, w, y) }
    }

    fn dense10_d_weight_avx512(batch: usize, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
        unsafe { dense10::avx512::d_weight(batch, x, d_y, d_w) }
    }

    fn dense10_d_input_avx512(batch: usize, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
        unsafe { dense10::avx512::d_input(batch, d_y, w, d_x) }
    }

    fn sparse_push_row_avx2(r: &mut sparse::Rows, row: &[f32]) {
        unsafe { sparse::avx2::push(r, row) }
    }

    fn transpose_avx2(rows: usize, cols: usize, w: &[f32], ld: usize, wt: &mut [f32], ldt: usize) {
        sparse::check_transpose(rows, cols, w, ld, wt, ldt);
        unsafe { sparse::avx2::transpose(rows, cols, w.as_ptr(), ld, wt.as_mut_ptr(), ldt) }
    }

    #[allow(clippy::too_many_arguments)]
    fn sparse_forward_avx2(
        x: &sparse::Columns,
        n: usize,
        wt: &[f32],
        ldw: usize,
        c: &mut [f32],
        ldc: usize,
        sum: &[f32],
    ) {
        sparse::check_forward(x, n, wt, ldw, c, ldc, sum);
        unsafe { sparse::avx2::forward(x, n, wt.as_ptr(), ldw, c.as_mut_ptr(), ldc, sum.as_ptr()) }
    }

    #[allow(clippy::too_many_arguments)]
    fn sparse_d_weight_avx2(
        x: &sparse::Columns,
        n: usize,
        a: &[f32],
        lda: usize,
        gt: &mut [f32],
        ldg: usize,
        sum: &[f32],
    ) {
        sparse::check_d_weight(x, n, a, lda, gt, ldg, sum);
        unsafe { sparse::avx2::d_weight_t(x, n, a.as_ptr(), lda, gt.as_mut_ptr(), ldg, sum.as_ptr()) }
    }

    fn sigmoid_avx2(z: &mut [f32]) {
        unsafe { sigmoid::avx2::sigmoid(z) }
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_nt_avx2(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        check_nt(m, n, k, a, lda, b, ldb, c, ldc);
        unsafe { gemm::avx2::gemm_nt(m, n, k, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc) }
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_tn_avx2(
        m: usize,
        n: usize,
        kp: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        check_tn(m, n, kp, a, lda, b, ldb, c, ldc);
        unsafe { gemm::avx2::gemm_tn(m, n, kp, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc) }
    }

    fn sigmoid_avx512(z: &mut [f32]) {
        unsafe { sigmoid::avx512::sigmoid(z) }
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_nt_avx512(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        check_nt(m, n, k, a, lda, b, ldb, c, ldc);
        unsafe { gemm::avx512::gemm_nt(m, n, k, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc) }
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_tn_avx512(
        m: usize,
        n: usize,
        kp: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        check_tn(m, n, kp, a, lda, b, ldb, c, ldc);
        unsafe { gemm::avx512::gemm_tn(m, n, kp, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc) }
    }
}
