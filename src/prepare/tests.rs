use super::*;

fn grid(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Grid {
    Grid {
        w,
        h,
        v: (0..w * h).map(|i| f(i % w, i / w)).collect(),
    }
}

/// Rows and columns of the prepared image holding a pixel above 60.
fn extent(p: &[u8; PIXELS]) -> (Vec<usize>, Vec<usize>) {
    let rows = (0..SIDE)
        .filter(|&r| p[r * SIDE..(r + 1) * SIDE].iter().any(|&v| v > 60))
        .collect();
    let cols = (0..SIDE)
        .filter(|&c| (0..SIDE).any(|r| p[r * SIDE + c] > 60))
        .collect();
    (rows, cols)
}

fn mid(v: &[usize]) -> f64 {
    (v[0] + v[v.len() - 1]) as f64 / 2.0
}

fn border_is_black(p: &[u8; PIXELS]) -> bool {
    (0..SIDE).all(|i| {
        p[i] == 0 && p[(SIDE - 1) * SIDE + i] == 0 && p[i * SIDE] == 0 && p[i * SIDE + SIDE - 1] == 0
    })
}

/// A dark bar on light paper, 60×90: inverted, scaled to 20 high and centred.
#[test]
fn a_scanned_bar_becomes_an_mnist_style_digit() {
    let g = grid(60, 90, |x, y| {
        if (20..34).contains(&x) && (10..80).contains(&y) {
            0.04
        } else {
            0.98
        }
    });
    let p = prepare(&g, Invert::Auto, Style::Digit).unwrap();
    assert!(p.inverted);
    let (rows, cols) = extent(&p.pixels);
    assert!((19..=21).contains(&rows.len()), "{rows:?}");
    assert!((3..=5).contains(&cols.len()), "{cols:?}");
    assert!(
        (mid(&rows) - 13.5).abs() <= 1.0 && (mid(&cols) - 13.5).abs() <= 1.0,
        "{rows:?} {cols:?}"
    );
    assert!(border_is_black(&p.pixels));
    assert_eq!(p.pixels.iter().copied().max(), Some(255));
}

/// A 28×28 image is prepared like any other: an off-centre blob moves to the centre.
#[test]
fn a_28_by_28_image_is_prepared_too() {
    let g = grid(28, 28, |x, y| {
        if (1..5).contains(&x) && (2..14).contains(&y) {
            1.0
        } else {
            0.0
        }
    });
    let p = prepare(&g, Invert::Auto, Style::Digit).unwrap();
    assert!(!p.inverted);
    let (rows, cols) = extent(&p.pixels);
    assert!((19..=21).contains(&rows.len()), "{rows:?}");
    assert!(
        (mid(&rows) - 13.5).abs() <= 1.0 && (mid(&cols) - 13.5).abs() <= 1.5,
        "{rows:?} {cols:?}"
    );
}

/// Grey paper lit unevenly (dark at one side, bright at the other), with
/// noise and a faint pencil stroke: the paper is removed and the stroke is
/// at full intensity.
#[test]
fn uneven_noisy_paper_is_removed_and_faint_ink_reaches_white() {
    let mut rng = crate::rng::Rng::new(5, 0);
    let noise: Vec<f32> = (0..300 * 300).map(|_| (rng.normal() * 0.04) as f32).collect();
    let g = grid(300, 300, |x, y| {
        let paper = 0.45 + 0.4 * x as f32 / 300.0;
        let ink = if (140..162).contains(&x) && (60..240).contains(&y) {
            0.25
        } else {
            0.0
        };
        (paper - ink + noise[y * 300 + x]).clamp(0.0, 1.0)
    });
    let p = prepare(&g, Invert::Auto, Style::Digit).unwrap();
    assert!(p.inverted);
    let (rows, cols) = extent(&p.pixels);
    assert!((19..=21).contains(&rows.len()), "{rows:?}");
    assert!(cols.len() <= 5, "{cols:?}");
    assert!(border_is_black(&p.pixels), "{:?}", p.pixels);
    let lit = p.pixels.iter().filter(|&&v| v > 200).count();
    assert!(lit >= 20, "{lit} pixels above 200");
}

/// A one-pixel line on a large canvas is widened to MNIST's stroke width.
#[test]
fn thin_strokes_are_thickened() {
    let g = grid(400, 400, |x, y| {
        if x == 200 && (50..350).contains(&y) || y == 200 && (150..250).contains(&x) {
            1.0
        } else {
            0.0
        }
    });
    let p = prepare(&g, Invert::Auto, Style::Digit).unwrap();
    assert!(p.thickened);
    // Across the vertical bar, in its middle row range, 2+ bright pixels.
    let row = 6 * SIDE;
    let bright = p.pixels[row..row + SIDE].iter().filter(|&&v| v > 127).count();
    assert!(bright >= 2, "{:?}", &p.pixels[row..row + SIDE]);
    // A thick bar is left alone.
    let g = grid(100, 100, |x, y| {
        if (40..52).contains(&x) && (10..90).contains(&y) {
            1.0
        } else {
            0.0
        }
    });
    assert!(!prepare(&g, Invert::Auto, Style::Digit).unwrap().thickened);
}

#[test]
fn blank_black_and_noise_images_have_no_digit() {
    let mut rng = crate::rng::Rng::new(9, 0);
    let cases = [
        ("white", grid(50, 50, |_, _| 1.0)),
        ("black", grid(50, 50, |_, _| 0.0)),
        ("28x28 black", grid(28, 28, |_, _| 0.0)),
        ("grey", grid(640, 480, |x, _| 0.5 + 0.1 * x as f32 / 640.0)),
    ];
    for (name, g) in cases {
        for style in [Style::Digit, Style::Fashion] {
            let e = prepare(&g, Invert::Auto, style).unwrap_err();
            assert!(e.to_string().starts_with("no digit found"), "{name}: {e}");
        }
    }
    for side in [28, 200] {
        let noise: Vec<f32> = (0..side * side).map(|_| rng.next_f64() as f32).collect();
        let g = grid(side, side, |x, y| noise[y * side + x]);
        let e = prepare(&g, Invert::Auto, Style::Digit).unwrap_err();
        assert!(e.to_string().starts_with("no digit found"), "noise {side}: {e}");
    }
}

fn png(img: &DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A browser canvas export: black strokes on fully transparent pixels
/// (whose colour is black too). Compositing onto white finds the strokes;
/// a canvas with nothing drawn has no digit.
#[test]
fn transparent_canvases_are_composited() {
    let mut img = image::RgbaImage::new(120, 120);
    for y in 20..100 {
        for x in 55..67 {
            img.put_pixel(x, y, image::Rgba([0, 0, 0, 255]));
        }
    }
    let g = decode(&png(&DynamicImage::ImageRgba8(img))).unwrap();
    let p = prepare(&g, Invert::Auto, Style::Digit).unwrap();
    let (rows, _) = extent(&p.pixels);
    assert!((19..=21).contains(&rows.len()), "{rows:?}");
    let empty = decode(&png(&DynamicImage::ImageRgba8(image::RgbaImage::new(120, 120)))).unwrap();
    assert!(prepare(&empty, Invert::Auto, Style::Digit).is_err());
}

/// Fashion items fill the field (longer side 28) and are centred by their box.
#[test]
fn fashion_items_fill_the_field() {
    let g = grid(200, 300, |x, y| {
        if (50..150).contains(&x) && (20..280).contains(&y) {
            0.1
        } else {
            1.0
        }
    });
    let p = prepare(&g, Invert::Auto, Style::Fashion).unwrap();
    let (rows, cols) = extent(&p.pixels);
    assert_eq!(rows.len(), 28, "{rows:?}");
    assert!((10..=12).contains(&cols.len()), "{cols:?}");
}

#[test]
fn unreadable_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("digit.png");
    std::fs::write(&p, b"not an image").unwrap();
    let e = format!("{:#}", load_digit(&p, Invert::Auto, Style::Digit).unwrap_err());
    assert!(
        e.contains("digit.png") && e.contains("not a readable PNG or JPEG"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        load_digit(&dir.path().join("none.png"), Invert::Auto, Style::Digit).unwrap_err()
    );
    assert!(e.contains("none.png") && e.contains("cannot read"), "{e}");
}
