//! Learning-curve figures, as PNG and SVG, drawn with `plotters` in pure Rust:
//! text is rendered with the DejaVu Sans font embedded in the binary, so no
//! system font library is needed at build or run time. Files are written
//! atomically (temporary file in the same folder, then rename).

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::atomic::{parent_dir, write_atomic};

/// One line of a panel.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    /// (epoch, value)
    pub points: Vec<(f64, f64)>,
    /// Dashed-looking thin line (e.g. test accuracy beside training accuracy).
    pub thin: bool,
}

/// One chart of a figure.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
}

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

const PANEL_WIDTH: u32 = 640;
const HEIGHT: u32 = 480;

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is valid; a failure here would only lose text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Writes `stem.png` and `stem.svg` in `dir`: the panels side by side under `title`.
pub fn save_figure(dir: &Path, stem: &str, title: &str, panels: &[Panel]) -> Result<()> {
    register_fonts();
    let size = (PANEL_WIDTH * panels.len().max(1) as u32, HEIGHT);

    let png = dir.join(format!("{stem}.png"));
    let tmp = tempfile::Builder::new()
        .prefix(".plot-")
        .suffix(".png")
        .tempfile_in(parent_dir(&png))
        .map_err(|e| anyhow!("{}: cannot create a temporary file: {e}", png.display()))?;
    {
        let root = BitMapBackend::new(tmp.path(), size).into_drawing_area();
        draw(&root, title, panels)?;
        root.present().map_err(|e| anyhow!("{}: {e}", png.display()))?;
    }
    crate::atomic::readable_by_all(tmp.as_file()).map_err(|e| anyhow!("{}: {e}", png.display()))?;
    tmp.persist(&png)
        .map_err(|e| anyhow!("{}: cannot rename into place: {}", png.display(), e.error))?;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root, title, panels)?;
        root.present().map_err(|e| anyhow!("{stem}.svg: {e}"))?;
    }
    write_atomic(&dir.join(format!("{stem}.svg")), svg.as_bytes())
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, panels: &[Panel]) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing failed: {e}");
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(title, ("sans-serif", 22).into_font().style(FontStyle::Bold))
        .map_err(err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel).map_err(err)?;
    }
    Ok(())
}

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
    let y_label = |v: &f64| {
        let value = if panel.log_y { 10f64.powf(*v) } else { *v };
        if value >= 0.001 {
            format!("{value:.3}")
        } else {
            format!("{value:.1e}")
        }
    };
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(&panel.y_label)
        .x_labels((epochs as usize).clamp(2, 11))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(8)
        .y_label_formatter(&y_label)
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = color.stroke_width(if s.thin { 1 } else { 2 });
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| usable(p.1))
            .map(|p| (p.0, y(p.1)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, style))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_and_svg_with_labels() {
        let dir = tempfile::tempdir().unwrap();
        let panel = |log_y| Panel {
            title: "Training loss".into(),
            y_label: "loss".into(),
            log_y,
            series: vec![
                Series {
                    label: "H=32".into(),
                    points: vec![(1.0, 0.9), (2.0, 0.3), (3.0, 0.1)],
                    thin: false,
                },
                Series {
                    label: "H=64".into(),
                    points: vec![(1.0, 0.8), (2.0, 0.2), (3.0, 0.05)],
                    thin: true,
                },
            ],
        };
        save_figure(dir.path(), "curves", "MLP sweep", &[panel(true), panel(false)]).unwrap();
        let png = std::fs::read(dir.path().join("curves.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(dir.path().join("curves.svg")).unwrap();
        assert!(
            svg.contains("H=32")
                && svg.contains("H=64")
                && svg.contains("MLP sweep")
                && svg.contains("epoch")
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
