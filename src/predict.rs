//! Preparing a photo or scan of a digit the way MNIST's digits were prepared:
//! light ink on a dark background, the ink's bounding box scaled to fit 20×20
//! (keeping its aspect ratio) and placed in a 28×28 field so that its centre of
//! mass is at the centre.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use image::imageops::FilterType;
use image::{GrayImage, Luma};

use crate::data::mnist::{PIXELS, SIDE};

/// Whether to invert the image's brightness first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Invert {
    /// Invert when the border is brighter than the middle grey (dark ink on light paper).
    Auto,
    Yes,
    No,
}

/// Side of the box the digit is scaled into, as in MNIST.
const BOX: u32 = 20;

/// Reads an image file and returns 784 pixels (0–255), MNIST-style.
/// The largest image file read (a 100-megapixel PNG is far smaller).
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

pub fn load_digit(path: &Path, invert: Invert) -> Result<[u8; PIXELS]> {
    let bytes = crate::atomic::read_bounded(path, MAX_IMAGE_BYTES)
        .with_context(|| format!("{}: cannot read the image", path.display()))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| anyhow!("{}: not a readable PNG or JPEG image ({e})", path.display()))?
        .to_luma8();
    if img.width() == 0 || img.height() == 0 {
        return Err(anyhow!("{}: the image is empty", path.display()));
    }
    Ok(prepare(img, invert))
}

/// MNIST-style preprocessing of a grey image.
pub fn prepare(mut img: GrayImage, invert: Invert) -> [u8; PIXELS] {
    let do_invert = match invert {
        Invert::Yes => true,
        Invert::No => false,
        Invert::Auto => border_mean(&img) > 127.5,
    };
    if do_invert {
        image::imageops::invert(&mut img);
    }
    let mut out = [0u8; PIXELS];
    let (w, h) = img.dimensions();
    if (w, h) == (SIDE as u32, SIDE as u32) {
        out.copy_from_slice(img.as_raw());
        return out;
    }
    let Some((x0, y0, x1, y1)) = ink_box(&img) else {
        return out; // no ink at all: a blank field
    };
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let scale = BOX as f64 / bw.max(bh) as f64;
    let (nw, nh) = (
        ((bw as f64 * scale).round() as u32).max(1),
        ((bh as f64 * scale).round() as u32).max(1),
    );
    let crop = image::imageops::crop_imm(&img, x0, y0, bw, bh).to_image();
    let small = image::imageops::resize(&crop, nw, nh, FilterType::Triangle);
    // Centre of mass of the scaled digit, placed at the field's centre.
    let (mut m, mut cx, mut cy) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0] as f64;
        m += v;
        cx += v * x as f64;
        cy += v * y as f64;
    }
    let (cx, cy) = if m > 0.0 {
        (cx / m, cy / m)
    } else {
        (nw as f64 / 2.0, nh as f64 / 2.0)
    };
    let half = SIDE as f64 / 2.0;
    let ox = (half - cx).round().clamp(0.0, (SIDE as u32 - nw) as f64) as u32;
    let oy = (half - cy).round().clamp(0.0, (SIDE as u32 - nh) as f64) as u32;
    for (x, y, &Luma([v])) in small.enumerate_pixels() {
        out[((oy + y) as usize) * SIDE + (ox + x) as usize] = v;
    }
    out
}

fn border_mean(img: &GrayImage) -> f64 {
    let (w, h) = img.dimensions();
    let mut sum = 0.0;
    let mut n = 0.0;
    for (x, y, p) in img.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            sum += p.0[0] as f64;
            n += 1.0;
        }
    }
    sum / n
}

/// Bounding box (inclusive) of pixels brighter than a quarter of the brightest.
fn ink_box(img: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let max = img.pixels().map(|p| p.0[0]).max().unwrap_or(0);
    if max == 0 {
        return None;
    }
    let threshold = max / 4;
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if p.0[0] > threshold {
            b = Some(match b {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dark bar on light paper, 60×90: inverted, scaled to 20 high and centred.
    #[test]
    fn a_scanned_bar_becomes_an_mnist_style_digit() {
        let mut img = GrayImage::from_pixel(60, 90, Luma([250]));
        for y in 10..80 {
            for x in 20..34 {
                img.put_pixel(x, y, Luma([10]));
            }
        }
        let out = prepare(img, Invert::Auto);
        let rows: Vec<usize> = (0..SIDE)
            .filter(|&r| out[r * SIDE..(r + 1) * SIDE].iter().any(|&v| v > 60))
            .collect();
        let cols: Vec<usize> = (0..SIDE)
            .filter(|&c| (0..SIDE).any(|r| out[r * SIDE + c] > 60))
            .collect();
        assert!((19..=21).contains(&rows.len()), "{rows:?}");
        assert!((3..=5).contains(&cols.len()), "{cols:?}");
        let mid = |v: &[usize]| (v[0] + v[v.len() - 1]) as f64 / 2.0;
        assert!(
            (mid(&rows) - 13.5).abs() <= 1.0 && (mid(&cols) - 13.5).abs() <= 1.0,
            "{rows:?} {cols:?}"
        );
        assert_eq!(out[0], 0);
    }

    #[test]
    fn a_28_by_28_image_is_used_as_is_and_blank_stays_blank() {
        let img = GrayImage::from_fn(28, 28, |x, y| Luma([((x + y) % 7) as u8]));
        let out = prepare(img.clone(), Invert::No);
        assert_eq!(&out[..], img.as_raw().as_slice());
        assert!(
            prepare(GrayImage::new(40, 40), Invert::No)
                .iter()
                .all(|&v| v == 0)
        );
    }

    #[test]
    fn unreadable_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("digit.png");
        std::fs::write(&p, b"not an image").unwrap();
        let e = format!("{:#}", load_digit(&p, Invert::Auto).unwrap_err());
        assert!(
            e.contains("digit.png") && e.contains("not a readable PNG or JPEG"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            load_digit(&dir.path().join("none.png"), Invert::Auto).unwrap_err()
        );
        assert!(e.contains("none.png") && e.contains("cannot read"), "{e}");
    }
}
