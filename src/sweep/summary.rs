//! A sweep's results: per-configuration summaries, the tables and figures,
//! and the comparison with the report's numbers.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::JobResult;
use crate::atomic::write_atomic;
use crate::plot::{Panel, Series, save_figure};
use crate::train::EpochRecord;

/// One configuration of a sweep, aggregated over its seeds.
#[derive(Clone, Debug)]
pub struct ConfigSummary {
    pub label: String,
    pub value: usize,
    pub seeds: usize,
    /// The seeds, in plan order.
    pub seed_list: Vec<u64>,
    /// Test images behind each run's accuracy (for the single-seed interval).
    pub test_images: usize,
    pub test_accuracy_mean: f64,
    pub test_accuracy_std: f64,
    pub final_train_loss: f64,
    pub final_train_accuracy: f64,
    pub seconds_per_epoch: f64,
    pub total_seconds: f64,
    /// Per epoch, over the seeds.
    pub curve: Vec<EpochSpread>,
}

/// One epoch of a configuration over its seeds: means, and the test
/// accuracy's sample standard deviation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochSpread {
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub test_accuracy_std: f64,
    /// When every seed's history has it.
    pub test_loss: Option<f64>,
    pub validation_accuracy: Option<f64>,
}

/// Mean and sample standard deviation (0 for one value).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    let std = if v.len() > 1 {
        (v.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

/// Groups a sweep's results by configuration (label), in first-seen order.
pub fn summarise(results: &[JobResult]) -> Vec<ConfigSummary> {
    let mut labels: Vec<&str> = Vec::new();
    for r in results {
        if !labels.contains(&r.job.label.as_str()) {
            labels.push(&r.job.label);
        }
    }
    labels
        .iter()
        .map(|&label| {
            let runs: Vec<&JobResult> = results.iter().filter(|r| r.job.label == label).collect();
            let n = runs.len() as f64;
            let last = |f: fn(&EpochRecord) -> f64| {
                runs.iter()
                    .map(|r| f(r.history.last().expect("epochs")))
                    .collect::<Vec<_>>()
            };
            let (mean, std) = mean_std(&last(|e| e.test_accuracy));
            let total_seconds = runs
                .iter()
                .flat_map(|r| r.history.iter().map(|e| e.seconds))
                .sum::<f64>();
            let epochs = runs.iter().map(|r| r.history.len()).sum::<usize>() as f64;
            let len = runs.iter().map(|r| r.history.len()).min().unwrap_or(0);
            let curve = (0..len)
                .map(|e| {
                    let at = |f: fn(&EpochRecord) -> f64| {
                        runs.iter().map(|r| f(&r.history[e])).collect::<Vec<_>>()
                    };
                    let all = |f: fn(&EpochRecord) -> Option<f64>| {
                        let v: Option<Vec<f64>> = runs.iter().map(|r| f(&r.history[e])).collect();
                        v.map(|v| mean_std(&v).0)
                    };
                    let (test_accuracy, test_accuracy_std) = mean_std(&at(|r| r.test_accuracy));
                    EpochSpread {
                        train_loss: mean_std(&at(|r| r.train_loss)).0,
                        train_accuracy: mean_std(&at(|r| r.train_accuracy)).0,
                        test_accuracy,
                        test_accuracy_std,
                        test_loss: all(|r| r.test_loss),
                        validation_accuracy: all(|r| r.validation_accuracy),
                    }
                })
                .collect();
            ConfigSummary {
                label: label.to_string(),
                value: runs[0].job.value,
                seeds: runs.len(),
                seed_list: runs.iter().map(|r| r.job.spec.settings.seed).collect(),
                test_images: runs[0].test_images,
                test_accuracy_mean: mean,
                test_accuracy_std: std,
                final_train_loss: last(|e| e.train_loss).iter().sum::<f64>() / n,
                final_train_accuracy: last(|e| e.train_accuracy).iter().sum::<f64>() / n,
                seconds_per_epoch: total_seconds / epochs.max(1.0),
                total_seconds,
                curve,
            }
        })
        .collect()
}

/// What the test-accuracy cells show, for under the tables.
pub const ACCURACY_NOTE: &str = "Test accuracy: for several seeds, mean ± sample standard deviation over the seeds \
     listed; for one, the 95 % Wilson score interval of its count of correct test images. Other columns are \
     means over the seeds.";

/// Test accuracy: one seed as "97.01 % (95 % CI 96.67–97.33)", the Wilson
/// score interval of its count of correct test images; several as
/// "97.01 ± 0.12 % (seeds 0, 1, 2)", mean ± sample standard deviation.
pub fn format_accuracy(s: &ConfigSummary) -> String {
    if s.seeds > 1 {
        let seeds: Vec<String> = s.seed_list.iter().map(u64::to_string).collect();
        format!(
            "{:.2} ± {:.2} % (seeds {})",
            100.0 * s.test_accuracy_mean,
            100.0 * s.test_accuracy_std,
            seeds.join(", ")
        )
    } else {
        let n = s.test_images;
        let k = (s.test_accuracy_mean * n as f64).round() as usize;
        let (lo, hi) = crate::metrics::wilson_interval(k, n);
        format!(
            "{:.2} % (95 % CI {:.2}–{:.2})",
            100.0 * s.test_accuracy_mean,
            100.0 * lo,
            100.0 * hi
        )
    }
}

/// Writes `results.md`, `results.csv` and `curves.png`/`.svg` of a sweep into `dir`.
pub fn write_sweep_outputs(
    dir: &Path,
    title: &str,
    parameter: &str,
    summaries: &[ConfigSummary],
) -> Result<()> {
    let mut csv = String::from(
        "configuration,value,seeds,test_accuracy_mean,test_accuracy_std,final_train_loss,final_train_accuracy,seconds_per_epoch,total_seconds\n",
    );
    let mut md = format!(
        "# {title}\n\n| {parameter} | test accuracy | final train loss | final train accuracy | s / epoch | total s |\n| --- | --- | --- | --- | --- | --- |\n"
    );
    for s in summaries {
        let _ = writeln!(
            csv,
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.4},{:.2}",
            s.label,
            s.value,
            s.seeds,
            s.test_accuracy_mean,
            s.test_accuracy_std,
            s.final_train_loss,
            s.final_train_accuracy,
            s.seconds_per_epoch,
            s.total_seconds
        );
        let _ = writeln!(
            md,
            "| {} | {} | {:.4} | {:.4} | {:.2} | {:.1} |",
            s.label,
            format_accuracy(s),
            s.final_train_loss,
            s.final_train_accuracy,
            s.seconds_per_epoch,
            s.total_seconds
        );
    }
    let _ = writeln!(md, "\n{ACCURACY_NOTE}");
    let _ = writeln!(md, "\n![learning curves](curves.png)");
    write_atomic(&dir.join("results.csv"), csv.as_bytes())?;
    write_atomic(&dir.join("results.md"), md.as_bytes())?;
    save_figure(dir, "curves", title, &sweep_panels(summaries))
}

/// The sweep's figure: loss (training, and test dashed) and accuracy
/// (training; test dashed, with a band of ± one standard deviation over the
/// seeds when there are several; validation dashed when held out), one
/// colour per configuration.
fn sweep_panels(summaries: &[ConfigSummary]) -> [Panel; 2] {
    let epoch = |e: usize| (e + 1) as f64;
    let line = |i: usize, label: String, points: Vec<(f64, f64)>, thin: bool| Series {
        color: Some(i),
        ..Series::line(label, points, thin)
    };
    let optional = |s: &ConfigSummary, f: fn(&EpochSpread) -> Option<f64>| -> Option<Vec<(f64, f64)>> {
        s.curve
            .iter()
            .enumerate()
            .map(|(e, p)| f(p).map(|v| (epoch(e), v)))
            .collect()
    };
    let mut loss = Vec::new();
    let mut acc = Vec::new();
    for (i, s) in summaries.iter().enumerate() {
        let pts = |f: fn(&EpochSpread) -> f64| {
            s.curve
                .iter()
                .enumerate()
                .map(|(e, p)| (epoch(e), f(p)))
                .collect()
        };
        let seeds = if s.seeds > 1 {
            format!(" (mean of {})", s.seeds)
        } else {
            String::new()
        };
        loss.push(line(
            i,
            format!("{} train{seeds}", s.label),
            pts(|p| p.train_loss),
            false,
        ));
        if let Some(t) = optional(s, |p| p.test_loss) {
            loss.push(line(i, format!("{} test", s.label), t, true));
        }
        acc.push(line(
            i,
            format!("{} train{seeds}", s.label),
            pts(|p| p.train_accuracy),
            false,
        ));
        let band = if s.seeds > 1 {
            s.curve
                .iter()
                .enumerate()
                .map(|(e, p)| {
                    (
                        epoch(e),
                        p.test_accuracy - p.test_accuracy_std,
                        p.test_accuracy + p.test_accuracy_std,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let band_note = if s.seeds > 1 { " ± std" } else { "" };
        acc.push(Series {
            band,
            ..line(
                i,
                format!("{} test{band_note}", s.label),
                pts(|p| p.test_accuracy),
                true,
            )
        });
        if let Some(v) = optional(s, |p| p.validation_accuracy) {
            acc.push(Series {
                dashed: true,
                ..line(i, format!("{} validation", s.label), v, true)
            });
        }
    }
    [
        Panel {
            title: "Loss".into(),
            y_label: "cross-entropy (log scale)".into(),
            log_y: true,
            series: loss,
        },
        Panel {
            title: "Accuracy".into(),
            y_label: "accuracy".into(),
            log_y: false,
            series: acc,
        },
    ]
}

/// The report's test accuracies: MLP by hidden size (section 3.4).
pub const REPORT_MLP: [(usize, f64); 5] = [
    (32, 0.9569),
    (64, 0.9694),
    (128, 0.9679),
    (256, 0.9701),
    (512, 0.9640),
];
/// The report's test accuracies: CNN by kernel size (section 3.5).
pub const REPORT_CNN: [(usize, f64); 5] = [(3, 0.9116), (5, 0.9047), (7, 0.9277), (9, 0.9129), (11, 0.9252)];

/// A markdown table comparing a sweep with the report's numbers.
pub fn comparison_table(
    parameter: &str,
    report: &[(usize, f64)],
    ours: &[ConfigSummary],
    label: fn(usize) -> String,
) -> String {
    let mut md = format!("| {parameter} | report | scratchnet | difference |\n| --- | --- | --- | --- |\n");
    for &(v, r) in report {
        match ours.iter().find(|s| s.value == v) {
            Some(s) => {
                let _ = writeln!(
                    md,
                    "| {} | {:.2} % | {} | {:+.2} pp |",
                    label(v),
                    100.0 * r,
                    format_accuracy(s),
                    100.0 * (s.test_accuracy_mean - r)
                );
            }
            None => {
                let _ = writeln!(md, "| {} | {:.2} % | not run | |", label(v), 100.0 * r);
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_and_durations() {
        let s = ConfigSummary {
            label: "H=32".into(),
            value: 32,
            seeds: 1,
            seed_list: vec![0],
            test_images: 10_000,
            test_accuracy_mean: 0.9600,
            test_accuracy_std: 0.0,
            final_train_loss: 0.1,
            final_train_accuracy: 0.99,
            seconds_per_epoch: 0.1,
            total_seconds: 10.0,
            curve: vec![],
        };
        let md = comparison_table("hidden", &REPORT_MLP, std::slice::from_ref(&s), |v| v.to_string());
        // 9,600 of 10,000: the Wilson interval 95.60–96.37 % (centre 95.98 %, half-width 0.38 pp).
        assert!(
            md.contains("| 32 | 95.69 % | 96.00 % (95 % CI 95.60–96.37) | +0.31 pp |"),
            "{md}"
        );
        let three = ConfigSummary {
            seeds: 3,
            seed_list: vec![0, 1, 2],
            test_accuracy_std: 0.0012,
            ..s
        };
        assert_eq!(format_accuracy(&three), "96.00 ± 0.12 % (seeds 0, 1, 2)");
        assert!(md.contains("| 64 | 96.94 % | not run |"), "{md}");
        assert_eq!(super::super::format_duration(3723.0), "1h02m03s");
        assert_eq!(super::super::format_duration(65.0), "1m05s");
    }
}
