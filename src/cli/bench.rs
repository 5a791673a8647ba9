//! `scratchnet bench`: training throughput per model, with the machine's
//! matrix-multiply speed measured in the same run for scale.

use anyhow::Result;
use clap::Args;
use scratchnet::bench::{matmul_peak, peak_rss_mb, time_training};
use scratchnet::data::batches::{Normalize, Samples};
use scratchnet::data::mnist::{CLASSES, Dataset, SIDE, Split, Verify, load_split};
use scratchnet::kernels::{Choice, Kernels, Level, Resolved};
use scratchnet::models::ModelSpec;

use super::output::say;
use super::output::warn_if_debug;
use super::validate::{batch_size, positive};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct BenchArgs {
    /// MLP hidden sizes to time, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "256")]
    hidden: Vec<usize>,
    /// CNN configurations KxF to time (kernel x filters), comma-separated
    #[arg(long, value_delimiter = ',', default_value = "7x1,7x32")]
    cnn: Vec<String>,
    /// Mini-batch size
    #[arg(long, default_value_t = 128, value_parser = batch_size)]
    batch_size: usize,
    /// Samples per timed epoch (times are scaled to 60,000)
    #[arg(long, default_value_t = 15_360, value_parser = positive)]
    samples: usize,
    /// What to train on: synthetic U(0, 1) inputs, or the first --samples MNIST training images
    /// scaled to [0, 1] (from --data-dir, else $SCRATCHNET_DATA_DIR/mnist or the user cache), as
    /// bench/run.sh's references do
    #[arg(long, value_enum, default_value_t = BenchData::Synthetic)]
    data: BenchData,
    /// Folder holding MNIST's four IDX files, with --data mnist
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Timed epochs per configuration (min and median reported)
    #[arg(long, default_value_t = 5, value_parser = positive)]
    repeats: usize,
    /// Worker threads (0: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// One JSON object per line instead of the table (read by bench/compare.py)
    #[arg(long)]
    json: bool,
}

/// What `scratchnet bench` trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BenchData {
    Synthetic,
    Mnist,
}

/// The short name the reference scripts use: mlp256, cnn7x32.
fn short_name(spec: &ModelSpec) -> String {
    match *spec {
        ModelSpec::Mlp { hidden, .. } => format!("mlp{hidden}"),
        ModelSpec::Cnn { kernel, filters, .. } => format!("cnn{kernel}x{filters}"),
    }
}

pub fn run(a: BenchArgs) -> Result<()> {
    warn_if_debug();
    let threads = super::set_threads(a.threads)?;
    let mut specs: Vec<ModelSpec> = a.hidden.iter().map(|&hidden| ModelSpec::mlp(hidden)).collect();
    for c in &a.cnn {
        let (k, f) = c
            .split_once('x')
            .and_then(|(k, f)| Some((k.parse::<usize>().ok()?, f.parse::<usize>().ok()?)))
            .filter(|&(k, f)| (1..=SIDE).contains(&k) && f > 0)
            .ok_or_else(|| anyhow::anyhow!("--cnn {c}: expected KxF with 1 ≤ K ≤ 28 and F ≥ 1, e.g. 7x32"))?;
        specs.push(ModelSpec::Cnn {
            side: SIDE,
            kernel: k,
            filters: f,
            conv_bias: false,
            pool: false,
            pool_size: 2,
            classes: CLASSES,
        });
    }
    let code = super::kernels()?;
    // The products of the engine's level (the portable ones for the textbook wing).
    let products = match code {
        Resolved::Engine(k) => k,
        Resolved::Reference => Kernels::for_level(Level::Portable).map_err(anyhow::Error::msg)?,
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()?
        .install(|| matmul_peak(products, 1024, 5));
    let all = matmul_peak(products, 1024, 5);
    let images = match a.data {
        BenchData::Synthetic => None,
        BenchData::Mnist => {
            let dir = Dataset::Mnist.resolve_dir(a.data_dir.as_deref());
            let raw = load_split(&dir, Dataset::Mnist, Split::Train, Verify::Checksum)?;
            Some(Samples::from_raw(&raw, Normalize::Unit))
        }
    };
    let time = |spec: &ModelSpec| {
        time_training(
            spec,
            Choice::Auto,
            a.batch_size,
            a.samples,
            a.repeats,
            images.as_ref(),
        )
    };
    if a.json {
        for spec in &specs {
            let t = time(spec).map_err(anyhow::Error::msg)?;
            let line = serde_json::json!({
                "reference": "scratchnet",
                "model": short_name(spec),
                "threads": threads,
                "kernels": code.name(),
                "data": if images.is_some() { "mnist" } else { "synthetic" },
                "min": t.seconds_per_epoch_min,
                "median": t.seconds_per_epoch_median,
                "gflop_per_epoch": t.gflops * t.seconds_per_epoch_min,
                "matmul_gflops": all,
                "peak_rss_mb": peak_rss_mb(),
            });
            say!("{line}");
        }
        return Ok(());
    }
    say!("kernels: {}", code.name());
    say!(
        "matrix-multiply speed (f32 1024³, best of 5): {one:.1} GFLOP/s on 1 thread, {all:.1} GFLOP/s on {threads}"
    );
    say!(
        "training, batch {}, {threads} threads, {}, {} samples per timed epoch scaled to 60,000:",
        a.batch_size,
        if images.is_some() {
            "the first MNIST training images scaled to [0, 1]"
        } else {
            "synthetic data"
        },
        images.as_ref().map_or(a.samples, |s| a.samples.min(s.y.len()))
    );
    say!("| model | s/epoch (min) | s/epoch (median) | samples/s | GFLOP/s | % of matmul speed |");
    say!("| --- | --- | --- | --- | --- | --- |");
    for spec in &specs {
        let t = time(spec).map_err(anyhow::Error::msg)?;
        say!(
            "| {} | {:.3} | {:.3} | {:.0} | {:.1} | {:.0} % |",
            spec.describe(),
            t.seconds_per_epoch_min,
            t.seconds_per_epoch_median,
            t.samples_per_second,
            t.gflops,
            100.0 * t.gflops / all
        );
    }
    if let Some(mb) = peak_rss_mb() {
        say!("peak resident memory of this process: {mb:.0} MB");
    }
    Ok(())
}
