//! Accuracy and the confusion matrix.

use crate::data::mnist::CLASSES;

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
