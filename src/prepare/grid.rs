//! A grey image as a grid of `f32` in 0–1, and the few image operations the
//! preparation needs: an area-average shrink, separable minimum, maximum and
//! box filters, Otsu's threshold, and 8-connected components.

/// A `w`×`h` grid of grey values, row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub w: usize,
    pub h: usize,
    pub v: Vec<f32>,
}

impl Grid {
    pub fn new(w: usize, h: usize, fill: f32) -> Grid {
        Grid {
            w,
            h,
            v: vec![fill; w * h],
        }
    }

    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.v[y * self.w + x]
    }

    pub fn map(&self, f: impl Fn(f32) -> f32) -> Grid {
        Grid {
            w: self.w,
            h: self.h,
            v: self.v.iter().map(|&x| f(x)).collect(),
        }
    }

    /// Shrinks by the smallest whole factor that brings the longer side to at
    /// most `max_side`, each output pixel the mean of its block.
    pub fn shrink_to(&self, max_side: usize) -> Grid {
        let k = self.w.max(self.h).div_ceil(max_side.max(1));
        if k <= 1 {
            return self.clone();
        }
        let (w, h) = (self.w.div_ceil(k), self.h.div_ceil(k));
        let mut sum = vec![0.0f32; w * h];
        let mut count = vec![0u32; w * h];
        for y in 0..self.h {
            for x in 0..self.w {
                let i = (y / k) * w + x / k;
                sum[i] += self.at(x, y);
                count[i] += 1;
            }
        }
        let v = sum.iter().zip(&count).map(|(s, &c)| s / c as f32).collect();
        Grid { w, h, v }
    }

    /// The sorted values of the one-pixel border.
    pub fn border(&self) -> Vec<f32> {
        let mut b: Vec<f32> = (0..self.w)
            .flat_map(|x| [self.at(x, 0), self.at(x, self.h - 1)])
            .chain((0..self.h).flat_map(|y| [self.at(0, y), self.at(self.w - 1, y)]))
            .collect();
        b.sort_by(f32::total_cmp);
        b
    }

    /// Minimum over the (2r+1)×(2r+1) square around each pixel (erosion).
    pub fn min_filter(&self, r: usize) -> Grid {
        self.separable(r, |a, b| a.min(b))
    }

    /// Maximum over the (2r+1)×(2r+1) square around each pixel (dilation).
    pub fn max_filter(&self, r: usize) -> Grid {
        self.separable(r, |a, b| a.max(b))
    }

    /// Mean over the (2r+1)×(2r+1) square around each pixel, the square
    /// clipped at the edges.
    pub fn box_blur(&self, r: usize) -> Grid {
        let rows = self.lines(true, |line, out| mean_window(line, r, out));
        rows.lines(false, |line, out| mean_window(line, r, out))
    }

    fn separable(&self, r: usize, pick: fn(f32, f32) -> f32) -> Grid {
        let rows = self.lines(true, |line, out| extreme_window(line, r, pick, out));
        rows.lines(false, |line, out| extreme_window(line, r, pick, out))
    }

    /// Applies `f` to every row (`rows`) or every column.
    fn lines(&self, rows: bool, f: impl Fn(&[f32], &mut [f32])) -> Grid {
        let mut out = Grid::new(self.w, self.h, 0.0);
        let (n, len) = if rows { (self.h, self.w) } else { (self.w, self.h) };
        let mut line = vec![0.0f32; len];
        let mut res = vec![0.0f32; len];
        for i in 0..n {
            for (j, l) in line.iter_mut().enumerate() {
                *l = if rows { self.at(j, i) } else { self.at(i, j) };
            }
            f(&line, &mut res);
            for (j, &r) in res.iter().enumerate() {
                let k = if rows { i * self.w + j } else { j * self.w + i };
                out.v[k] = r;
            }
        }
        out
    }
}

/// `out[i]` = the `pick`-extreme of `line[i-r ..= i+r]` (clipped), by a
/// block decomposition (van Herk / Gil–Werman): O(n) whatever `r`.
fn extreme_window(line: &[f32], r: usize, pick: fn(f32, f32) -> f32, out: &mut [f32]) {
    let n = line.len();
    let k = 2 * r + 1;
    // g: running extreme from each block's start; h: from each block's end.
    let mut g = line.to_vec();
    let mut h = line.to_vec();
    for i in 1..n {
        if i % k != 0 {
            g[i] = pick(g[i - 1], line[i]);
        }
    }
    for i in (0..n.saturating_sub(1)).rev() {
        if (i + 1) % k != 0 {
            h[i] = pick(h[i + 1], line[i]);
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        let lo = i.saturating_sub(r);
        let hi = (i + r).min(n - 1);
        // [lo, hi] spans at most two blocks: h from lo to its block's end,
        // g from hi's block start to hi.
        *o = if hi - lo + 1 == k || lo / k != hi / k {
            pick(h[lo], g[hi])
        } else {
            line[lo..=hi].iter().copied().fold(line[lo], pick)
        };
    }
}

fn mean_window(line: &[f32], r: usize, out: &mut [f32]) {
    let n = line.len();
    let mut prefix = vec![0.0f64; n + 1];
    for (i, &v) in line.iter().enumerate() {
        prefix[i + 1] = prefix[i] + v as f64;
    }
    for (i, o) in out.iter_mut().enumerate() {
        let lo = i.saturating_sub(r);
        let hi = (i + r + 1).min(n);
        *o = ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
    }
}

/// Otsu's threshold of values in 0–1 over 256 bins: the level that
/// maximises the between-class variance. Returns (threshold, mean below,
/// mean above).
pub fn otsu(values: &[f32]) -> (f32, f32, f32) {
    let mut hist = [0u64; 256];
    for &v in values {
        hist[(v.clamp(0.0, 1.0) * 255.0).round() as usize] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &c)| i as f64 * c as f64).sum();
    let (mut best, mut best_t) = (-1.0f64, 0usize);
    let (mut w0, mut sum0) = (0.0f64, 0.0f64);
    for (t, &c) in hist.iter().enumerate().take(255) {
        w0 += c as f64;
        sum0 += t as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    let (mut n0, mut s0, mut n1, mut s1) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (i, &c) in hist.iter().enumerate() {
        if i <= best_t {
            n0 += c as f64;
            s0 += i as f64 * c as f64;
        } else {
            n1 += c as f64;
            s1 += i as f64 * c as f64;
        }
    }
    let mean = |s: f64, n: f64| if n > 0.0 { (s / n / 255.0) as f32 } else { 0.0 };
    ((best_t as f32 + 0.5) / 255.0, mean(s0, n0), mean(s1, n1))
}

/// The 8-connected components of `mask` (w×h): a label per pixel
/// (`u32::MAX` outside the mask) and each component's area.
pub fn components(mask: &[bool], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
    let mut label = vec![u32::MAX; w * h];
    let mut areas = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || label[start] != u32::MAX {
            continue;
        }
        let id = areas.len() as u32;
        let mut area = 0;
        label[start] = id;
        stack.push(start);
        while let Some(p) = stack.pop() {
            area += 1;
            let (x, y) = ((p % w) as isize, (p / w) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let q = ny as usize * w + nx as usize;
                    if mask[q] && label[q] == u32::MAX {
                        label[q] = id;
                        stack.push(q);
                    }
                }
            }
        }
        areas.push(area);
    }
    (label, areas)
}

/// A stroke's mean width in pixels, from the mask's area A and the number P
/// of pixel edges between mask and background: a stroke of width w and
/// length L has A ≈ wL and P ≈ 2L, so w ≈ 2A/P.
pub fn stroke_width(mask: &[bool], w: usize, h: usize) -> f32 {
    let (mut area, mut edges) = (0usize, 0usize);
    for y in 0..h {
        for x in 0..w {
            if !mask[y * w + x] {
                continue;
            }
            area += 1;
            let out = |nx: isize, ny: isize| {
                nx < 0
                    || ny < 0
                    || nx >= w as isize
                    || ny >= h as isize
                    || !mask[ny as usize * w + nx as usize]
            };
            let (x, y) = (x as isize, y as isize);
            edges += [out(x - 1, y), out(x + 1, y), out(x, y - 1), out(x, y + 1)]
                .iter()
                .filter(|&&o| o)
                .count();
        }
    }
    if edges == 0 {
        return 0.0;
    }
    2.0 * area as f32 / edges as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(g: &Grid, r: usize, pick: fn(f32, f32) -> f32) -> Grid {
        let mut out = g.clone();
        for y in 0..g.h {
            for x in 0..g.w {
                let mut m = g.at(x, y);
                for yy in y.saturating_sub(r)..=(y + r).min(g.h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(g.w - 1) {
                        m = pick(m, g.at(xx, yy));
                    }
                }
                out.v[y * g.w + x] = m;
            }
        }
        out
    }

    #[test]
    fn the_block_filters_equal_the_naive_square_windows() {
        let mut rng = crate::rng::Rng::new(3, 0);
        for (w, h) in [(1, 1), (7, 3), (13, 11), (30, 2)] {
            let g = Grid {
                w,
                h,
                v: (0..w * h).map(|_| rng.next_f64() as f32).collect(),
            };
            for r in [0, 1, 2, 5, 40] {
                assert_eq!(g.min_filter(r), naive(&g, r, f32::min), "{w}x{h} r={r}");
                assert_eq!(g.max_filter(r), naive(&g, r, f32::max), "{w}x{h} r={r}");
            }
        }
    }

    #[test]
    fn otsu_splits_two_levels_and_components_count_blobs() {
        let v: Vec<f32> = (0..100).map(|i| if i < 70 { 0.1 } else { 0.9 }).collect();
        let (t, lo, hi) = otsu(&v);
        assert!(t > 0.1 && t < 0.9, "{t}");
        assert!((lo - 0.1).abs() < 0.01 && (hi - 0.9).abs() < 0.01, "{lo} {hi}");
        // Two blobs, one touching the other only diagonally counts as one.
        let mut mask = vec![false; 25];
        for p in [0, 6, 12, 4, 9] {
            mask[p] = true;
        }
        let (_, areas) = components(&mask, 5, 5);
        assert_eq!(areas, vec![3, 2]);
        // A 2-wide bar, 10 long, measures about 2 wide.
        let bar: Vec<bool> = (0..12 * 4)
            .map(|i| (1..3).contains(&(i / 12)) && (1..11).contains(&(i % 12)))
            .collect();
        let sw = stroke_width(&bar, 12, 4);
        assert!((1.6..=2.0).contains(&sw), "{sw}");
    }
}
