//! The pictures of a trained model, as PNG and SVG files
//! ([`plot::save_picture`](crate::plot::save_picture)): the test-set
//! confusion matrix as a heatmap, per-class accuracy as bars, a gallery of
//! test images with their answers (`scratchnet eval --plots`), and weights
//! as tiles — the hidden units' input weights, the filters, the output
//! layer per class (`scratchnet inspect`). The web page draws the same
//! things from the same numbers.

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::data::mnist::{CLASSES, SIDE};
use crate::models::{ModelSpec, Net};
use crate::params::split;
use crate::plot::Picture;

/// Blue (negative), white (zero), red (positive) for `t` in −1..1.
pub fn diverging(t: f32) -> [u8; 3] {
    let a = t.abs().min(1.0);
    let mix = |from: f32, to: f32| (from + a * (to - from)).round() as u8;
    if t >= 0.0 {
        [mix(255.0, 178.0), mix(255.0, 24.0), mix(255.0, 43.0)]
    } else {
        [mix(255.0, 33.0), mix(255.0, 102.0), mix(255.0, 172.0)]
    }
}

/// An RGB image `w`×`h` enlarged `scale` times (nearest pixel).
fn enlarged(rgb: &[[u8; 3]], w: usize, h: usize, scale: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * scale * scale * 3);
    for y in 0..h * scale {
        for x in 0..w * scale {
            out.extend_from_slice(&rgb[(y / scale) * w + x / scale]);
        }
    }
    out
}

fn fail<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

fn blit<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    rgb: &[[u8; 3]],
    (w, h): (usize, usize),
    scale: usize,
) -> Result<()> {
    let buf = enlarged(rgb, w, h, scale);
    let size = ((w * scale) as u32, (h * scale) as u32);
    let element: BitMapElement<_> = BitMapElement::with_owned_buffer(at, size, buf)
        .ok_or_else(|| anyhow!("a bitmap of the wrong size"))?;
    root.draw(&element).map_err(fail)
}

fn text<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    at: (i32, i32),
    size: u32,
    centred: bool,
) -> Result<()> {
    let mut style = TextStyle::from(("sans-serif", size).into_font()).color(&BLACK);
    if centred {
        style = style.pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
    }
    root.draw_text(s, &style, at).map_err(fail)
}

const MARGIN: i32 = 20;

/// A titled grid of `count` cells of `cell` pixels, `columns` to a row:
/// its size (at least `min_width` wide) and the top-left corner of cell `k`.
struct Grid {
    cell: (i32, i32),
    columns: usize,
    count: usize,
    min_width: i32,
}

impl Grid {
    fn size(&self) -> (u32, u32) {
        let cols = self.columns.max(1).min(self.count.max(1));
        let rows = self.count.div_ceil(cols).max(1);
        (
            (2 * MARGIN + self.cell.0 * cols as i32).max(self.min_width) as u32,
            (TITLE + MARGIN + self.cell.1 * rows as i32) as u32,
        )
    }

    fn at(&self, k: usize) -> (i32, i32) {
        let cols = self.columns.max(1);
        (
            MARGIN + self.cell.0 * (k % cols) as i32,
            TITLE + self.cell.1 * (k / cols) as i32,
        )
    }
}
/// Room for a title of two lines.
const TITLE: i32 = 60;

/// A title's first line in 17 px, a second line (after `\n`) in 13 px.
fn heading<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str) -> Result<()> {
    let mut lines = title.lines();
    text(root, lines.next().unwrap_or(""), (MARGIN, 14), 17, false)?;
    if let Some(more) = lines.next() {
        text(root, more, (MARGIN, 36), 13, false)?;
    }
    Ok(())
}

/// The confusion matrix as a heatmap: rows true classes, columns predicted;
/// the diagonal green by the class's accuracy, the rest red by log count.
pub struct ConfusionHeatmap<'a> {
    pub counts: [[usize; CLASSES]; CLASSES],
    pub names: [&'a str; CLASSES],
    pub title: String,
}

const CELL: i32 = 52;

impl Picture for ConfusionHeatmap<'_> {
    fn size(&self) -> (u32, u32) {
        let side = (2 * MARGIN + 60 + CELL * CLASSES as i32 + 90) as u32;
        (side, side - 60 + TITLE as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(fail)?;
        heading(root, &self.title)?;
        let (x0, y0) = (MARGIN + 60, TITLE + 40);
        text(root, "predicted", (x0 + CELL * 5, TITLE + 6), 14, true)?;
        text(root, "true", (MARGIN + 10, y0 - 14), 14, true)?;
        let max_off = (0..CLASSES)
            .flat_map(|i| (0..CLASSES).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| self.counts[i][j])
            .max()
            .unwrap_or(0)
            .max(1);
        for (i, row) in self.counts.iter().enumerate() {
            let total: usize = row.iter().sum();
            let y = y0 + CELL * i as i32;
            text(root, self.names[i], (x0 - 24, y + CELL / 2), 14, true)?;
            for (j, &n) in row.iter().enumerate() {
                let x = x0 + CELL * j as i32;
                if i == 0 {
                    text(root, self.names[j], (x + CELL / 2, y0 - 14), 14, true)?;
                }
                let colour = if i == j {
                    let a = if total > 0 { n as f64 / total as f64 } else { 0.0 };
                    RGBColor(22, 163, 74).mix(0.25 + 0.6 * a)
                } else if n > 0 {
                    let a = ((1 + n) as f64).ln() / ((1 + max_off) as f64).ln();
                    RGBColor(220, 38, 38).mix(0.08 + 0.72 * a)
                } else {
                    WHITE.mix(1.0)
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + CELL - 2, y + CELL - 2)],
                    colour.filled(),
                ))
                .map_err(fail)?;
                text(
                    root,
                    &n.to_string(),
                    (x + CELL / 2 - 1, y + CELL / 2 - 1),
                    13,
                    true,
                )?;
            }
            let acc = if total > 0 {
                format!("{:.1} %", 100.0 * row[i] as f64 / total as f64)
            } else {
                "–".into()
            };
            text(
                root,
                &acc,
                (x0 + CELL * CLASSES as i32 + 45, y + CELL / 2),
                13,
                true,
            )?;
        }
        text(
            root,
            "accuracy",
            (x0 + CELL * CLASSES as i32 + 45, y0 - 14),
            13,
            true,
        )?;
        Ok(())
    }
}

/// Accuracy of each class as a bar, with its value.
pub struct ClassAccuracy<'a> {
    /// Fractions 0–1 (NaN for a class with no samples).
    pub accuracy: [f64; CLASSES],
    pub names: [&'a str; CLASSES],
    pub title: String,
}

impl Picture for ClassAccuracy<'_> {
    fn size(&self) -> (u32, u32) {
        (720, 420)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(fail)?;
        heading(root, &self.title)?;
        let finite = || self.accuracy.iter().copied().filter(|a| a.is_finite());
        // The axis starts a little under the worst class so differences show.
        let lo = ((finite().fold(1.0f64, f64::min) * 100.0 - 2.0) / 5.0)
            .floor()
            .max(0.0)
            * 5.0;
        let area = root.margin(TITLE as u32, 10, 10, 20);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d((0..CLASSES - 1).into_segmented(), lo..100.0)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .y_desc("accuracy (%)")
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(k) | SegmentValue::Exact(k) => {
                    self.names.get(*k).map_or(String::new(), |s| s.to_string())
                }
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(fail)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(RGBColor(37, 99, 235).filled())
                    .margin(8)
                    .data(
                        self.accuracy
                            .iter()
                            .enumerate()
                            .filter(|(_, a)| a.is_finite())
                            .map(|(k, a)| (k, 100.0 * a)),
                    ),
            )
            .map_err(fail)?;
        chart
            .draw_series(
                self.accuracy
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.is_finite())
                    .map(|(k, a)| {
                        Text::new(
                            format!("{:.1}", 100.0 * a),
                            (SegmentValue::CenterOf(k), (100.0 * a).min(99.0)),
                            ("sans-serif", 12).into_font().color(&WHITE).pos(
                                plotters::style::text_anchor::Pos::new(
                                    plotters::style::text_anchor::HPos::Center,
                                    plotters::style::text_anchor::VPos::Top,
                                ),
                            ),
                        )
                    }),
            )
            .map_err(fail)?;
        Ok(())
    }
}

/// Test images (28×28 grey, white on black) with a caption each.
pub struct Gallery {
    pub images: Vec<(Vec<u8>, String)>,
    pub columns: usize,
    pub title: String,
}

const THUMB: usize = 3; // pixels per image pixel
const GAP: i32 = 12;

impl Gallery {
    fn grid(&self) -> Grid {
        Grid {
            cell: ((SIDE * THUMB) as i32 + GAP + 20, (SIDE * THUMB) as i32 + GAP + 18),
            columns: self.columns,
            count: self.images.len(),
            min_width: 360,
        }
    }
}

impl Picture for Gallery {
    fn size(&self) -> (u32, u32) {
        self.grid().size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(fail)?;
        heading(root, &self.title)?;
        let grid = self.grid();
        let cw = grid.cell.0;
        for (k, (pixels, caption)) in self.images.iter().enumerate() {
            let (x, y) = grid.at(k);
            let rgb: Vec<[u8; 3]> = pixels.iter().map(|&p| [p, p, p]).collect();
            blit(root, (x + 10, y), &rgb, (SIDE, SIDE), THUMB)?;
            text(
                root,
                caption,
                (x + cw / 2 - GAP / 2 + 4, y + (SIDE * THUMB) as i32 + 9),
                11,
                true,
            )?;
        }
        Ok(())
    }
}

/// Weights as tiles of `width`×`height`, each in blue–white–red scaled by
/// its own largest magnitude, with a caption each.
pub struct Tiles {
    pub tiles: Vec<Vec<f32>>,
    pub captions: Vec<String>,
    pub width: usize,
    pub height: usize,
    /// Pixels per weight.
    pub scale: usize,
    pub columns: usize,
    pub title: String,
}

impl Tiles {
    fn grid(&self) -> Grid {
        let caption = if self.captions.is_empty() { 0 } else { 14 };
        Grid {
            cell: (
                (self.width * self.scale) as i32 + 6,
                (self.height * self.scale) as i32 + 6 + caption,
            ),
            columns: self.columns,
            count: self.tiles.len(),
            min_width: 420,
        }
    }
}

impl Picture for Tiles {
    fn size(&self) -> (u32, u32) {
        self.grid().size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(fail)?;
        heading(root, &self.title)?;
        let grid = self.grid();
        let cw = grid.cell.0;
        for (k, tile) in self.tiles.iter().enumerate() {
            let (x, y) = grid.at(k);
            let m = tile.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let rgb: Vec<[u8; 3]> = tile
                .iter()
                .map(|&v| diverging(if m > 0.0 { v / m } else { 0.0 }))
                .collect();
            blit(root, (x, y), &rgb, (self.width, self.height), self.scale)?;
            if let Some(c) = self.captions.get(k) {
                text(
                    root,
                    c,
                    (x + cw / 2 - 3, y + (self.height * self.scale) as i32 + 9),
                    10,
                    true,
                )?;
            }
        }
        Ok(())
    }
}

/// The weight pictures of a model, as `(file stem, tiles)`: for an MLP the
/// hidden units' input weights as 28×28 tiles and the output layer (one row
/// per class); for a CNN the filters and, per class, the output weights as
/// one small map per filter over the (pooled) feature maps.
pub fn weight_tiles(spec: &ModelSpec, params: &[f32]) -> Vec<(&'static str, Tiles)> {
    let what = spec.describe();
    match spec.build() {
        Net::Mlp(m) => {
            let [w1, _, w2, _] = split(params, m.lens());
            let units = Tiles {
                tiles: w1.chunks(m.input).map(<[f32]>::to_vec).collect(),
                captions: (0..m.hidden).map(|j| j.to_string()).collect(),
                width: SIDE,
                height: m.input / SIDE,
                scale: 2,
                columns: 16,
                title: format!(
                    "{what}\ninput weights of each hidden unit (red +, blue −, each tile scaled to its largest weight)"
                ),
            };
            let scale = (900 / m.hidden.max(1)).clamp(1, 24);
            let output = Tiles {
                tiles: vec![w2.to_vec()],
                captions: Vec::new(),
                width: m.hidden,
                height: m.classes,
                scale,
                columns: 1,
                title: format!(
                    "{what}\noutput weights: one row per class (0 at the top), one column per hidden unit"
                ),
            };
            vec![("hidden-units", units), ("output-weights", output)]
        }
        Net::Cnn(c) => {
            let [wc, _, wf, _] = split(params, c.lens());
            let k = c.conv.kernel;
            let filters = Tiles {
                tiles: wc.chunks(k * k).map(<[f32]>::to_vec).collect(),
                captions: (0..c.conv.filters).map(|f| format!("filter {f}")).collect(),
                width: k,
                height: k,
                scale: (64 / k).max(4),
                columns: 8,
                title: format!("{what}\nthe filters (red +, blue −)"),
            };
            // Each class's weights: F maps of side², laid out in a grid with one blank line between.
            let f = c.conv.filters;
            let side = c.pool.map_or(c.conv.out_side(), |p| p.out_width());
            let cols = (f as f64).sqrt().ceil() as usize;
            let rows = f.div_ceil(cols);
            let (w, h) = (cols * (side + 1) - 1, rows * (side + 1) - 1);
            let tiles = wf
                .chunks(f * side * side)
                .map(|class| {
                    let mut grid = vec![0.0f32; w * h];
                    for (fi, map) in class.chunks(side * side).enumerate() {
                        let (ox, oy) = ((fi % cols) * (side + 1), (fi / cols) * (side + 1));
                        for (y, row) in map.chunks(side).enumerate() {
                            grid[(oy + y) * w + ox..(oy + y) * w + ox + side].copy_from_slice(row);
                        }
                    }
                    grid
                })
                .collect();
            let classes = Tiles {
                tiles,
                captions: (0..c.classes).map(|k| format!("class {k}")).collect(),
                width: w,
                height: h,
                scale: (240 / w.max(1)).max(1),
                columns: 5,
                title: format!("{what}\noutput weights per class, one map per filter"),
            };
            vec![("filters", filters), ("class-weights", classes)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_colours_run_from_blue_through_white_to_red() {
        assert_eq!(diverging(0.0), [255, 255, 255]);
        assert_eq!(diverging(1.0), [178, 24, 43]);
        assert_eq!(diverging(-1.0), [33, 102, 172]);
        assert_eq!(diverging(7.0), diverging(1.0));
    }

    #[test]
    fn pictures_are_written_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let names = crate::data::mnist::Dataset::Mnist.class_names();
        let mut counts = [[0usize; CLASSES]; CLASSES];
        for (i, row) in counts.iter_mut().enumerate() {
            row[i] = 90;
            row[(i + 1) % CLASSES] = i;
        }
        crate::plot::save_picture(
            dir.path(),
            "confusion",
            &ConfusionHeatmap {
                counts,
                names,
                title: "t".into(),
            },
        )
        .unwrap();
        let tiles = Tiles {
            tiles: vec![vec![0.5; 9], vec![-1.0; 9]],
            captions: vec!["a".into(), "b".into()],
            width: 3,
            height: 3,
            scale: 4,
            columns: 8,
            title: "tiles".into(),
        };
        crate::plot::save_picture(dir.path(), "tiles", &tiles).unwrap();
        let png = image::open(dir.path().join("tiles.png")).unwrap().to_rgb8();
        let (w, h) = tiles.size();
        assert_eq!((png.width(), png.height()), (w, h));
        // The first tile's corner is the colour of +1 (its own maximum), the second's of −1.
        let (x, y) = (MARGIN as u32, TITLE as u32);
        assert_eq!(png.get_pixel(x, y).0, diverging(1.0));
        assert_eq!(png.get_pixel(x + 3 * 4 + 6, y).0, diverging(-1.0));
        let svg = std::fs::read_to_string(dir.path().join("tiles.svg")).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<image"),
            "bitmaps embedded in the SVG"
        );
        assert!(dir.path().join("confusion.svg").is_file() && dir.path().join("confusion.png").is_file());
    }
}
