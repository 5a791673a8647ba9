//! `scratchnet data`: what a data folder holds.

use anyhow::Result;
use clap::Args;
use scratchnet::data::mnist::{CLASSES, Dataset, RawSplit, Split, load_split};

use super::DataArgs;
use super::output::say;

#[derive(Args, Debug)]
pub struct DataSummaryArgs {
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(a: DataSummaryArgs) -> Result<()> {
    let dir = a.data.dir();
    super::dataset::ensure_data(&a.data)?;
    say!("{} in {}", a.data.dataset().display_name(), dir.display());
    for split in [Split::Train, Split::Test] {
        let raw = load_split(&dir, a.data.dataset(), split, a.data.verify())?;
        print_split(a.data.dataset(), split, &raw, a.data.skip_checksum);
    }
    Ok(())
}

/// Mean and standard deviation of the pixels scaled to [0, 1].
pub fn pixel_stats(pixels: &[u8]) -> (f64, f64) {
    let mut hist = [0u64; 256];
    for &p in pixels {
        hist[p as usize] += 1;
    }
    let n = pixels.len() as f64;
    let mean = hist
        .iter()
        .enumerate()
        .map(|(v, &c)| v as f64 / 255.0 * c as f64)
        .sum::<f64>()
        / n;
    let var = hist
        .iter()
        .enumerate()
        .map(|(v, &c)| (v as f64 / 255.0 - mean).powi(2) * c as f64)
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

fn print_split(dataset: Dataset, split: Split, raw: &RawSplit, skipped: bool) {
    let name = match split {
        Split::Train => "training",
        Split::Test => "test",
    };
    let status = if skipped {
        "not checked (--skip-checksum)"
    } else {
        "OK (SHA-256 of the official files)"
    };
    say!("\n{name} set: {} images of 28×28", raw.count);
    say!("  images: {}", raw.images_path.display());
    say!("  labels: {}", raw.labels_path.display());
    say!("  checksums: {status}");
    let (mean, std) = pixel_stats(&raw.pixels);
    say!("  pixels scaled to [0,1]: mean {mean:.4}, std {std:.4}");
    let mut counts = [0usize; CLASSES];
    for &l in &raw.labels {
        counts[l as usize] += 1;
    }
    say!("  classes:");
    let names = dataset.class_names();
    for (c, n) in counts.iter().enumerate() {
        say!(
            "    {:>11} {n:>6}  {:5.2}%",
            names[c],
            100.0 * *n as f64 / raw.count as f64
        );
    }
    say!("    {:>11} {:>6}", "total", counts.iter().sum::<usize>());
}
