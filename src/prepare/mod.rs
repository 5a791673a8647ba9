//! Preparing a photo, scan or drawing the way the dataset's images were
//! prepared, so that a model sees what it was trained on.
//!
//! **Digits (MNIST).** MNIST's digits are light ink on black, the ink's
//! bounding box scaled to fit 20×20 (keeping its aspect ratio), anti-aliased,
//! and placed in a 28×28 field with its centre of mass at the centre. A
//! user's image is brought there in steps, each a function below:
//!
//! 1. [`load_image`]: decode, composite any transparency onto a background
//!    that contrasts with the ink, convert to grey 0–1, and shrink a large
//!    image to at most [`WORK_SIDE`] pixels a side.
//! 2. Polarity: the border is paper; when it is brighter than the middle of
//!    the image's range, the paper is light and the image is
//!    inverted (`--invert` overrides).
//! 3. Background: uneven lighting is removed by subtracting a morphological
//!    opening (a minimum then a maximum filter wider than any stroke), which
//!    follows the paper and drops the ink.
//! 4. Ink: Otsu's threshold of the lightly blurred result separates ink from
//!    paper. No ink contrast, ink over most of the image, or only specks is
//!    [`NoDigit`]. Components far smaller than the largest (noise, dust) are
//!    dropped.
//! 5. Contrast: the paper level maps to 0 and the ink's 90th percentile to
//!    full white, so faint pencil reaches MNIST's full-intensity strokes.
//! 6. Thickness: a stroke whose width after scaling would be under
//!    [`MIN_STROKE`] pixels is widened by a maximum filter first (MNIST's
//!    strokes are 2–3 pixels wide).
//! 7. Scale the ink's box into 20×20 and centre its mass in 28×28.
//!
//! Every image goes through every step, whatever its size (a 28×28 image is
//! not taken as already prepared).
//!
//! **Clothes (Fashion-MNIST).** Its items fill the 28×28 field (the longer
//! side scaled to 28) and are centred by their box, with no stroke
//! treatment; [`Style::Fashion`] does that after steps 1, 2, 4 and 5 (the
//! background step would eat a large garment).

mod grid;

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageReader, Limits, Luma};

use crate::data::mnist::{Dataset, PIXELS, SIDE};
pub use grid::Grid;
use grid::{components, otsu, stroke_width};

/// Whether to invert the image's brightness first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Invert {
    /// Invert when the border is brighter than the middle of the image's range
    /// (dark ink on light paper).
    Auto,
    Yes,
    No,
}

/// Which dataset's preparation to imitate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// MNIST digits: 20×20 box, centre of mass, strokes thickened.
    Digit,
    /// Fashion-MNIST items: longer side 28, centred box.
    Fashion,
}

impl Style {
    pub fn of(dataset: Dataset) -> Style {
        match dataset {
            Dataset::Mnist => Style::Digit,
            Dataset::FashionMnist => Style::Fashion,
        }
    }
}

/// The largest image file read (a 100-megapixel PNG is far smaller).
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;
/// The largest image side decoded.
pub const MAX_IMAGE_SIDE: u32 = 20_000;
/// Images are shrunk to at most this many pixels a side before preparing.
pub const WORK_SIDE: usize = 400;
/// Side of the box a digit is scaled into, as in MNIST.
const BOX: f32 = 20.0;
/// Narrowest stroke, in 28×28 pixels, left as it is.
pub const MIN_STROKE: f32 = 2.0;
/// Width strokes are widened to.
const TARGET_STROKE: f32 = 2.6;

/// An image in which no single digit (or item) could be found, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("no digit found: {0}")]
pub struct NoDigit(pub String);

/// The 28×28 image the model receives, 0–255, and what was done.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub pixels: [u8; PIXELS],
    /// Whether the brightness was inverted (dark ink on light paper).
    pub inverted: bool,
    /// Whether thin strokes were widened.
    pub thickened: bool,
}

impl Prepared {
    /// The prepared image as a grey PNG-able image.
    pub fn image(&self) -> GrayImage {
        GrayImage::from_raw(SIDE as u32, SIDE as u32, self.pixels.to_vec())
            .expect("784 pixels make a 28×28 image")
    }
}

/// Reads and decodes an image file (PNG or JPEG, bounded in bytes and in
/// size), composites transparency and shrinks it to at most [`WORK_SIDE`].
pub fn load_image(path: &Path) -> Result<Grid> {
    let bytes = crate::atomic::read_bounded(path, MAX_IMAGE_BYTES)
        .with_context(|| format!("{}: cannot read the image", path.display()))?;
    decode(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Decodes PNG or JPEG bytes into a grey grid (see [`load_image`]).
pub fn decode(bytes: &[u8]) -> Result<Grid> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .context("not a readable PNG or JPEG image")?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| anyhow!("not a readable PNG or JPEG image ({e})"))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(anyhow!("the image is empty"));
    }
    Ok(grey(&img).shrink_to(WORK_SIDE))
}

/// Grey 0–1, transparency composited onto white when the visible ink is
/// dark and onto black when it is light.
fn grey(img: &DynamicImage) -> Grid {
    let la = img.to_luma_alpha32f();
    let (w, h) = (la.width() as usize, la.height() as usize);
    let (mut weight, mut ink) = (0.0f64, 0.0f64);
    let mut transparent = false;
    for p in la.pixels() {
        let [l, a] = p.0;
        weight += a as f64;
        ink += (l * a) as f64;
        transparent |= a < 1.0;
    }
    let background = if !transparent || weight == 0.0 {
        0.0
    } else if ink / weight < 0.5 {
        1.0
    } else {
        0.0
    };
    let v = la
        .pixels()
        .map(|p| {
            let [l, a] = p.0;
            (l * a + background * (1.0 - a)).clamp(0.0, 1.0)
        })
        .collect();
    Grid { w, h, v }
}

/// Reads an image file and prepares it for a model trained on `style`'s dataset.
pub fn load_digit(path: &Path, invert: Invert, style: Style) -> Result<Prepared> {
    let g = load_image(path)?;
    prepare(&g, invert, style).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Prepares a grey grid (0–1) as described in the module documentation.
pub fn prepare(g: &Grid, invert: Invert, style: Style) -> Result<Prepared, NoDigit> {
    let g = g.shrink_to(WORK_SIDE);
    // 2. Polarity.
    let inverted = match invert {
        Invert::Yes => true,
        Invert::No => false,
        Invert::Auto => {
            // The extremes of a lightly blurred copy, so that a noisy pixel
            // does not count; the ink may be far under 1 % of the pixels.
            let smooth = g.box_blur(1);
            let lo = smooth.v.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = smooth.v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let border = g.border();
            border[border.len() / 2] > (lo + hi) / 2.0
        }
    };
    let g = if inverted { g.map(|v| 1.0 - v) } else { g };
    let side = g.w.max(g.h);
    // 3. Background.
    let ink = match style {
        Style::Digit => {
            let r = (side / 6).max(2);
            let paper = g.min_filter(r).max_filter(r);
            Grid {
                w: g.w,
                h: g.h,
                v: g.v.iter().zip(&paper.v).map(|(a, b)| (a - b).max(0.0)).collect(),
            }
        }
        Style::Fashion => {
            let border = g.border();
            let paper = border[border.len() / 2];
            g.map(|v| (v - paper).max(0.0))
        }
    };
    // 4. The ink mask.
    let blur = (side / 150).max(1);
    let smooth = ink.box_blur(blur);
    let (t, low, high) = otsu(&smooth.v);
    if high - low < 0.15 {
        return Err(NoDigit(
            "the image has no ink that stands out from its background".into(),
        ));
    }
    let mask: Vec<bool> = smooth.v.iter().map(|&v| v > t).collect();
    let covered = mask.iter().filter(|&&m| m).count() as f32 / mask.len() as f32;
    if covered > 0.45 {
        return Err(NoDigit(format!(
            "the ink covers {:.0} % of the image; expected one {} on plain paper",
            covered * 100.0,
            if style == Style::Digit { "digit" } else { "item" }
        )));
    }
    let (labels, areas) = components(&mask, g.w, g.h);
    let largest = areas.iter().copied().max().unwrap_or(0);
    let keep: Vec<bool> = areas.iter().map(|&a| a * 10 >= largest && a >= 2).collect();
    let kept = keep.iter().filter(|&&k| k).count();
    if largest < 4 || kept > 12 {
        return Err(NoDigit("only scattered specks, no stroke".into()));
    }
    let mask: Vec<bool> = labels
        .iter()
        .map(|&l| l != u32::MAX && keep[l as usize])
        .collect();
    // 5. Contrast: paper → 0, ink → 1, only near the kept ink.
    let values = if side > 64 { &smooth } else { &ink };
    let mut inked: Vec<f32> = values
        .v
        .iter()
        .zip(&mask)
        .filter(|(_, m)| **m)
        .map(|(&v, _)| v)
        .collect();
    inked.sort_by(f32::total_cmp);
    let top = inked[(inked.len() - 1) * 9 / 10].max(t + 1e-3);
    let floor = (low + t) / 2.0;
    let width = stroke_width(&mask, g.w, g.h);
    let near = Grid {
        w: g.w,
        h: g.h,
        v: mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect(),
    }
    .max_filter((width.ceil() as usize).max(1));
    let mut v = Grid {
        w: g.w,
        h: g.h,
        v: values
            .v
            .iter()
            .zip(&near.v)
            .map(|(&x, &n)| {
                if n > 0.0 {
                    ((x - floor) / (top - floor)).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect(),
    };
    let Some(mut bbox) = ink_box(&v, 0.05) else {
        return Err(NoDigit("the image has no ink".into()));
    };
    // 6. Thickness.
    let mut thickened = false;
    if style == Style::Digit {
        let scale = BOX / bbox.long_side() as f32;
        if width * scale < MIN_STROKE {
            let r = ((TARGET_STROKE / scale - width) / 2.0).ceil().max(1.0) as usize;
            v = v.max_filter(r);
            bbox = ink_box(&v, 0.05).expect("widening keeps the ink");
            thickened = true;
        }
    }
    Ok(Prepared {
        pixels: place(&v, bbox, style),
        inverted,
        thickened,
    })
}

/// An inclusive pixel box.
#[derive(Clone, Copy, Debug)]
struct Box2 {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

impl Box2 {
    fn long_side(&self) -> usize {
        (self.x1 - self.x0 + 1).max(self.y1 - self.y0 + 1)
    }
}

/// The box of pixels above `level`.
fn ink_box(g: &Grid, level: f32) -> Option<Box2> {
    let mut b: Option<Box2> = None;
    for y in 0..g.h {
        for x in 0..g.w {
            if g.at(x, y) > level {
                b = Some(match b {
                    None => Box2 {
                        x0: x,
                        y0: y,
                        x1: x,
                        y1: y,
                    },
                    Some(b) => Box2 {
                        x0: b.x0.min(x),
                        y0: b.y0.min(y),
                        x1: b.x1.max(x),
                        y1: b.y1.max(y),
                    },
                });
            }
        }
    }
    b
}

/// Step 7: the box scaled into the 28×28 field, as the style places it.
fn place(v: &Grid, b: Box2, style: Style) -> [u8; PIXELS] {
    let (bw, bh) = (b.x1 - b.x0 + 1, b.y1 - b.y0 + 1);
    let fit = match style {
        Style::Digit => BOX,
        Style::Fashion => SIDE as f32,
    };
    let scale = fit / bw.max(bh) as f32;
    let nw = ((bw as f32 * scale).round() as u32).clamp(1, SIDE as u32);
    let nh = ((bh as f32 * scale).round() as u32).clamp(1, SIDE as u32);
    let crop = GrayImage::from_fn(bw as u32, bh as u32, |x, y| {
        Luma([(v.at(b.x0 + x as usize, b.y0 + y as usize) * 255.0).round() as u8])
    });
    let small = image::imageops::resize(&crop, nw, nh, FilterType::Triangle);
    // Full intensity again after the anti-aliasing of the shrink.
    let max = small.pixels().map(|p| p.0[0]).max().unwrap_or(0).max(1) as f32;
    let (mut m, mut cx, mut cy) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in small.enumerate_pixels() {
        let w = p.0[0] as f64;
        m += w;
        cx += w * (x as f64 + 0.5);
        cy += w * (y as f64 + 0.5);
    }
    let (cx, cy) = match style {
        Style::Digit if m > 0.0 => (cx / m, cy / m),
        _ => (nw as f64 / 2.0, nh as f64 / 2.0),
    };
    let half = SIDE as f64 / 2.0;
    let ox = (half - cx).round().clamp(0.0, (SIDE as u32 - nw) as f64) as usize;
    let oy = (half - cy).round().clamp(0.0, (SIDE as u32 - nh) as f64) as usize;
    let mut out = [0u8; PIXELS];
    for (x, y, &Luma([p])) in small.enumerate_pixels() {
        out[(oy + y as usize) * SIDE + ox + x as usize] = (p as f32 * 255.0 / max).round().min(255.0) as u8;
    }
    out
}

#[cfg(test)]
mod tests;
