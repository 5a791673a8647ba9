//! Learning-curve figures, as PNG and SVG, drawn with `plotters` in pure Rust:
//! text is rendered with the DejaVu Sans font embedded in the binary, so no
//! system font library is needed at build or run time. Files are written
//! atomically (temporary file in the same folder, then rename).

//!
//! Without the `plots` feature the figures' data are still built, and
//! [`save_figure`] writes nothing.

use std::path::Path;
#[cfg(feature = "plots")]
use std::sync::Once;

use anyhow::Result;
#[cfg(feature = "plots")]
use anyhow::anyhow;
#[cfg(feature = "plots")]
use plotters::coord::Shift;
#[cfg(feature = "plots")]
use plotters::prelude::*;

#[cfg(feature = "plots")]
use crate::atomic::{parent_dir, write_atomic};

/// One line of a panel.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    /// (epoch, value)
    pub points: Vec<(f64, f64)>,
    /// Dashed-looking thin line (e.g. test accuracy beside training accuracy).
    pub thin: bool,
    /// Colour index; series of one configuration share it (default: the
    /// series' position).
    pub color: Option<usize>,
    /// A shaded band (epoch, low, high), e.g. mean ± std over seeds.
    pub band: Vec<(f64, f64, f64)>,
    /// Drawn dashed (e.g. validation beside test in the same colour).
    pub dashed: bool,
}

impl Series {
    /// A plain line in the colour of its position.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, thin: bool) -> Series {
        Series {
            label: label.into(),
            points,
            thin,
            color: None,
            band: Vec::new(),
            dashed: false,
        }
    }
}

/// One chart of a figure.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
}

#[cfg(feature = "plots")]
/// Ten distinguishable colours (matplotlib's tab10).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

#[cfg(feature = "plots")]
const PANEL_WIDTH: u32 = 640;
#[cfg(feature = "plots")]
const HEIGHT: u32 = 480;

#[cfg(feature = "plots")]
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is valid; a failure here would only lose text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

#[cfg(feature = "plots")]
/// Writes `stem.png` and `stem.svg` in `dir`: the panels side by side under `title`.
pub fn save_figure(dir: &Path, stem: &str, title: &str, panels: &[Panel]) -> Result<()> {
    struct Figure<'a>(&'a str, &'a [Panel]);
    impl Picture for Figure<'_> {
        fn size(&self) -> (u32, u32) {
            (PANEL_WIDTH * self.1.len().max(1) as u32, HEIGHT)
        }
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
            draw(root, self.0, self.1)
        }
    }
    save_picture(dir, stem, &Figure(title, panels))
}

/// Something drawn once for PNG and once for SVG ([`save_picture`]).
#[cfg(feature = "plots")]
pub trait Picture {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Writes `stem.png` and `stem.svg` of `picture` in `dir`, each atomically.
#[cfg(feature = "plots")]
pub fn save_picture(dir: &Path, stem: &str, picture: &impl Picture) -> Result<()> {
    register_fonts();
    let size = picture.size();
    let png = dir.join(format!("{stem}.png"));
    let tmp = tempfile::Builder::new()
        .prefix(".plot-")
        .suffix(".png")
        .tempfile_in(parent_dir(&png))
        .map_err(|e| anyhow!("{}: cannot create a temporary file: {e}", png.display()))?;
    {
        let root = BitMapBackend::new(tmp.path(), size).into_drawing_area();
        picture.draw(&root)?;
        root.present().map_err(|e| anyhow!("{}: {e}", png.display()))?;
    }
    crate::atomic::readable_by_all(tmp.as_file()).map_err(|e| anyhow!("{}: {e}", png.display()))?;
    tmp.persist(&png)
        .map_err(|e| anyhow!("{}: cannot rename into place: {}", png.display(), e.error))?;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        picture.draw(&root)?;
        root.present().map_err(|e| anyhow!("{stem}.svg: {e}"))?;
    }
    write_atomic(&dir.join(format!("{stem}.svg")), svg.as_bytes())
}

#[cfg(feature = "plots")]
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, panels: &[Panel]) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing failed: {e}");
    root.fill(&WHITE).map_err(err)?;
    // The first line of the title in bold, any further lines below it.
    let mut lines = title.lines();
    let mut root = root
        .titled(
            lines.next().unwrap_or(""),
            ("sans-serif", 22).into_font().style(FontStyle::Bold),
        )
        .map_err(err)?;
    for more in lines {
        root = root.titled(more, ("sans-serif", 15)).map_err(err)?;
    }
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel).map_err(err)?;
    }
    Ok(())
}

#[cfg(feature = "plots")]
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // A log-scale panel plots log10(value) on a linear axis and labels it with the values,
    // so every decade, or part of one, gets readable ticks.
    let y = |v: f64| if panel.log_y { v.log10() } else { v };
    let usable = |v: f64| v.is_finite() && (!panel.log_y || v > 0.0);
    let points = || panel.series.iter().flat_map(|s| s.points.iter().copied());
    let epochs = points().map(|p| p.0).fold(1.0f64, f64::max);
    let ys = || points().map(|p| p.1).filter(|&v| usable(v)).map(y);
    let (mut lo, mut hi) = (
        ys().fold(f64::INFINITY, f64::min),
        ys().fold(f64::NEG_INFINITY, f64::max),
    );
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let (lo, hi) = (lo - pad, hi + pad);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(1.0..epochs.max(2.0), lo..hi)?;
    let y_label = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(&panel.y_label)
        .x_labels((epochs as usize).clamp(2, 11))
        .x_label_formatter(&|v| format!("{v:.0}"))
        // A log axis gets its ticks at round values below.
        .y_labels(if panel.log_y { 0 } else { 8 })
        .y_label_formatter(&y_label)
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 13))
        .draw()?;
    if panel.log_y {
        let base = area.get_base_pixel();
        let font = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Right,
                plotters::style::text_anchor::VPos::Center,
            ));
        for v in log_ticks(10f64.powf(lo), 10f64.powf(hi)) {
            let grid = vec![(1.0, v.log10()), (epochs.max(2.0), v.log10())];
            chart.draw_series(std::iter::once(PathElement::new(grid, BLACK.mix(0.12))))?;
            let (px, py) = chart.backend_coord(&(1.0, v.log10()));
            area.draw(&Text::new(
                tick_label(v),
                (px - base.0 - 6, py - base.1),
                font.clone(),
            ))?;
        }
    }
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[s.color.unwrap_or(i) % COLORS.len()];
        let band: Vec<(f64, f64)> = s
            .band
            .iter()
            .filter(|b| usable(b.1) && usable(b.2))
            .map(|b| (b.0, y(b.2)))
            .chain(
                s.band
                    .iter()
                    .rev()
                    .filter(|b| usable(b.1) && usable(b.2))
                    .map(|b| (b.0, y(b.1))),
            )
            .collect();
        if band.len() >= 4 {
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.18).filled())))?;
        }
        let style = color.stroke_width(if s.thin { 1 } else { 2 });
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| usable(p.1))
            .map(|p| (p.0, y(p.1)))
            .collect();
        let legend_width = if s.thin { 1 } else { 2 };
        let legend = move |(x, y): (i32, i32)| {
            let style = color.stroke_width(legend_width);
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (8, 0)], style)
                + PathElement::new(vec![(if s.dashed { 12 } else { 8 }, 0), (20, 0)], style)
        };
        let drawn = if s.dashed {
            chart.draw_series(DashedLineSeries::new(pts, 6, 4, style))?
        } else {
            chart.draw_series(LineSeries::new(pts, style))?
        };
        drawn.label(s.label.clone()).legend(legend);
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        // Losses fall and accuracies rise: keep the legend in the corner the curves leave free.
        .position(if panel.log_y {
            SeriesLabelPosition::UpperRight
        } else {
            SeriesLabelPosition::LowerRight
        })
        .draw()
}

/// Without the `plots` feature: no figure is written.
#[cfg(not(feature = "plots"))]
pub fn save_figure(_dir: &Path, _stem: &str, _title: &str, _panels: &[Panel]) -> Result<()> {
    Ok(())
}

/// A tick value as people write it: `0.05`, `0.2`, `1`, `1e-4`.
pub fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() < 1e-3 || v.abs() >= 1e5 {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Round values between `lo` and `hi` (both > 0) for a log axis: 1, 2 and
/// 5 times powers of ten, or every digit times a power of ten when the
/// range is too narrow for three of those, or `lo` and `hi` themselves.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let pick = |mantissas: &[f64]| -> Vec<f64> {
        let mut out = Vec::new();
        let mut k = lo.log10().floor() as i32 - 1;
        while 10f64.powi(k) <= hi * 10.0 && out.len() < 64 {
            for &m in mantissas {
                // Rounded through a string so that 0.3 is 0.3, not 0.30000000000000004.
                let v: f64 = format!("{:.6e}", m * 10f64.powi(k)).parse().unwrap_or(f64::NAN);
                if v >= lo && v <= hi {
                    out.push(v);
                }
            }
            k += 1;
        }
        out
    };
    for mantissas in [
        &[1.0][..],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ] {
        let t = pick(mantissas);
        if (3..=10).contains(&t.len()) {
            return t;
        }
    }
    let fine = pick(&[1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    if fine.len() >= 2 {
        // Too many: every other one.
        let every = if fine.len() > 10 { 2 } else { 1 };
        return fine.into_iter().step_by(every).collect();
    }
    vec![lo, hi]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_round_values() {
        assert_eq!(log_ticks(0.03, 0.9), vec![0.05, 0.1, 0.2, 0.5]);
        assert_eq!(log_ticks(0.2, 0.7), vec![0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
        assert_eq!(log_ticks(1e-4, 2.0), vec![1e-4, 1e-3, 0.01, 0.1, 1.0]);
        let narrow = log_ticks(0.251, 0.262);
        assert_eq!(narrow, vec![0.251, 0.262]);
        for (lo, hi) in [(0.03, 0.9), (0.2, 0.7), (1e-4, 2.0), (0.0012, 0.0019)] {
            let t = log_ticks(lo, hi);
            assert!(
                t.len() >= 2 && t.iter().all(|&v| v >= lo && v <= hi),
                "{lo} {hi} {t:?}"
            );
        }
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(1e-4), "1e-4");
    }

    #[test]
    #[cfg(feature = "plots")]
    fn writes_png_and_svg_with_labels() {
        let dir = tempfile::tempdir().unwrap();
        let panel = |log_y| Panel {
            title: "Training loss".into(),
            y_label: "loss".into(),
            log_y,
            series: vec![
                Series::line("H=32", vec![(1.0, 0.9), (2.0, 0.3), (3.0, 0.1)], false),
                Series {
                    color: Some(0),
                    band: vec![(1.0, 0.7, 0.9), (2.0, 0.15, 0.25), (3.0, 0.04, 0.06)],
                    ..Series::line("H=64", vec![(1.0, 0.8), (2.0, 0.2), (3.0, 0.05)], true)
                },
            ],
        };
        save_figure(
            dir.path(),
            "curves",
            "MLP sweep\nlr 0.01",
            &[panel(true), panel(false)],
        )
        .unwrap();
        let png = std::fs::read(dir.path().join("curves.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(dir.path().join("curves.svg")).unwrap();
        assert!(
            svg.contains("H=32")
                && svg.contains("H=64")
                && svg.contains("MLP sweep")
                && svg.contains("lr 0.01")
                && svg.contains("epoch")
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
