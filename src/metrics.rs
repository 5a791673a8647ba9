//! Accuracy and the confusion matrix.

use crate::data::mnist::CLASSES;

/// The 95 % Wilson score interval of a proportion of `k` successes in `n`
/// trials: (p̂ + z²/2n ± z·√(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n), z = 1.96.
/// Unlike p̂ ± z·√(p̂(1 − p̂)/n) it stays inside [0, 1] and is not empty at
/// p̂ = 0 or 1. (0, 1) for n = 0.
///
/// ```
/// let (lo, hi) = scratchnet::metrics::wilson_interval(9_600, 10_000);
/// assert!((lo - 0.9560).abs() < 1e-4 && (hi - 0.9637).abs() < 1e-4);
/// ```
pub fn wilson_interval(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (n, p) = (n as f64, k as f64 / n as f64);
    let d = 1.0 + Z * Z / n;
    let centre = (p + Z * Z / (2.0 * n)) / d;
    let half = Z * (p * (1.0 - p) / n + Z * Z / (4.0 * n * n)).sqrt() / d;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// `n` with a comma between thousands: 10,000.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A model's answers on a labelled set: the confusion matrix and the mean
/// cross-entropy loss.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub confusion: Confusion,
    /// Mean of −log softmax(z)ₜ over the samples.
    pub loss: f64,
}

impl Evaluation {
    pub fn accuracy(&self) -> f64 {
        self.confusion.accuracy()
    }
}

/// Counts of (true class, predicted class) over a data set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    /// `counts[true][predicted]`
    pub counts: [[usize; CLASSES]; CLASSES],
}

impl Confusion {
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    /// Adds another matrix's counts.
    pub fn merge(&mut self, other: &Confusion) {
        for (row, o) in self.counts.iter_mut().zip(&other.counts) {
            for (a, b) in row.iter_mut().zip(o) {
                *a += b;
            }
        }
    }

    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    pub fn correct(&self) -> usize {
        (0..CLASSES).map(|i| self.counts[i][i]).sum()
    }

    /// Fraction classified correctly.
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.total().max(1) as f64
    }

    /// Accuracy within each true class (recall); NaN for an empty class.
    pub fn per_class_accuracy(&self) -> [f64; CLASSES] {
        std::array::from_fn(|i| {
            let n: usize = self.counts[i].iter().sum();
            if n == 0 {
                f64::NAN
            } else {
                self.counts[i][i] as f64 / n as f64
            }
        })
    }

    /// A text table: rows are true classes, columns predictions.
    pub fn table(&self, names: &[&str; CLASSES]) -> String {
        let width = names.iter().map(|n| n.len()).max().unwrap_or(1).max(5);
        let mut out = format!("{:>width$} | predicted\n", "true");
        out.push_str(&format!("{:>width$} |", ""));
        for i in 0..CLASSES {
            out.push_str(&format!(" {i:>5}"));
        }
        out.push('\n');
        for (i, row) in self.counts.iter().enumerate() {
            out.push_str(&format!("{:>width$} |", names[i]));
            for c in row {
                out.push_str(&format!(" {c:>5}"));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values from the formula evaluated in f64 by hand (Python).
    #[test]
    fn wilson_interval_matches_golden_values() {
        let close = |(a, b): (f64, f64), (x, y): (f64, f64)| (a - x).abs() < 1e-12 && (b - y).abs() < 1e-12;
        assert!(close(
            wilson_interval(9906, 10000),
            (0.988_511_309_046_938_6, 0.992_311_911_751_753_6)
        ));
        assert!(close(wilson_interval(0, 10), (0.0, 0.277_532_799_862_889_2)));
        assert!(close(wilson_interval(10, 10), (0.722_467_200_137_110_7, 1.0)));
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
        assert_eq!(thousands(9906), "9,906");
        assert_eq!(thousands(10000), "10,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn accuracy_and_per_class() {
        let mut c = Confusion::default();
        c.add(0, 0);
        c.add(0, 1);
        c.add(1, 1);
        c.add(2, 2);
        assert_eq!(c.total(), 4);
        assert_eq!(c.accuracy(), 0.75);
        let p = c.per_class_accuracy();
        assert_eq!((p[0], p[1], p[2]), (0.5, 1.0, 1.0));
        assert!(p[3].is_nan());
        assert!(
            c.table(&["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
                .contains("    1     1")
        );
    }
}
