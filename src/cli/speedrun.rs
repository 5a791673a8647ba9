//! `scratchnet speedrun cnn|mlp`: the time-to-accuracy record. Trains the
//! `fast-cnn` or `fast-mlp` preset on the whole training set once per seed,
//! with no evaluation between epochs and no run folder, and reports each
//! run's wall time (data, training and the final test evaluation) and test
//! accuracy, with their mean and standard deviation.
//!
//! The data is read from disk and checked once per process; that time is
//! counted in the first run. Every run then prepares its samples from the
//! decoded files, trains from its seed, and evaluates on the test set.

use std::ffi::OsString;
use std::time::Instant;

use anyhow::{Result, anyhow};
use clap::{Args, Parser, ValueEnum};
use scratchnet::kernels::Choice;
use scratchnet::train::{Runner, train};

use super::DataArgs;
use super::dataset::DataCache;
use super::output::{say, warn_if_debug};
use super::preset::{PRESETS, expand};
use super::train::TrainCommand;

/// Which record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Family {
    /// One convolution layer (the `fast-cnn` preset)
    Cnn,
    /// One hidden layer (the `fast-mlp` preset)
    Mlp,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Cnn => "cnn",
            Family::Mlp => "mlp",
        }
    }

    fn preset(self) -> &'static str {
        match self {
            Family::Cnn => "fast-cnn",
            Family::Mlp => "fast-mlp",
        }
    }
}

#[derive(Args, Debug)]
pub struct SpeedrunArgs {
    /// The model family
    #[arg(value_enum)]
    family: Family,
    /// Runs, one per seed
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    seeds: u32,
    /// The first run's seed (the others follow it)
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Train this many epochs instead of the preset's (to try a change; a
    /// record uses the preset's)
    #[arg(long, value_parser = super::validate::epochs)]
    epochs: Option<usize>,
    /// Worker threads (0: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print one JSON object on stdout instead of the table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

/// The preset's flags parsed as `train` parses them.
#[derive(Parser, Debug)]
#[command(args_override_self = true)]
struct PresetFlags {
    #[command(subcommand)]
    model: TrainCommand,
}

/// One run's figures.
#[derive(serde::Serialize)]
struct RunFigures {
    seed: u64,
    seconds: f64,
    test_accuracy: f64,
}

/// Mean and sample standard deviation (0 for one value).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

pub fn run(a: SpeedrunArgs) -> Result<()> {
    warn_if_debug();
    let threads = super::set_threads(a.threads)?;
    let kernels = super::kernels()?.name();
    let preset = PRESETS
        .iter()
        .find(|p| p.name == a.family.preset())
        .ok_or_else(|| anyhow!("no preset {}", a.family.preset()))?;
    let spec_of = |seed: u64| -> Result<scratchnet::run::RunSpec> {
        let argv: Vec<OsString> = ["speedrun", a.family.name(), "--preset", preset.name]
            .into_iter()
            .map(OsString::from)
            .chain([OsString::from("--seed"), OsString::from(seed.to_string())])
            .chain(
                a.epochs
                    .into_iter()
                    .flat_map(|e| [OsString::from("--epochs"), e.to_string().into()]),
            )
            .collect();
        let argv = expand(argv).map_err(|e| anyhow!(e))?;
        let flags = PresetFlags::try_parse_from(argv).map_err(|e| anyhow!("preset {}: {e}", preset.name))?;
        let (spec, _) = flags.model.spec();
        spec.validate().map_err(super::usage)?;
        Ok(spec)
    };
    let first = spec_of(a.first_seed)?;
    let started = Instant::now();
    let cache = DataCache::new(&a.data)?;
    let mut carried = started.elapsed().as_secs_f64();
    let shown = |line: std::fmt::Arguments| {
        if !a.json {
            say!("{line}");
        }
    };
    shown(format_args!(
        "speedrun {}: preset {} ({}), {threads} threads, kernels {kernels}",
        a.family.name(),
        preset.name,
        first.model.describe()
    ));
    shown(format_args!("flags:     {}", preset.flags.join(" ")));
    if let Some(e) = a.epochs {
        shown(format_args!("epochs:    {e} (--epochs; the preset has its own)"));
    }
    shown(format_args!(
        "data read from disk and checked in {carried:.2} s (counted in the first run)"
    ));
    let mut runs = Vec::new();
    for i in 0..a.seeds as u64 {
        let seed = a.first_seed + i;
        let spec = spec_of(seed)?;
        let t = Instant::now();
        let data = cache.get(spec.normalize)?;
        let runner = Runner::new(spec.net(), Choice::Auto).map_err(|e| anyhow!(e))?;
        let mut params = runner.init_params(seed);
        train(
            &runner,
            &mut params,
            &data.train,
            None,
            &spec.settings,
            &mut |_| {},
        )
        .map_err(|e| anyhow!("seed {seed}: {e}"))?;
        let accuracy = runner
            .evaluate(&params, &data.test, spec.settings.batch_size.max(1000))
            .accuracy();
        let seconds = t.elapsed().as_secs_f64() + std::mem::take(&mut carried);
        shown(format_args!(
            "run {}/{}  seed {seed:<4} {seconds:7.2} s   test accuracy {:.2} %",
            i + 1,
            a.seeds,
            100.0 * accuracy
        ));
        runs.push(RunFigures {
            seed,
            seconds,
            test_accuracy: accuracy,
        });
    }
    let (t_mean, t_std) = mean_std(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>());
    let (acc_mean, acc_std) = mean_std(&runs.iter().map(|r| r.test_accuracy).collect::<Vec<_>>());
    if a.json {
        let out = serde_json::json!({
            "family": a.family.name(),
            "preset": preset.name,
            "flags": preset.flags,
            "model": first.model.describe(),
            "kernels": kernels,
            "threads": threads,
            "epochs": first.settings.epochs,
            "runs": runs,
            "seconds": {"mean": t_mean, "std": t_std},
            "test_accuracy": {"mean": acc_mean, "std": acc_std},
        });
        println!("{out}");
    } else {
        say!(
            "mean over {} runs: {t_mean:.2} ± {t_std:.2} s, test accuracy {:.2} ± {:.2} %",
            runs.len(),
            100.0 * acc_mean,
            100.0 * acc_std
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::mean_std;

    #[test]
    fn mean_and_sample_deviation() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[7.0]), (7.0, 0.0));
    }
}
