//! The first dense layer's two products on inputs that mostly hold one
//! value, the background c: MNIST's pixels are 0 in about 81 % of places, so
//! after any of the normalisations most inputs are c (0, −1 or −0.42). With
//! X = c + X′ (X′ zero on the background),
//!
//! ```text
//! forward  C[b, j] += Σ_{k : X[b, k] ≠ c} X′[b, k]·Wᵀ[k, j]  +  c·Σ_k Wᵀ[k, j]
//! ∂W       Gᵀ[k, j]  = Σ_{b : X[b, k] ≠ c} X′[b, k]·A[b, j]   +  c·Σ_b A[b, j]      A = δ
//! ```
//! (the c terms are left out when c = 0). Both run over X by columns: for each
//! input k, the forward product holds a block of Wᵀ's row k in registers and
//! adds it into the rows of C (in L1) of the samples with an entry there;
//! ∂W holds a block of Gᵀ's row k in registers and sums over those samples
//! in increasing b. Each sum uses fused multiply-adds, the forward product's
//! over k in increasing order from C's value (the bias), ∂W's from zero, and
//! the c term comes last. [`Rows`] is how a batch is read in (one pass over
//! each sample), [`Columns`] the same entries regrouped.
//!
//! With c = 0 no bit differs from the dense products for finite values: a
//! skipped term is ±0, and adding ±0 leaves a sum unchanged unless the sum is
//! −0, which a sum started from +0 or from a nonzero value cannot become in
//! round-to-nearest (x + y is −0 only when both are −0). So the forward
//! product gives the bits of the dense product summed over k in order
//! ([`forward_portable`], tested), and ∂W exactly the bits of `gemm`'s ∂W
//! product (`kernels::gemm::tn`, which sums over the batch in order from zero;
//! tested). With c ≠ 0 the sums round differently from the dense ones (tested
//! against f64 sums). A NaN or infinite weight or δ meets a skipped input as
//! NaN in the dense products and is skipped here.
//!
//! The vector bodies are written once over [`F32x16`]; each lane's sum is the
//! same chain of fused multiply-adds at every width.

use crate::kernels::simd::F32x16;

/// Lanes of a vector.
const L: usize = 16;

/// The nonzero entries of a batch of rows (compressed sparse rows): row b's
/// columns `col[start[b]..start[b + 1]]`, ascending, and their values.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    rows: usize,
    dim: usize,
    start: Vec<u32>,
    col: Vec<u32>,
    value: Vec<f32>,
    /// Entries per column (for [`Columns::set`]).
    per_column: Vec<u32>,
    /// The value the skipped inputs hold; entries hold their input minus it.
    background: f32,
}

impl Rows {
    /// Empties `self` for rows of `dim` values whose entries are the inputs
    /// that differ from `background`, less it (the buffers are kept).
    pub fn clear(&mut self, dim: usize, background: f32) {
        self.rows = 0;
        self.dim = dim;
        self.background = background;
        self.start.clear();
        self.start.push(0);
        self.per_column.clear();
        self.per_column.resize(dim.next_multiple_of(8), 0);
    }

    /// Makes room for one more row's entries; returns where they start.
    #[inline(always)]
    fn reserve_row(&mut self) -> usize {
        let len = self.nonzeros();
        assert!(
            u32::try_from(len + self.dim).is_ok(),
            "sparse rows: too many entries"
        );
        if self.col.len() < len + self.dim {
            self.col.resize(len + self.dim, 0);
            self.value.resize(len + self.dim, 0.0);
        }
        len
    }

    /// Closes the row whose entries end at `len`.
    #[inline(always)]
    fn end_row(&mut self, len: usize) {
        self.start.push(len as u32);
        self.rows += 1;
    }

    /// Appends a row's nonzero entries by a scalar loop: the portable twin
    /// of the levels' `push_row`.
    pub fn push(&mut self, row: &[f32]) {
        assert_eq!(
            row.len(),
            self.dim,
            "sparse rows: a row of {} values, not {}",
            row.len(),
            self.dim
        );
        let (mut len, bg) = (self.reserve_row(), self.background);
        for (k, &v) in row.iter().enumerate() {
            if v != bg {
                self.col[len] = k as u32;
                self.value[len] = v - bg;
                self.per_column[k] += 1;
                len += 1;
            }
        }
        self.end_row(len);
    }

    /// The entries of X `[rows, dim]` (row-major) apart from `background`, by [`Rows::push`].
    pub fn set(&mut self, x: &[f32], rows: usize, dim: usize, background: f32) {
        assert!(
            x.len() >= rows * dim,
            "sparse rows: {} values for {rows}×{dim}",
            x.len()
        );
        self.clear(dim, background);
        for b in 0..rows {
            self.push(&x[b * dim..(b + 1) * dim]);
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn background(&self) -> f32 {
        self.background
    }

    /// Entries held (the inputs that differ from the background).
    pub fn nonzeros(&self) -> usize {
        self.start.last().map_or(0, |&n| n as usize)
    }

    /// Row b's columns and values.
    #[inline(always)]
    fn row(&self, b: usize) -> (&[u32], &[f32]) {
        let (s, e) = (self.start[b] as usize, self.start[b + 1] as usize);
        (&self.col[s..e], &self.value[s..e])
    }
}

/// The nonzero entries of a batch of rows by column (compressed sparse
/// columns): column k's rows `row[start[k]..start[k + 1]]`, ascending, and
/// their values.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    rows: usize,
    dim: usize,
    start: Vec<u32>,
    row: Vec<u32>,
    value: Vec<f32>,
    background: f32,
}

impl Columns {
    /// The entries of `x`, regrouped by column (a counting sort on the
    /// column counts `x` kept; rows stay in order).
    pub fn set(&mut self, x: &Rows) {
        let (rows, dim) = (x.rows, x.dim);
        self.rows = rows;
        self.dim = dim;
        self.background = x.background;
        self.start.clear();
        self.start.push(0);
        let mut total = 0;
        for &c in &x.per_column[..dim] {
            total += c;
            self.start.push(total);
        }
        let entries = total as usize;
        self.row.resize(entries, 0);
        self.value.resize(entries, 0.0);
        // start[k] is where column k's next entry goes until the shift below.
        let next = &mut self.start;
        for b in 0..rows {
            let (cols, values) = x.row(b);
            for (&k, &v) in cols.iter().zip(values) {
                let at = next[k as usize] as usize;
                self.row[at] = b as u32;
                self.value[at] = v;
                next[k as usize] += 1;
            }
        }
        for k in (1..=dim).rev() {
            next[k] = next[k - 1];
        }
        next[0] = 0;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Column k's rows and values.
    #[inline(always)]
    fn column(&self, k: usize) -> (&[u32], &[f32]) {
        let (s, e) = (self.start[k] as usize, self.start[k + 1] as usize);
        (&self.row[s..e], &self.value[s..e])
    }
}

/// Checks that `m` holds `rows` rows of `cols` values at stride `ld`.
fn check_matrix(what: &str, name: &str, m: &[f32], rows: usize, cols: usize, ld: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(cols <= ld, "{what}: {name} stride {ld} < {cols}");
    assert!(
        m.len() >= (rows - 1) * ld + cols,
        "{what}: {name} holds {} values",
        m.len()
    );
}

/// Checks the n sums a background other than 0 needs.
fn check_sums(what: &str, x: &Columns, n: usize, sum: &[f32]) {
    assert!(
        x.background == 0.0 || sum.len() >= n,
        "{what}: {} sums for {n} columns",
        sum.len()
    );
}

/// Checks the forward product's operands: Wᵀ `x.dim()` rows of n values at
/// stride `ldw`, C `x.rows()` rows of n at stride `ldc`, and the sums.
pub fn check_forward(x: &Columns, n: usize, wt: &[f32], ldw: usize, c: &[f32], ldc: usize, sum: &[f32]) {
    check_sums("sparse product", x, n, sum);
    check_matrix("sparse product", "Wᵀ", wt, x.dim(), n, ldw);
    check_matrix("sparse product", "C", c, x.rows(), n, ldc);
}

/// Checks ∂W's operands: A `x.rows()` rows of n at stride `lda`, Gᵀ
/// `x.dim()` rows of n at stride `ldg`, and the sums.
pub fn check_d_weight(x: &Columns, n: usize, a: &[f32], lda: usize, gt: &[f32], ldg: usize, sum: &[f32]) {
    check_sums("sparse ∂W", x, n, sum);
    check_matrix("sparse ∂W", "A", a, x.rows(), n, lda);
    check_matrix("sparse ∂W", "Gᵀ", gt, x.dim(), n, ldg);
}

/// Checks a transpose of W `[rows, cols]` (stride `ld`) into Wᵀ `[cols, rows]` (stride `ldt`).
pub fn check_transpose(rows: usize, cols: usize, w: &[f32], ld: usize, wt: &[f32], ldt: usize) {
    check_matrix("transpose", "W", w, rows, cols, ld);
    check_matrix("transpose", "Wᵀ", wt, cols, rows, ldt);
}

/// C\[b, j\] += Σ_k X\[b, k\]·Wᵀ\[k, j\] on dense rows X `[rows, d]`, k in
/// order with fused multiply-adds: the textbook twin of the sparse forward
/// product, which gives these bits for finite weights.
#[allow(clippy::too_many_arguments)]
pub fn forward_portable(
    rows: usize,
    d: usize,
    n: usize,
    x: &[f32],
    wt: &[f32],
    ldw: usize,
    c: &mut [f32],
    ldc: usize,
) {
    for b in 0..rows {
        let out = &mut c[b * ldc..b * ldc + n];
        for k in 0..d {
            let xv = x[b * d + k];
            for (o, &w) in out.iter_mut().zip(&wt[k * ldw..k * ldw + n]) {
                *o = xv.mul_add(w, *o);
            }
        }
    }
}

/// Wᵀ `[cols, rows]` (stride `ldt`) from W `[rows, cols]` (stride `ld`):
/// the portable twin of the levels' transposes.
pub fn transpose(rows: usize, cols: usize, w: &[f32], ld: usize, wt: &mut [f32], ldt: usize) {
    for r in 0..rows {
        for (c, &v) in w[r * ld..r * ld + cols].iter().enumerate() {
            wt[c * ldt + r] = v;
        }
    }
}

/// The lanes mask for the last `n - j0` (< 16 here, or 16) columns.
#[inline(always)]
fn tail_bits(left: usize) -> u16 {
    if left >= L {
        0xffff
    } else {
        ((1u32 << left) - 1) as u16
    }
}

/// The forward product at one level, NV vectors of C per block: for each
/// input k, its row of Wᵀ in registers meets every sample with an entry there
/// (C's rows stay in L1 while the rows of Wᵀ stream past once).
///
/// # Safety
/// Inside the level's target features, on a CPU that has them, with the
/// extents [`check_forward`] asserts; C must not overlap Wᵀ.
#[inline(always)]
pub(crate) unsafe fn forward<V: F32x16, const NV: usize>(
    x: &Columns,
    n: usize,
    wt: *const f32,
    ldw: usize,
    c: *mut f32,
    ldc: usize,
    sum: *const f32,
) {
    let bg = x.background;
    unsafe {
        let mut j0 = 0;
        while j0 + NV * L <= n {
            for k in 0..x.dim() {
                let (rows, values) = x.column(k);
                if rows.is_empty() {
                    continue;
                }
                let w: [V; NV] = std::array::from_fn(|j| V::load(wt.add(k * ldw + j0 + L * j)));
                for (&b, &v) in rows.iter().zip(values) {
                    let (xv, out) = (V::splat(v), c.add(b as usize * ldc + j0));
                    for (j, &w) in w.iter().enumerate() {
                        V::mul_add(xv, w, V::load(out.add(L * j))).store(out.add(L * j));
                    }
                }
            }
            if bg != 0.0 {
                let s: [V; NV] = std::array::from_fn(|j| V::load(sum.add(j0 + L * j)));
                for b in 0..x.rows() {
                    let out = c.add(b * ldc + j0);
                    for (j, &s) in s.iter().enumerate() {
                        V::mul_add(V::splat(bg), s, V::load(out.add(L * j))).store(out.add(L * j));
                    }
                }
            }
            j0 += NV * L;
        }
        while j0 < n {
            let mask = V::mask(tail_bits(n - j0));
            for k in 0..x.dim() {
                let (rows, values) = x.column(k);
                if rows.is_empty() {
                    continue;
                }
                let w = V::load_masked(mask, wt.add(k * ldw + j0));
                for (&b, &v) in rows.iter().zip(values) {
                    let out = c.add(b as usize * ldc + j0);
                    V::mul_add(V::splat(v), w, V::load_masked(mask, out)).store_masked(mask, out);
                }
            }
            if bg != 0.0 {
                let s = V::load_masked(mask, sum.add(j0));
                for b in 0..x.rows() {
                    let out = c.add(b * ldc + j0);
                    V::mul_add(V::splat(bg), s, V::load_masked(mask, out)).store_masked(mask, out);
                }
            }
            j0 += L;
        }
    }
}

/// ∂W transposed at one level, NV vectors of Gᵀ per block (Gᵀ is overwritten).
///
/// # Safety
/// Inside the level's target features, on a CPU that has them, with the
/// extents [`check_d_weight`] asserts; Gᵀ must not overlap A.
#[inline(always)]
pub(crate) unsafe fn d_weight_t<V: F32x16, const NV: usize>(
    x: &Columns,
    n: usize,
    a: *const f32,
    lda: usize,
    gt: *mut f32,
    ldg: usize,
    sum: *const f32,
) {
    let bg = x.background;
    unsafe {
        let mut j0 = 0;
        while j0 + NV * L <= n {
            for k in 0..x.dim() {
                let (rows, values) = x.column(k);
                let mut acc = [V::zero(); NV];
                for (&b, &v) in rows.iter().zip(values) {
                    let (xv, d) = (V::splat(v), a.add(b as usize * lda + j0));
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = V::mul_add(xv, V::load(d.add(L * j)), *acc);
                    }
                }
                if bg != 0.0 {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = V::mul_add(V::splat(bg), V::load(sum.add(j0 + L * j)), *acc);
                    }
                }
                for (j, acc) in acc.iter().enumerate() {
                    acc.store(gt.add(k * ldg + j0 + L * j));
                }
            }
            j0 += NV * L;
        }
        while j0 < n {
            let mask = V::mask(tail_bits(n - j0));
            for k in 0..x.dim() {
                let (rows, values) = x.column(k);
                let mut acc = V::zero();
                for (&b, &v) in rows.iter().zip(values) {
                    acc = V::mul_add(
                        V::splat(v),
                        V::load_masked(mask, a.add(b as usize * lda + j0)),
                        acc,
                    );
                }
                if bg != 0.0 {
                    acc = V::mul_add(V::splat(bg), V::load_masked(mask, sum.add(j0)), acc);
                }
                acc.store_masked(mask, gt.add(k * ldg + j0));
            }
            j0 += L;
        }
    }
}

/// The AVX2 + FMA instances: both products in blocks of 4 vectors (64
/// columns, 8 registers; the forward product 2 for more than 128 samples),
/// the row build by compares and a permutation table, the transpose in 8×8
/// tiles.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use super::{Columns, Rows};
    use std::arch::x86_64::*;

    /// For each 8-bit mask, the positions of its set bits in order (the
    /// permutation that packs the selected lanes to the front).
    static PACK: [[u32; 8]; 256] = {
        let mut t = [[0u32; 8]; 256];
        let mut m = 0;
        while m < 256 {
            let (mut i, mut n) = (0, 0);
            while i < 8 {
                if m & (1 << i) != 0 {
                    t[m][n] = i as u32;
                    n += 1;
                }
                i += 1;
            }
            m += 1;
        }
        t
    };

    /// [`Rows::push`] eight values at a time: one compare gives their
    /// nonzero mask, one permutation packs the nonzero ones (and their
    /// columns) to the front of 8 slots, and the write position advances by
    /// their count. Gives `Rows::push`'s entries (tested).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn push(r: &mut Rows, row: &[f32]) {
        let dim = r.dim;
        assert_eq!(
            row.len(),
            dim,
            "sparse rows: a row of {} values, not {dim}",
            row.len()
        );
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let (mut len, bg) = (r.reserve_row(), r.background);
        let mut k0 = 0;
        while k0 + 8 <= dim {
            // The slots written are inside the buffers: reserve_row left room
            // for dim entries from the row's start, len is at most k0 past it,
            // and k0 + 8 ≤ dim.
            let (cols, values) = (&mut r.col[len..len + 8], &mut r.value[len..len + 8]);
            let counts = &mut r.per_column[k0..k0 + 8];
            // SAFETY: 8 values at row[k0..], 8 slots at cols, values and
            // counts; AVX2 is enabled here. NEQ_UQ is `v != bg` (true for NaN).
            let count = unsafe {
                let (v, bgv) = (_mm256_loadu_ps(row.as_ptr().add(k0)), _mm256_set1_ps(bg));
                let nonzero = _mm256_cmp_ps::<_CMP_NEQ_UQ>(v, bgv);
                let m = _mm256_movemask_ps(nonzero) as usize;
                // Each nonzero lane is −1 as an integer: subtracting counts it.
                let c = _mm256_loadu_si256(counts.as_ptr().cast());
                _mm256_storeu_si256(
                    counts.as_mut_ptr().cast(),
                    _mm256_sub_epi32(c, _mm256_castps_si256(nonzero)),
                );
                let pack = _mm256_loadu_si256(PACK[m].as_ptr().cast());
                let k = _mm256_add_epi32(_mm256_set1_epi32(k0 as i32), lanes);
                _mm256_storeu_si256(cols.as_mut_ptr().cast(), _mm256_permutevar8x32_epi32(k, pack));
                _mm256_storeu_ps(
                    values.as_mut_ptr(),
                    _mm256_permutevar8x32_ps(_mm256_sub_ps(v, bgv), pack),
                );
                m.count_ones() as usize
            };
            len += count;
            k0 += 8;
        }
        for (k, &v) in row.iter().enumerate().skip(k0) {
            if v != bg {
                r.col[len] = k as u32;
                r.value[len] = v - bg;
                r.per_column[k] += 1;
                len += 1;
            }
        }
        r.end_row(len);
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; the extents as [`super::check_forward`] asserts.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn forward(
        x: &Columns,
        n: usize,
        wt: *const f32,
        ldw: usize,
        c: *mut f32,
        ldc: usize,
        sum: *const f32,
    ) {
        // SAFETY: as this function's; AVX2 and FMA are enabled here. Blocks
        // of 64 columns keep the outputs of up to 128 samples in L1 (32 KB),
        // blocks of 32 those of 256; the bits do not depend on the block.
        unsafe {
            if x.rows() <= 128 {
                super::forward::<crate::kernels::simd::Avx2, 4>(x, n, wt, ldw, c, ldc, sum)
            } else {
                super::forward::<crate::kernels::simd::Avx2, 2>(x, n, wt, ldw, c, ldc, sum)
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; the extents as [`super::check_d_weight`] asserts.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn d_weight_t(
        x: &Columns,
        n: usize,
        a: *const f32,
        lda: usize,
        gt: *mut f32,
        ldg: usize,
        sum: *const f32,
    ) {
        // SAFETY: as this function's; AVX2 and FMA are enabled here.
        unsafe { super::d_weight_t::<crate::kernels::simd::Avx2, 4>(x, n, a, lda, gt, ldg, sum) }
    }

    /// The 8 columns of 8 rows: unpack pairs of rows, shuffle pairs of
    /// pairs, then swap 128-bit halves.
    #[target_feature(enable = "avx2")]
    fn transpose8(v: [__m256; 8]) -> [__m256; 8] {
        // t = [lo01, hi01, lo23, hi23, lo45, hi45, lo67, hi67]
        let t: [__m256; 8] = std::array::from_fn(|i| {
            let (a, b) = (v[i / 2 * 2], v[i / 2 * 2 + 1]);
            if i % 2 == 0 {
                _mm256_unpacklo_ps(a, b)
            } else {
                _mm256_unpackhi_ps(a, b)
            }
        });
        // s[j] holds columns j | j + 4 of rows 0-3, s[j + 4] those of rows 4-7.
        let s = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        std::array::from_fn(|c| {
            if c < 4 {
                _mm256_permute2f128_ps::<0x20>(s[c], s[c + 4])
            } else {
                _mm256_permute2f128_ps::<0x31>(s[c - 4], s[c])
            }
        })
    }

    /// Wᵀ from W, in 8×8 tiles and single values at the edges.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; the extents as
    /// [`super::check_transpose`] asserts; Wᵀ must not overlap W.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn transpose(rows: usize, cols: usize, w: *const f32, ld: usize, wt: *mut f32, ldt: usize) {
        let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
        unsafe {
            // Eight rows of Wᵀ at a time, written from start to end.
            for c0 in (0..c8).step_by(8) {
                for r0 in (0..r8).step_by(8) {
                    let v: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(w.add((r0 + i) * ld + c0)));
                    for (j, t) in transpose8(v).into_iter().enumerate() {
                        _mm256_storeu_ps(wt.add((c0 + j) * ldt + r0), t);
                    }
                }
            }
            for c in 0..cols {
                let rows_done = if c < c8 { r8 } else { 0 };
                for r in rows_done..rows {
                    *wt.add(c * ldt + r) = *w.add(r * ld + c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Kernels, TransposeFn};
    use crate::linalg::random_vec;
    use crate::rng::Rng;

    /// Rows that are mostly zero, as MNIST's are, with a few −0s and a NaN-free mix.
    fn sparse_rows(rows: usize, d: usize, rng: &mut Rng) -> Vec<f32> {
        random_vec::<f32>(rows * d, rng)
            .into_iter()
            .enumerate()
            .map(|(i, v)| match i % 7 {
                0 | 3 => v.abs(),
                5 => -0.0,
                _ => 0.0,
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn rows_and_columns_hold_every_nonzero_in_order() {
        let mut rng = Rng::new(30, 0);
        for &(rows, d) in &[(9, 37), (4, 16), (1, 5), (3, 784)] {
            let x = sparse_rows(rows, d, &mut rng);
            let mut want = Rows::default();
            want.set(&x, rows, d, 0.0);
            assert_eq!(want.nonzeros(), x.iter().filter(|v| **v != 0.0).count());
            let mut builds = vec![("portable", want.clone())];
            for kern in Kernels::available() {
                if let Some(s) = kern.sparse {
                    let mut r = Rows::default();
                    r.clear(d, 0.0);
                    for row in x.chunks_exact(d) {
                        (s.push_row)(&mut r, row);
                    }
                    builds.push((kern.level.name(), r));
                }
            }
            for (name, r) in &builds {
                let mut back = vec![0.0f32; rows * d];
                for b in 0..rows {
                    let (cols, values) = r.row(b);
                    assert!(
                        cols.windows(2).all(|p| p[0] < p[1]),
                        "{name}: row {b} not ascending"
                    );
                    for (&k, &v) in cols.iter().zip(values) {
                        back[b * d + k as usize] = v;
                    }
                }
                let nz = |x: &[f32]| {
                    x.iter()
                        .map(|v| if *v == 0.0 { 0 } else { v.to_bits() })
                        .collect::<Vec<_>>()
                };
                assert_eq!(nz(&back), nz(&x), "{name} {rows}x{d}");
                let mut cols = Columns::default();
                cols.set(r);
                let mut back = vec![0.0f32; rows * d];
                for k in 0..d {
                    let (rs, values) = cols.column(k);
                    assert!(
                        rs.windows(2).all(|p| p[0] < p[1]),
                        "{name}: column {k} not ascending"
                    );
                    for (&b, &v) in rs.iter().zip(values) {
                        back[b as usize * d + k] = v;
                    }
                }
                assert_eq!(nz(&back), nz(&x), "{name} {rows}x{d} by columns");
            }
        }
    }

    #[test]
    fn every_transpose_swaps_rows_and_columns() {
        let levels: Vec<(&str, TransposeFn)> = std::iter::once(("portable", transpose as TransposeFn))
            .chain(
                Kernels::available()
                    .into_iter()
                    .filter_map(|k| Some((k.level.name(), k.sparse?.transpose))),
            )
            .collect();
        for (name, t) in levels {
            for &(rows, cols) in &[(11, 19), (16, 24), (1, 9), (128, 784), (0, 3)] {
                let w: Vec<f32> = (0..rows * (cols + 2)).map(|i| i as f32).collect();
                let mut wt = vec![f32::NAN; cols * (rows + 1)];
                t(rows, cols, &w, cols + 2, &mut wt, rows + 1);
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(
                            wt[c * (rows + 1) + r],
                            w[r * (cols + 2) + c],
                            "{name} {rows}x{cols}"
                        );
                    }
                }
                // The gaps between Wᵀ's rows are untouched.
                for c in 0..cols {
                    assert!(wt[c * (rows + 1) + rows].is_nan(), "{name} {rows}x{cols}");
                }
            }
        }
    }

    /// The sparse forward product gives the dense product's bits (summed over
    /// k in order); sparse ∂W gives the bits of the level's ∂W product.
    #[test]
    fn sparse_products_give_the_dense_bits() {
        let mut rng = Rng::new(31, 0);
        for kern in Kernels::available() {
            let Some(sparse) = kern.sparse else { continue };
            for &(rows, d, n) in &[
                (1, 1, 1),
                (5, 33, 17),
                (128, 784, 128),
                (7, 20, 70),
                (3, 16, 64),
                (200, 40, 130),
            ] {
                let x = sparse_rows(rows, d, &mut rng);
                let mut r = Rows::default();
                r.clear(d, 0.0);
                for row in x.chunks_exact(d) {
                    (sparse.push_row)(&mut r, row);
                }
                let (ldw, ldc) = (n + 3, n + 1);
                let wt = random_vec(d * ldw, &mut rng);
                let c0 = random_vec(rows * ldc, &mut rng);
                let mut want = c0.clone();
                forward_portable(rows, d, n, &x, &wt, ldw, &mut want, ldc);
                let mut cols = Columns::default();
                cols.set(&r);
                let mut got = c0.clone();
                (sparse.forward)(&cols, n, &wt, ldw, &mut got, ldc, &[]);
                assert!(bits(&got) == bits(&want), "{} forward {rows}x{d}x{n}", kern.level);

                // ∂W: δ [rows, n] at stride n + 2; Gᵀ [d, n] at stride n + 4.
                let delta = random_vec(rows * (n + 2), &mut rng);
                let mut gt = vec![f32::NAN; d * (n + 4)];
                (sparse.d_weight_t)(&cols, n, &delta, n + 2, &mut gt, n + 4, &[]);
                let mut g = vec![f32::NAN; n * d];
                (kern.gemm_tn)(n, d, rows, &delta, n + 2, &x, d, &mut g, d);
                for j in 0..n {
                    for k in 0..d {
                        assert_eq!(
                            gt[k * (n + 4) + j].to_bits(),
                            g[j * d + k].to_bits(),
                            "{} ∂W {rows}x{d}x{n}",
                            kern.level
                        );
                    }
                }
            }
        }
    }

    /// With a background c ≠ 0 the products are X·Wᵀ and δᵀ·X again, within
    /// f32 rounding of f64 sums.
    #[test]
    fn sparse_products_with_a_background_are_the_products() {
        let mut rng = Rng::new(32, 0);
        for kern in Kernels::available() {
            let Some(sparse) = kern.sparse else { continue };
            for &(rows, d, n, c) in &[(5, 33, 17, -1.0f32), (64, 784, 128, -0.42), (3, 16, 70, 0.5)] {
                let x: Vec<f32> = sparse_rows(rows, d, &mut rng)
                    .into_iter()
                    .map(|v| v + c)
                    .collect();
                let mut r = Rows::default();
                r.clear(d, c);
                for row in x.chunks_exact(d) {
                    (sparse.push_row)(&mut r, row);
                }
                assert!(r.nonzeros() < rows * d / 2, "most inputs are the background");
                let wt = random_vec(d * n, &mut rng);
                let sum: Vec<f32> = (0..n).map(|j| (0..d).map(|k| wt[k * n + j]).sum()).collect();
                let mut cols = Columns::default();
                cols.set(&r);
                let mut y = vec![0.0f32; rows * n];
                (sparse.forward)(&cols, n, &wt, n, &mut y, n, &sum);
                let delta = random_vec(rows * n, &mut rng);
                let dsum: Vec<f32> = (0..n)
                    .map(|j| (0..rows).map(|b| delta[b * n + j]).sum())
                    .collect();
                let mut gt = vec![0.0f32; d * n];
                (sparse.d_weight_t)(&cols, n, &delta, n, &mut gt, n, &dsum);
                let tol = |terms: usize| 1e-5 * (terms as f64).sqrt() * 8.0;
                for b in 0..rows {
                    for j in 0..n {
                        let want: f64 = (0..d).map(|k| x[b * d + k] as f64 * wt[k * n + j] as f64).sum();
                        assert!(
                            (y[b * n + j] as f64 - want).abs() <= tol(d) * (1.0 + want.abs()),
                            "{} forward",
                            kern.level
                        );
                    }
                }
                for k in 0..d {
                    for j in 0..n {
                        let want: f64 = (0..rows)
                            .map(|b| x[b * d + k] as f64 * delta[b * n + j] as f64)
                            .sum();
                        assert!(
                            (gt[k * n + j] as f64 - want).abs() <= tol(rows) * (1.0 + want.abs()),
                            "{} ∂W",
                            kern.level
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sparse_products_refuse_short_slices() {
        for kern in Kernels::available() {
            let Some(sparse) = kern.sparse else { continue };
            let mut r = Rows::default();
            r.set(&[1.0, 0.0, 2.0, 0.0, 3.0, 0.0], 2, 3, 0.0);
            assert!(std::panic::catch_unwind(|| (sparse.push_row)(&mut r.clone(), &[1.0, 2.0])).is_err());
            let mut cols = Columns::default();
            cols.set(&r);
            let short = [0.0f32; 8];
            let mut out = [0.0f32; 8];
            assert!(
                std::panic::catch_unwind(|| (sparse.forward)(&cols, 4, &short, 4, &mut out.clone(), 4, &[]))
                    .is_err()
            );
            assert!(
                std::panic::catch_unwind(|| (sparse.d_weight_t)(
                    &cols,
                    4,
                    &short,
                    4,
                    &mut out.clone(),
                    4,
                    &[]
                ))
                .is_err()
            );
            // A background needs its sums.
            let mut r = Rows::default();
            r.set(&[1.0, 0.5, 2.0, 0.5, 3.0, 0.5], 2, 3, 0.5);
            let mut cols = Columns::default();
            cols.set(&r);
            let wt = [0.0f32; 12];
            assert!(
                std::panic::catch_unwind(|| (sparse.forward)(
                    &cols,
                    4,
                    &wt,
                    4,
                    &mut out.clone(),
                    4,
                    &[0.0; 3]
                ))
                .is_err()
            );
            assert!(
                std::panic::catch_unwind(move || (sparse.transpose)(3, 4, &short, 4, &mut out, 3)).is_err()
            );
        }
    }
}
