//! `scratchnet reproduce`: both sweeps of the report with its settings, and a
//! report folder comparing every cell of its two tables.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Parser};
use scratchnet::atomic::write_atomic;
use scratchnet::bench::cpu_model;
use scratchnet::models::ModelSpec;
use scratchnet::sweep::{
    ACCURACY_NOTE, ConfigSummary, REPORT_CNN, REPORT_MLP, comparison_table, format_duration, summarise,
    write_sweep_outputs,
};

use super::DataArgs;
use super::args::{CnnHyper, MlpHyper, unique};
use super::dataset::DataCache;
use super::output::say;
use super::output::warn_if_debug;
use super::sweep::{cnn_jobs, mlp_jobs, run_jobs};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct ReproduceArgs {
    /// A smoke test: 2 MLP epochs and 1 CNN epoch instead of 100 and 5
    #[arg(long)]
    quick: bool,
    /// Seeds, comma-separated; each configuration runs once per seed
    #[arg(long, value_delimiter = ',', default_value = "0", action = clap::ArgAction::Set)]
    seeds: Vec<u64>,
    /// Report folder (default: runs/reproduce-<UTC time>); rerunning with the same folder continues
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Retrain runs already finished in --out
    #[arg(long)]
    overwrite: bool,
    /// Worker threads (0: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// MLP runs trained side by side, each on threads/JOBS threads (their results do
    /// not depend on the thread count; the CNN's runs always use all threads).
    /// 0: two when there are at least two threads
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    #[command(flatten)]
    data: DataArgs,
}

/// The training defaults, as `train mlp` and `train cnn` define them.
#[derive(Parser)]
struct MlpDefaults {
    #[command(flatten)]
    hyper: MlpHyper,
}

#[derive(Parser)]
struct CnnDefaults {
    #[command(flatten)]
    hyper: CnnHyper,
}

pub fn run(mut a: ReproduceArgs) -> Result<()> {
    a.seeds = unique("--seeds", &a.seeds);
    warn_if_debug();
    let started = Instant::now();
    let threads = super::set_threads(a.threads)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("reproduce-{}", scratchnet::run::utc_stamp())));
    let (mlp_dir, cnn_dir) = (out.join("mlp"), out.join("cnn"));
    std::fs::create_dir_all(&mlp_dir)?;
    std::fs::create_dir_all(&cnn_dir)?;
    let (mlp_epochs, cnn_epochs) = if a.quick { ("2", "1") } else { ("100", "5") };
    let mlp = MlpDefaults::parse_from(["mlp", "--epochs", mlp_epochs]).hyper;
    let cnn = CnnDefaults::parse_from(["cnn", "--epochs", cnn_epochs]).hyper;
    let hidden: Vec<usize> = REPORT_MLP.iter().map(|r| r.0).collect();
    let kernels: Vec<usize> = REPORT_CNN.iter().map(|r| r.0).collect();
    let mut jobs = mlp_jobs(&mlp_dir, &hidden, &a.seeds, &mlp, 128);
    jobs.extend(cnn_jobs(&cnn_dir, &kernels, &a.seeds, &cnn, 128));

    let data = DataCache::new(&a.data)?;
    say!(
        "Reproducing the report's tables{}: {} runs into {} ({threads} threads, {})",
        if a.quick {
            " (quick smoke test: fewer epochs, not comparable)"
        } else {
            ""
        },
        jobs.len(),
        out.display(),
        cpu_model()
    );
    let side_by_side = match a.jobs {
        0 => threads.min(2),
        n => n.min(threads),
    };
    let results = run_jobs(&jobs, !a.overwrite, false, &data, side_by_side)?;
    let reused = results.iter().filter(|r| r.reused).count();
    let (mlp_results, cnn_results): (Vec<_>, Vec<_>) =
        results.into_iter().partition(|r| r.job.sweep == "mlp");
    let mlp_summary = summarise(&mlp_results);
    let cnn_summary = summarise(&cnn_results);
    write_sweep_outputs(
        &mlp_dir,
        "MLP: training curves by hidden size",
        "hidden size",
        &mlp_summary,
    )?;
    write_sweep_outputs(
        &cnn_dir,
        "CNN: training curves by kernel size",
        "kernel size",
        &cnn_summary,
    )?;

    let trained_seconds: f64 = mlp_summary
        .iter()
        .chain(&cnn_summary)
        .map(|s| s.total_seconds)
        .sum();
    let wall = started.elapsed().as_secs_f64();
    let times = Times {
        wall,
        trained_seconds,
        reused,
        runs: jobs.len(),
    };
    let md = report_markdown(&a, &mlp, &cnn, &mlp_summary, &cnn_summary, threads, &times);
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    say!("\n{md}");
    say!("Wrote {}", out.join("report.md").display());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// How long the reproduction took.
struct Times {
    /// Seconds of this invocation.
    wall: f64,
    /// Seconds in training epochs, summed over all runs (reused ones included).
    trained_seconds: f64,
    reused: usize,
    runs: usize,
}

fn report_markdown(
    a: &ReproduceArgs,
    mlp: &MlpHyper,
    cnn: &CnnHyper,
    mlp_summary: &[ConfigSummary],
    cnn_summary: &[ConfigSummary],
    threads: usize,
    times: &Times,
) -> String {
    let mut md = String::from("# Reproduction of the report's tables\n\n");
    if a.quick {
        md.push_str("**Quick smoke test** (2 MLP epochs, 1 CNN epoch): the numbers are not comparable with the report's.\n\n");
    }
    let _ = writeln!(md, "- command: `{}`", super::command_line());
    let _ = writeln!(
        md,
        "- machine: {} ({} logical CPUs), {threads} threads",
        cpu_model(),
        num_cpus()
    );
    let _ = writeln!(md, "- scratchnet {}", env!("CARGO_PKG_VERSION"));
    let seeds = if a.seeds.len() > 1 {
        format!(", {} seeds per configuration", a.seeds.len())
    } else {
        String::new()
    };
    if times.reused == 0 {
        let _ = writeln!(
            md,
            "- total time: {} wall clock; training epochs summed over the runs (some side by side): {}{seeds}",
            format_duration(times.wall),
            format_duration(times.trained_seconds)
        );
    } else {
        let _ = writeln!(
            md,
            "- time: {} wall clock for this invocation, which reused {} of the {} runs from an earlier one; \
             training epochs of all runs: {}{seeds}",
            format_duration(times.wall),
            times.reused,
            times.runs,
            format_duration(times.trained_seconds)
        );
    }
    let _ = writeln!(
        md,
        "\n## MLP: test accuracy by hidden size (report section 3.4)\n"
    );
    md.push_str(&comparison_table("hidden size", &REPORT_MLP, mlp_summary, |v| {
        v.to_string()
    }));
    let _ = writeln!(md, "\n![MLP training curves](mlp/curves.png)\n");
    let _ = writeln!(md, "## CNN: test accuracy by kernel size (report section 3.5)\n");
    md.push_str(&comparison_table("kernel size", &REPORT_CNN, cnn_summary, |v| {
        format!("{v} × {v}")
    }));
    let _ = writeln!(md, "\n{ACCURACY_NOTE}");
    let _ = writeln!(md, "\n![CNN training curves](cnn/curves.png)\n");
    let _ = writeln!(md, "## Configuration\n");
    let m = mlp.spec(256, 128, 0);
    let c = cnn.spec(7, 128, 0);
    let _ = writeln!(
        md,
        "- MLP: 784 → H (sigmoid) → 10, {}, lr {}, batch 128, loss {}, init N(0, {}²), inputs {}",
        plural(m.settings.epochs, "epoch"),
        m.settings.lr,
        m.settings.reduction.name(),
        m.init_std,
        m.normalize.name()
    );
    let _ = writeln!(
        md,
        "- CNN: {} filter(s) K×K (no bias) → ReLU → 10, {}, lr {}, batch 128, loss {}, He init, inputs {}",
        match c.model {
            ModelSpec::Cnn { filters, .. } => filters,
            ModelSpec::Mlp { .. } => 0,
        },
        plural(c.settings.epochs, "epoch"),
        c.settings.lr,
        c.settings.reduction.name(),
        c.normalize.name()
    );
    let _ = writeln!(
        md,
        "- seeds: {:?}; each run's folder holds its config.json, history.csv, model and curves",
        a.seeds
    );
    let _ = writeln!(
        md,
        "\nPer-configuration details: [mlp/results.md](mlp/results.md), [cnn/results.md](cnn/results.md)."
    );
    md
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// "1 epoch", "5 epochs".
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
