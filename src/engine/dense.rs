//! A dense layer on the kernels: the textbook twin is `layers::dense` (the
//! same equations; tested against it in `engine::tests`).
//!
//! ```text
//! forward   Y[B,out] = X[B,in] · Wᵀ + b
//! backward  dX = dY · W,   dW = dYᵀ · X,   db = Σ_rows dY
//! ```
//! A layer with ten outputs uses the ten-output kernels (`kernels::dense10`),
//! any other the strided products (`kernels::gemm`); ∂X of a wider layer is a
//! general product (`linalg::matmul`). The first layer, whose inputs are
//! pixels and mostly 0, runs [`forward_input`]: on a level with a sparse
//! product (`kernels::sparse`) it skips the zeros.

use crate::data::batches::Samples;
use crate::kernels::Kernels;
use crate::kernels::dense10::OUTPUTS;
use crate::kernels::sparse::{Columns, Rows};
use crate::linalg::matmul;

/// What the first layer's sparse products need: the inputs by rows and by
/// columns, Wᵀ and ∂Wᵀ, and whether the last forward pass was sparse.
#[derive(Clone, Debug, Default)]
pub struct SparseInput {
    rows: Rows,
    cols: Columns,
    wt: Vec<f32>,
    gt: Vec<f32>,
    /// Σ_k Wᵀ[k, :] and Σ_b δ[b, :], for a background other than 0.
    sum: Vec<f32>,
    used: bool,
}

/// Rows per pass of the sparse forward product, each pass taking the sparse
/// path when its first row and the whole pass have at most half their inputs off the background.
pub const SPARSE_ROWS: usize = 256;

/// The first layer's inputs: rows side by side, or rows of a training set
/// read where they lie.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    Rows(&'a [f32]),
    Gather(&'a Samples, &'a [u32]),
}

impl<'a> Input<'a> {
    fn len(&self, dim: usize) -> usize {
        match self {
            Input::Rows(x) => x.len() / dim.max(1),
            Input::Gather(_, ids) => ids.len(),
        }
    }

    fn row(&self, b: usize, dim: usize) -> &'a [f32] {
        match *self {
            Input::Rows(x) => &x[b * dim..(b + 1) * dim],
            Input::Gather(train, ids) => train.row(ids[b] as usize),
        }
    }

    /// Rows `r` side by side: in place, or copied to the same rows of `scratch`.
    pub fn contiguous<'s>(&self, r: std::ops::Range<usize>, dim: usize, scratch: &'s mut [f32]) -> &'s [f32]
    where
        'a: 's,
    {
        match *self {
            Input::Rows(x) => &x[r.start * dim..r.end * dim],
            Input::Gather(..) => {
                let out = &mut scratch[r.start * dim..r.end * dim];
                for (b, row) in r.zip(out.chunks_exact_mut(dim.max(1))) {
                    row.copy_from_slice(self.row(b, dim));
                }
                out
            }
        }
    }
}

/// Y = X·Wᵀ + b for the first layer, whose inputs are pixels: on a level with
/// sparse products, each pass of up to [`SPARSE_ROWS`] rows whose first row
/// and whole have at most half their inputs off the background (the pass's
/// first input) runs the sparse product (the bits of the dense product
/// summed over the inputs in order, `kernels::sparse`); the other passes, and
/// every pass on other levels, run `dense(rows, x, y)` on their rows side by
/// side (gathered into the same rows of `scratch` when `input` gathers).
#[allow(clippy::too_many_arguments)]
pub fn forward_input(
    k: &Kernels,
    input: Input,
    n_in: usize,
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    s: &mut SparseInput,
    scratch: &mut [f32],
    mut dense: impl FnMut(usize, &[f32], &mut [f32]),
) {
    let (batch, n_out) = (input.len(n_in), b.len());
    s.used = false;
    let Some(sk) = k.sparse.filter(|_| n_in > 0 && n_out > 0 && batch > 0) else {
        return dense(
            batch,
            input.contiguous(0..batch, n_in, scratch),
            &mut y[..batch * n_out],
        );
    };
    let mut transposed = false;
    let mut all = true;
    for (pass, y) in y[..batch * n_out].chunks_mut(SPARSE_ROWS * n_out).enumerate() {
        let rows = pass * SPARSE_ROWS..pass * SPARSE_ROWS + y.len() / n_out;
        // The background: the pass's first input (a corner pixel), which the
        // density test below keeps honest.
        s.rows.clear(n_in, input.row(rows.start, n_in)[0]);
        // Dense inputs show in the first row already: stop reading them there.
        (sk.push_row)(&mut s.rows, input.row(rows.start, n_in));
        let sparse_start = s.rows.nonzeros() * 2 <= n_in;
        if sparse_start {
            for r in rows.start + 1..rows.end {
                (sk.push_row)(&mut s.rows, input.row(r, n_in));
            }
        }
        if !sparse_start || s.rows.nonzeros() * 2 > rows.len() * n_in {
            all = false;
            dense(rows.len(), input.contiguous(rows, n_in, scratch), y);
            continue;
        }
        if !transposed {
            s.wt.resize(n_in * n_out, 0.0);
            (sk.transpose)(n_out, n_in, w, n_in, &mut s.wt, n_out);
            // Σ_k Wᵀ[k, j] in order of k, for the background's term.
            s.sum.clear();
            s.sum.resize(n_out, 0.0);
            for row in s.wt.chunks_exact(n_out) {
                for (acc, &v) in s.sum.iter_mut().zip(row) {
                    *acc += v;
                }
            }
            transposed = true;
        }
        for row in y.chunks_exact_mut(n_out) {
            row.copy_from_slice(b);
        }
        s.cols.set(&s.rows);
        (sk.forward)(&s.cols, n_out, &s.wt, n_out, y, n_out, &s.sum);
    }
    s.used = all && batch <= SPARSE_ROWS;
}

/// Whether the last [`forward_input`] ran the sparse product throughout (so
/// that [`d_weight_input`] can use its inputs).
pub fn sparse_used(s: &SparseInput) -> bool {
    s.used
}

/// ∂W `[n, d]` = δᵀ·X for the first layer after [`forward_input`] (δ `[B, n]`
/// at stride `ld`), by the sparse ∂W product when that pass was sparse
/// throughout; returns false, leaving ∂W untouched, when it was not. The
/// bits are those of the level's `gemm_tn` either way.
pub fn d_weight_input(
    k: &Kernels,
    d_y: &[f32],
    ld: usize,
    n: usize,
    d_w: &mut [f32],
    s: &mut SparseInput,
) -> bool {
    let Some(sk) = k.sparse.filter(|_| s.used) else {
        return false;
    };
    // The forward pass left X by columns in s.cols.
    let (d, rows) = (s.rows.dim(), s.rows.rows());
    s.gt.resize(d * n, 0.0);
    s.sum.clear();
    s.sum.resize(n, 0.0);
    if s.rows.background() != 0.0 {
        // Σ_b δ[b, j] in order of b, for the background's term.
        for row in d_y.chunks(ld).take(rows) {
            for (acc, &v) in s.sum.iter_mut().zip(&row[..n]) {
                *acc += v;
            }
        }
    }
    (sk.d_weight_t)(&s.cols, n, d_y, ld, &mut s.gt, n, &s.sum);
    (sk.transpose)(d, n, &s.gt, n, d_w, d);
    true
}

/// Y = X·Wᵀ + b for `batch` rows.
pub fn forward(k: &Kernels, batch: usize, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    let (n_out, n_in) = (b.len(), x.len() / batch.max(1));
    // Start each output row from the bias, then accumulate the product.
    for row in y.chunks_exact_mut(n_out) {
        row.copy_from_slice(b);
    }
    if n_out == OUTPUTS {
        (k.dense10_forward)(batch, x, w, y);
    } else {
        (k.gemm_nt)(batch, n_out, n_in, x, n_in, w, n_in, y, n_out);
    }
}

/// Writes dW and db; writes dX when asked (the first layer does not need it).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    k: &Kernels,
    batch: usize,
    x: &[f32],
    w: &[f32],
    d_y: &[f32],
    d_x: Option<&mut [f32]>,
    d_w: &mut [f32],
    d_b: &mut [f32],
) {
    let (n_out, n_in) = (d_b.len(), x.len() / batch.max(1));
    if n_out == OUTPUTS {
        (k.dense10_d_weight)(batch, x, d_y, d_w);
    } else {
        (k.gemm_tn)(n_out, n_in, batch, d_y, n_out, x, n_in, d_w, n_in);
    }
    d_b.fill(0.0);
    for row in d_y.chunks_exact(n_out) {
        for (acc, &g) in d_b.iter_mut().zip(row) {
            *acc += g;
        }
    }
    if let Some(d_x) = d_x {
        backward_input(k, batch, w, d_y, d_x);
    }
}

/// dX = dY·W alone (each row of dX from its row of dY only).
pub fn backward_input(k: &Kernels, batch: usize, w: &[f32], d_y: &[f32], d_x: &mut [f32]) {
    let n_out = d_y.len() / batch.max(1);
    let n_in = w.len() / n_out.max(1);
    if n_out == OUTPUTS {
        (k.dense10_d_input)(batch, d_y, w, d_x);
    } else {
        matmul(batch, n_out, n_in, d_y, w, 0.0, d_x);
    }
}
