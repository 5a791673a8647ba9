//! Preprocessing and mini-batches.
//!
//! Pixels p ∈ {0..255} become x = p/255 (`unit`), x = (p/255 − 0.1307)/0.3081
//! (`standard`, torchvision's MNIST normalisation: the training set's mean and
//! standard deviation), or x = (p/255 − 0.5)/0.5 (`symmetric`, [−1, 1]). Each epoch visits the samples in a fresh order from the
//! project's seeded PRNG; batches are gathered into buffers sized once.

use super::mnist::{CLASSES, PIXELS, RawSplit};
use crate::layers::dropout::Noise;
use crate::rng::Rng;

/// Mean of MNIST's training pixels after scaling to [0, 1].
pub const MNIST_MEAN: f32 = 0.1307;
/// Standard deviation of MNIST's training pixels after scaling to [0, 1].
pub const MNIST_STD: f32 = 0.3081;

/// Input normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// (p/255 − 0.1307) / 0.3081
    Standard,
    /// p/255
    Unit,
    /// (p/255 − 0.5) / 0.5, i.e. [−1, 1]
    Symmetric,
}

impl Normalize {
    /// (mean, std) subtracted and divided after scaling to [0, 1].
    pub fn constants(self) -> (f32, f32) {
        match self {
            Normalize::Standard => (MNIST_MEAN, MNIST_STD),
            Normalize::Unit => (0.0, 1.0),
            Normalize::Symmetric => (0.5, 0.5),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Normalize::Standard => "standard",
            Normalize::Unit => "unit",
            Normalize::Symmetric => "symmetric",
        }
    }

    /// Lookup table from pixel value to input value.
    ///
    /// ```
    /// use scratchnet::data::batches::Normalize;
    /// let t = Normalize::Symmetric.table();
    /// assert_eq!((t[0], t[255]), (-1.0, 1.0));
    /// assert_eq!(Normalize::Unit.table()[51], 0.2);
    /// ```
    pub fn table(self) -> [f32; 256] {
        let (mean, std) = self.constants();
        std::array::from_fn(|p| (p as f32 / 255.0 - mean) / std)
    }
}

/// A split ready for training: normalised inputs and labels.
#[derive(Clone, Debug)]
pub struct Samples {
    /// `len × dim` inputs, row-major.
    pub x: Vec<f32>,
    pub y: Vec<u8>,
    pub dim: usize,
}

impl Samples {
    pub fn from_raw(raw: &RawSplit, normalize: Normalize) -> Self {
        let table = normalize.table();
        Samples {
            x: raw.pixels.iter().map(|&p| table[p as usize]).collect(),
            y: raw.labels.clone(),
            dim: PIXELS,
        }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Input row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// Number of samples of each class.
    pub fn class_counts(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        for &l in &self.y {
            counts[l as usize] += 1;
        }
        counts
    }
}

/// The order in which an epoch visits the samples, cut into mini-batches.
/// The last batch holds the remainder when the batch size does not divide the
/// number of samples.
#[derive(Clone, Debug)]
pub struct Batches {
    order: Vec<u32>,
    batch_size: usize,
}

impl Batches {
    /// Sequential order over `n` samples.
    pub fn new(n: usize, batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch size must be positive");
        Batches {
            order: (0..n as u32).collect(),
            batch_size,
        }
    }

    /// Draws a fresh order for the next epoch (Fisher–Yates).
    pub fn shuffle(&mut self, rng: &mut Rng) {
        rng.shuffle(&mut self.order);
    }

    pub fn count(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Sample indices of batch `b`.
    pub fn indices(&self, b: usize) -> &[u32] {
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        &self.order[start..end]
    }
}

/// Asks for the cache lines of the rows `indices` of `data` to be brought into
/// this core's cache (a hint: no effect on any result), so that a later
/// [`gather`] of them finds them there instead of in memory.
pub fn prefetch(data: &Samples, indices: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    for &i in indices {
        for line in data.row(i as usize).chunks(16) {
            // SAFETY: a prefetch never faults, and the address is inside the row.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(line.as_ptr().cast())
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, indices);
}

/// Copies the inputs of the samples `indices` of the batch (see
/// [`Batch::input`]) into `x` and their labels into `y` (buffers at least
/// `indices.len()` rows long); returns the number of samples.
pub fn gather(batch: &Batch, indices: &[u32], x: &mut [f32], y: &mut [u8]) -> usize {
    let d = batch.train.dim;
    for ((row, label), &i) in x.chunks_exact_mut(d).zip(y.iter_mut()).zip(indices) {
        batch.input(i, row);
        *label = batch.train.y[i as usize];
    }
    indices.len()
}

/// PRNG stream of the random translations (see [`crate::train`] for the others).
pub const SHIFT_STREAM: u64 = 4;

/// The `side × side` image `src` (row-major) moved `dy` rows down and `dx`
/// columns right, into `out`; what moves in from outside repeats the nearest
/// edge pixel:
///
/// out\[r\]\[c\] = src\[clamp(r − dy)\]\[clamp(c − dx)\], clamp(v) = min(max(v, 0), side − 1).
///
/// (MNIST's digits sit in the middle 20×20 of their 28×28 images, so for
/// moves up to 4 pixels the repeated edge is background.)
///
/// ```
/// use scratchnet::data::batches::shift_image;
/// let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let mut out = [0.0; 9];
/// shift_image(&src, 3, 1, -1, &mut out);
/// assert_eq!(out, [2.0, 3.0, 3.0, 2.0, 3.0, 3.0, 5.0, 6.0, 6.0]);
/// ```
pub fn shift_image(src: &[f32], side: usize, dy: isize, dx: isize, out: &mut [f32]) {
    let last = side as isize - 1;
    let clamp = |v: isize| v.clamp(0, last) as usize;
    for (r, row) in out.chunks_exact_mut(side).take(side).enumerate() {
        let from = &src[clamp(r as isize - dy) * side..][..side];
        for (c, o) in row.iter_mut().enumerate() {
            *o = from[clamp(c as isize - dx)];
        }
    }
}

/// One batch of a training step: which samples, and what the step needs to
/// know about them.
pub struct Batch<'a> {
    pub train: &'a Samples,
    /// Indices in `train` of the batch's samples.
    pub indices: &'a [u32],
    /// Indices of the next batch of the epoch (empty for the last): a step may
    /// start fetching them from memory while it computes.
    pub next: &'a [u32],
    /// ∂L/∂z scale of the loss reduction for the whole batch.
    pub scale: f32,
    /// Dropout rate of this step.
    pub dropout: f32,
    /// Largest random translation of the images, in pixels (0: none).
    pub shift: usize,
    /// The run's seed and the global step number, which key the dropout masks
    /// and the translations.
    pub seed: u64,
    pub step: u64,
}

impl Batch<'_> {
    /// Writes the input of training sample `i` into `out` (`dim` long): its
    /// row, or with `shift` = N > 0 its image (`dim` = side², side × side)
    /// moved by [`shift_image`] by (dy, dx) drawn uniformly from [−N, N]², a
    /// draw keyed on the seed, the step and `i` (so the same for any number of
    /// threads).
    pub fn input(&self, i: u32, out: &mut [f32]) {
        let row = self.train.row(i as usize);
        if self.shift == 0 {
            out.copy_from_slice(row);
            return;
        }
        let mut rng = Rng::keyed(self.seed, &[SHIFT_STREAM, self.step, i as u64]);
        let n = self.shift as u64;
        let dy = rng.below(2 * n + 1) as isize - n as isize;
        let dx = rng.below(2 * n + 1) as isize - n as isize;
        shift_image(row, self.train.dim.isqrt(), dy, dx, out);
    }

    /// The dropout noise of the samples `ids` (a part of `indices`).
    pub fn noise<'i>(&self, ids: &'i [u32]) -> Noise<'i> {
        Noise {
            rate: self.dropout,
            seed: self.seed,
            step: self.step,
            ids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_constants() {
        let s = Normalize::Standard.table();
        assert!((s[0] - (-0.1307 / 0.3081)).abs() < 1e-6);
        assert!((s[255] - (1.0 - 0.1307) / 0.3081).abs() < 1e-6);
        let u = Normalize::Unit.table();
        assert_eq!(u[0], 0.0);
        assert_eq!(u[255], 1.0);
    }

    #[test]
    fn batches_cover_every_sample_once_with_partial_last() {
        let mut b = Batches::new(10, 4);
        assert_eq!(b.count(), 3);
        b.shuffle(&mut Rng::new(3, 0));
        let sizes: Vec<usize> = (0..b.count()).map(|i| b.indices(i).len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        let mut seen: Vec<u32> = (0..b.count()).flat_map(|i| b.indices(i).to_vec()).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn shuffles_are_seeded_and_differ_between_epochs() {
        let mut a = Batches::new(100, 10);
        let mut b = Batches::new(100, 10);
        let (mut ra, mut rb) = (Rng::new(5, 1), Rng::new(5, 1));
        a.shuffle(&mut ra);
        b.shuffle(&mut rb);
        assert_eq!(a.indices(0), b.indices(0));
        let first = a.indices(0).to_vec();
        a.shuffle(&mut ra);
        assert_ne!(a.indices(0), &first[..]);
    }

    fn batch<'a>(train: &'a Samples, indices: &'a [u32], shift: usize, step: u64) -> Batch<'a> {
        Batch {
            train,
            indices,
            next: &[],
            scale: 1.0,
            dropout: 0.0,
            shift,
            seed: 3,
            step,
        }
    }

    #[test]
    fn gather_copies_rows_and_labels() {
        let data = Samples {
            x: (0..12).map(|v| v as f32).collect(),
            y: vec![7, 8, 9],
            dim: 4,
        };
        let mut x = vec![0.0; 8];
        let mut y = vec![0; 2];
        assert_eq!(gather(&batch(&data, &[2, 0], 0, 0), &[2, 0], &mut x, &mut y), 2);
        assert_eq!(x, vec![8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(y, vec![9, 7]);
    }

    #[test]
    fn a_shift_moves_the_image_and_repeats_its_edges() {
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut out = vec![0.0; 16];
        shift_image(&src, 4, 0, 0, &mut out);
        assert_eq!(out, src);
        shift_image(&src, 4, -2, 1, &mut out);
        #[rustfmt::skip]
        let want = [
            8.0, 8.0, 9.0, 10.0,
            12.0, 12.0, 13.0, 14.0,
            12.0, 12.0, 13.0, 14.0,
            12.0, 12.0, 13.0, 14.0,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn shifted_inputs_are_keyed_on_sample_and_step_and_stay_in_range() {
        // A 9×9 image with one bright pixel in the middle.
        let mut x = vec![0.0; 81 * 2];
        x[40] = 1.0;
        x[81 + 40] = 1.0;
        let data = Samples {
            x,
            y: vec![0, 1],
            dim: 81,
        };
        let place = |i: u32, step: u64| {
            let mut out = vec![0.0; 81];
            batch(&data, &[i], 2, step).input(i, &mut out);
            assert_eq!(out.iter().sum::<f32>(), 1.0, "the pixel stays inside");
            let at = out.iter().position(|&v| v == 1.0).unwrap();
            let (dy, dx) = (at as isize / 9 - 4, at as isize % 9 - 4);
            assert!(dy.abs() <= 2 && dx.abs() <= 2, "moved ({dy}, {dx})");
            (dy, dx)
        };
        assert_eq!(place(0, 5), place(0, 5));
        let moves: std::collections::HashSet<_> = (0..200).map(|s| place(0, s)).collect();
        assert_eq!(moves.len(), 25, "every move in [-2, 2]² is drawn");
        let other: Vec<_> = (0..20).map(|s| place(1, s)).collect();
        assert_ne!(other, (0..20).map(|s| place(0, s)).collect::<Vec<_>>());
    }
}
