//! `predict` on digits drawn the ways people draw them, generated here from
//! MNIST's test digits (and from a typeface): paint-app black on white,
//! inverted, thin strokes, off-centre on a large canvas, 28×28, 1600×1200,
//! JPEG, photo-like grey paper with uneven light, noise and blur, a
//! transparent canvas, and typed digits. Each style must come out right for
//! at least 9 of 10 digits with `best-cnn` after 3 epochs.

mod common;

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use common::{scratchnet, stderr, stdout};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, Luma, Rgba, RgbaImage};
use scratchnet::data::mnist::{Dataset, Split, Verify, load_split};

/// Two test digits of each class: the first two occurrences.
fn samples(mnist: &Path) -> Vec<(u8, GrayImage)> {
    let test = load_split(mnist, Dataset::Mnist, Split::Test, Verify::Skip).unwrap();
    let mut out = Vec::new();
    for class in 0..10u8 {
        let idx: Vec<usize> = (0..test.labels.len())
            .filter(|&i| test.labels[i] == class)
            .take(2)
            .collect();
        for i in idx {
            let px = test.pixels[i * 784..(i + 1) * 784].to_vec();
            out.push((class, GrayImage::from_raw(28, 28, px).unwrap()));
        }
    }
    out
}

/// The digit (light on dark) enlarged smoothly to `side`.
fn enlarge(d: &GrayImage, side: u32) -> GrayImage {
    image::imageops::resize(d, side, side, FilterType::CatmullRom)
}

/// Hard-edged ink where the enlarged digit is brighter than half.
fn binary(d: &GrayImage) -> GrayImage {
    GrayImage::from_fn(d.width(), d.height(), |x, y| {
        Luma([if d.get_pixel(x, y).0[0] > 110 { 255 } else { 0 }])
    })
}

/// Dark-on-light version of a light-on-dark image.
fn paper(d: &GrayImage) -> GrayImage {
    let mut d = d.clone();
    image::imageops::invert(&mut d);
    d
}

/// Pastes light-on-dark `ink` at (x, y) on a white canvas of w×h as black ink.
fn on_canvas(ink: &GrayImage, w: u32, h: u32, x: u32, y: u32) -> GrayImage {
    let mut c = GrayImage::from_pixel(w, h, Luma([255]));
    for (ix, iy, p) in ink.enumerate_pixels() {
        c.put_pixel(x + ix, y + iy, Luma([255 - p.0[0]]));
    }
    c
}

/// Zhang–Suen thinning of a binary image, to a one-pixel skeleton.
fn thin(b: &GrayImage) -> GrayImage {
    let (w, h) = (b.width() as i32, b.height() as i32);
    let mut on: Vec<bool> = b.pixels().map(|p| p.0[0] > 0).collect();
    let at = |on: &[bool], x: i32, y: i32| x >= 0 && y >= 0 && x < w && y < h && on[(y * w + x) as usize];
    loop {
        let mut changed = false;
        for pass in 0..2 {
            let mut clear = Vec::new();
            for y in 0..h {
                for x in 0..w {
                    if !at(&on, x, y) {
                        continue;
                    }
                    let n = [
                        (0, -1),
                        (1, -1),
                        (1, 0),
                        (1, 1),
                        (0, 1),
                        (-1, 1),
                        (-1, 0),
                        (-1, -1),
                    ]
                    .map(|(dx, dy)| at(&on, x + dx, y + dy));
                    let count = n.iter().filter(|&&v| v).count();
                    let turns = (0..8).filter(|&i| !n[i] && n[(i + 1) % 8]).count();
                    let (p2, p4, p6, p8) = (n[0], n[2], n[4], n[6]);
                    let cond = if pass == 0 {
                        !(p4 && p6 && (p2 || p8))
                    } else {
                        !(p2 && p8 && (p4 || p6))
                    };
                    if (2..=6).contains(&count) && turns == 1 && cond {
                        clear.push((y * w + x) as usize);
                    }
                }
            }
            changed |= !clear.is_empty();
            for i in clear {
                on[i] = false;
            }
        }
        if !changed {
            break;
        }
    }
    GrayImage::from_fn(w as u32, h as u32, |x, y| {
        Luma([if on[(y as i32 * w + x as i32) as usize] {
            255
        } else {
            0
        }])
    })
}

/// A small deterministic generator for the paper's noise.
struct Lcg(u64);
impl Lcg {
    fn unit(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Grey paper lit unevenly, pencil-grey ink, noise and blur.
fn photo(d: &GrayImage, seed: u64) -> GrayImage {
    let ink = enlarge(d, 260);
    let mut rng = Lcg(seed);
    let (w, h) = (400u32, 360u32);
    let raw = GrayImage::from_fn(w, h, |x, y| {
        let light = 150.0 + 70.0 * x as f32 / w as f32 + 25.0 * (y as f32 / 50.0).sin();
        let a = if (70..330).contains(&x) && (50..310).contains(&y) {
            ink.get_pixel(x - 70, y - 50).0[0] as f32 / 255.0
        } else {
            0.0
        };
        let v = light * (1.0 - a) + 55.0 * a + (rng.unit() - 0.5) * 40.0;
        Luma([v.clamp(0.0, 255.0) as u8])
    });
    image::imageops::blur(&raw, 2.0)
}

/// A transparent canvas with black strokes, as a browser exports it.
fn transparent(d: &GrayImage) -> RgbaImage {
    let ink = enlarge(d, 280);
    RgbaImage::from_fn(280, 280, |x, y| Rgba([0, 0, 0, ink.get_pixel(x, y).0[0]]))
}

/// The digit `c` typed in DejaVu Sans (regular or bold), black on white.
fn typed(c: u8, bold: bool) -> GrayImage {
    let font = FontRef::try_from_slice(if bold {
        dejavu::sans::bold()
    } else {
        dejavu::sans::regular()
    })
    .unwrap();
    let scaled = font.as_scaled(PxScale::from(180.0));
    let mut glyph = scaled.scaled_glyph(char::from(b'0' + c));
    glyph.position = ab_glyph::point(70.0, 200.0);
    let mut img = GrayImage::from_pixel(260, 260, Luma([255]));
    let outline = font.outline_glyph(glyph).unwrap();
    let b = outline.px_bounds();
    outline.draw(|x, y, cov| {
        let (px, py) = (b.min.x as i32 + x as i32, b.min.y as i32 + y as i32);
        if (0..260).contains(&px) && (0..260).contains(&py) {
            img.put_pixel(px as u32, py as u32, Luma([(255.0 * (1.0 - cov.min(1.0))) as u8]));
        }
    });
    img
}

fn save(img: &DynamicImage, path: &Path) {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jpg") => {
            let mut f = std::fs::File::create(path).unwrap();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 60)
                .encode_image(img)
                .unwrap();
        }
        _ => img.save(path).unwrap(),
    }
}

/// Writes every style's images; returns (style, [(label, path)]).
fn styles(mnist: &Path, dir: &Path) -> Vec<(&'static str, Vec<(u8, PathBuf)>)> {
    let digits = samples(mnist);
    let mut out: Vec<(&'static str, Vec<(u8, PathBuf)>)> = Vec::new();
    let mut add = |style: &'static str, images: Vec<(u8, DynamicImage)>, ext: &str| {
        let paths = images
            .into_iter()
            .enumerate()
            .map(|(i, (label, img))| {
                let p = dir.join(format!("{style}-{i:02}-{label}.{ext}"));
                save(&img, &p);
                (label, p)
            })
            .collect();
        out.push((style, paths));
    };
    let each = |f: &dyn Fn(&GrayImage, usize) -> DynamicImage| -> Vec<(u8, DynamicImage)> {
        digits
            .iter()
            .enumerate()
            .map(|(i, (l, d))| (*l, f(d, i)))
            .collect()
    };
    add(
        "paint",
        each(&|d, _| paper(&binary(&enlarge(d, 280))).into()),
        "png",
    );
    add("inverted", each(&|d, _| enlarge(d, 280).into()), "png");
    add(
        "thin",
        each(&|d, _| {
            let skeleton = thin(&binary(&enlarge(d, 280)));
            paper(&image::imageops::filter3x3(&skeleton, &[1.0; 9])).into()
        }),
        "png",
    );
    add(
        "off-centre",
        each(&|d, i| on_canvas(&binary(&enlarge(d, 140)), 800, 600, 40 + 30 * i as u32, 420).into()),
        "png",
    );
    add(
        "28x28",
        each(&|d, i| {
            let small = image::imageops::resize(d, 18, 18, FilterType::Triangle);
            on_canvas(&small, 28, 28, (i % 3) as u32 * 5, 10 - (i % 2) as u32 * 10).into()
        }),
        "png",
    );
    add(
        "large",
        each(&|d, _| on_canvas(&binary(&enlarge(d, 1000)), 1600, 1200, 300, 100).into()),
        "png",
    );
    add("jpeg", each(&|d, _| paper(&enlarge(d, 280)).into()), "jpg");
    add("photo", each(&|d, i| photo(d, i as u64 + 1).into()), "jpg");
    add("transparent", each(&|d, _| transparent(d).into()), "png");
    let fonts = (0..20u8)
        .map(|i| (i / 2, typed(i / 2, i % 2 == 1).into()))
        .collect();
    add("typed", fonts, "png");
    out
}

/// The class `predict` printed first for each image, by path.
fn predictions(model: &Path, images: &[&Path], prepared: &Path) -> Vec<Option<u8>> {
    let mut args = vec![
        "predict".to_string(),
        model.display().to_string(),
        "--top".into(),
        "1".into(),
    ];
    args.extend(["--save-prepared".into(), prepared.display().to_string()]);
    args.extend(images.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = scratchnet(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    images
        .iter()
        .map(|p| {
            let prefix = format!("{}: ", p.display());
            let line = out
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("{prefix} in {out}"));
            line[prefix.len()..]
                .chars()
                .next()
                .and_then(|c| c.to_digit(10))
                .map(|d| d as u8)
        })
        .collect()
}

/// Removes a folder when dropped.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn train(mnist: &Path, out: &Path, args: &[&str]) {
    let mut all = vec!["train"];
    all.extend(args);
    all.extend([
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let o = scratchnet(&all);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn predict_reads_digits_in_every_style() {
    let Some(mnist) = common::mnist_dir("predict_reads_digits_in_every_style") else {
        return;
    };
    // SCRATCHNET_KEEP_STYLES=DIR keeps the images and their prepared versions.
    let tmp = match std::env::var_os("SCRATCHNET_KEEP_STYLES") {
        Some(keep) => {
            std::fs::create_dir_all(&keep).unwrap();
            tempfile::tempdir_in(keep).unwrap().keep()
        }
        None => tempfile::tempdir().unwrap().keep(),
    };
    let _cleanup = (std::env::var_os("SCRATCHNET_KEEP_STYLES").is_none()).then(|| Cleanup(tmp.clone()));
    let dir = tmp.as_path();
    let images = dir.join("images");
    std::fs::create_dir(&images).unwrap();
    let styles = styles(&mnist, &images);
    let cnn = dir.join("best-cnn");
    train(&mnist, &cnn, &["cnn", "--preset", "best-cnn", "--epochs", "3"]);
    let mlp = dir.join("mlp");
    train(&mnist, &mlp, &["mlp", "--epochs", "10"]);
    let mut report = String::new();
    let mut failures = Vec::new();
    for (model, name, need) in [(&cnn, "best-cnn", Some(18)), (&mlp, "report MLP", None)] {
        report += &format!("{name}:");
        for (style, set) in &styles {
            let paths: Vec<&Path> = set.iter().map(|(_, p)| p.as_path()).collect();
            let got = predictions(model, &paths, &dir.join("prepared"));
            let right = set.iter().zip(&got).filter(|((l, _), g)| Some(*l) == **g).count();
            report += &format!(" {style} {right}/{}", set.len());
            if need.is_some_and(|n| right < n) {
                failures.push(format!("{name} {style}: {right}/{} ({got:?})", set.len()));
            }
        }
        report += "\n";
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "{failures:#?}\n{report}");
    // The prepared images were written, one per input, as 28×28 PNGs.
    let saved = image::open(dir.join("prepared").join("photo-00-0.prepared.png")).unwrap();
    assert_eq!((saved.width(), saved.height()), (28, 28));
}
