//! All of a model's parameters live in one flat buffer; a [`Layout`] names the
//! tensors in it (in order, with shapes). Gradients use a buffer of the same
//! layout, so an optimiser is one loop over two slices.

/// One named tensor of a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub fn new(name: &str, shape: &[usize]) -> Self {
        TensorSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The tensors of a flat parameter buffer, in storage order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub tensors: Vec<TensorSpec>,
}

impl Layout {
    /// Total number of scalars.
    pub fn len(&self) -> usize {
        self.tensors.iter().map(TensorSpec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (spec, range in the flat buffer) of each tensor.
    pub fn ranges(&self) -> impl Iterator<Item = (&TensorSpec, std::ops::Range<usize>)> {
        self.tensors.iter().scan(0, |offset, t| {
            let start = *offset;
            *offset += t.len();
            Some((t, start..*offset))
        })
    }
}

/// Splits `buf` into consecutive views of the given lengths.
pub fn split<S, const N: usize>(mut buf: &[S], lens: [usize; N]) -> [&[S]; N] {
    lens.map(|len| {
        let (head, tail) = buf.split_at(len);
        buf = tail;
        head
    })
}

/// Splits `buf` into consecutive mutable views of the given lengths.
pub fn split_mut<S, const N: usize>(mut buf: &mut [S], lens: [usize; N]) -> [&mut [S]; N] {
    lens.map(|len| {
        let (head, tail) = std::mem::take(&mut buf).split_at_mut(len);
        buf = tail;
        head
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_splits_agree() {
        let layout = Layout {
            tensors: vec![TensorSpec::new("a", &[2, 3]), TensorSpec::new("b", &[3])],
        };
        assert_eq!(layout.len(), 9);
        let ranges: Vec<_> = layout.ranges().map(|(_, r)| r).collect();
        assert_eq!(ranges, vec![0..6, 6..9]);
        let mut buf: Vec<u32> = (0..9).collect();
        let [a, b] = split(&buf, [6, 3]);
        assert_eq!((a.len(), b[0]), (6, 6));
        let [a, b] = split_mut(&mut buf, [6, 3]);
        a[0] = 100;
        b[2] = 200;
        assert_eq!((buf[0], buf[8]), (100, 200));
    }
}
