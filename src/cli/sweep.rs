//! `scratchnet sweep mlp|cnn`: one run per value (and seed), then tables and figures.
//! Rerunning with the same --out continues an interrupted sweep.

use std::path::Path;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use scratchnet::run::RunSpec;
use scratchnet::sweep::{
    Job, JobResult, PlanEvent, format_duration, run_plan, summarise, write_sweep_outputs,
};

use super::args::{CnnHyper, CommonArgs, MlpHyper, unique};
use super::dataset::DataCache;
use super::output::say;
use super::output::{epoch_line, progress_bar, warn_if_debug};
use super::validate::{hidden, kernel_size};

#[derive(Subcommand, Debug)]
pub enum SweepCommand {
    /// MLPs over hidden sizes (the report's section 3.4)
    Mlp(SweepMlpArgs),
    /// CNNs over kernel sizes (the report's section 3.5)
    Cnn(SweepCnnArgs),
}

/// Shown under `sweep mlp --help` and `sweep cnn --help`.
const LISTS: &str = "Any other flag that takes a value also takes a comma-separated list \
                     (--lr 0.01,0.05 --batch-size 64,128 --dropout 0,0.3): one configuration per combination, \
                     each with its own run folder and row.\n\n\
                     --shard I/N runs only the I-th of N shares of the plan (shares balanced by the runs' \
                     cost, the same for every process given the same flags), so that N processes, on one \
                     machine or on several sharing the folder, run the whole sweep together. A run folder \
                     being trained by another process is left to it. Run the sweep without --shard \
                     afterwards: it reuses every finished run and writes the tables and figures.";

/// `--shard I/N`: share I (from 1) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// The most shares a plan may be cut into.
const MAX_SHARDS: usize = 10_000;

fn shard(s: &str) -> Result<Shard, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected I/N, such as 1/4, got {s:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("expected I/N with whole numbers, got {s:?}"))
    };
    let (index, count) = (parse(i)?, parse(n)?);
    if !(1..=MAX_SHARDS).contains(&count) || !(1..=count).contains(&index) {
        return Err(format!("expected 1 ≤ I ≤ N ≤ {MAX_SHARDS}, got {s}"));
    }
    Ok(Shard { index, count })
}

/// The jobs of share `shard`: the plan's jobs dealt, costliest first, to the
/// share with the least work so far (ties to the lower share, then plan
/// order), so that every process computes the same shares.
pub fn share(jobs: &[Job], shard: Shard) -> Vec<Job> {
    let work = |j: &Job| j.spec.cost() * j.spec.settings.epochs as f64;
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| work(&jobs[b]).total_cmp(&work(&jobs[a])).then(a.cmp(&b)));
    let mut load = vec![0.0f64; shard.count];
    let mut owner = vec![0usize; jobs.len()];
    for i in order {
        let least = (0..shard.count)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        load[least] += work(&jobs[i]);
        owner[i] = least;
    }
    jobs.iter()
        .zip(&owner)
        .filter(|(_, o)| **o == shard.index - 1)
        .map(|(j, _)| j.clone())
        .collect()
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true, after_help = LISTS)]
pub struct SweepMlpArgs {
    /// Hidden sizes, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "32,64,128,256,512", value_parser = hidden, action = clap::ArgAction::Set)]
    hidden: Vec<usize>,
    /// Seeds, comma-separated; each configuration runs once per seed
    #[arg(long, value_delimiter = ',', default_value = "0", action = clap::ArgAction::Set)]
    seeds: Vec<u64>,
    /// Run only share I of N of the plan (see `--help`)
    #[arg(long, value_name = "I/N", value_parser = shard)]
    shard: Option<Shard>,
    #[command(flatten)]
    hyper: MlpHyper,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true, after_help = LISTS)]
pub struct SweepCnnArgs {
    /// Kernel sizes, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "3,5,7,9,11", value_parser = kernel_size, action = clap::ArgAction::Set)]
    kernel: Vec<usize>,
    /// Seeds, comma-separated; each configuration runs once per seed
    #[arg(long, value_delimiter = ',', default_value = "0", action = clap::ArgAction::Set)]
    seeds: Vec<u64>,
    /// Run only share I of N of the plan (see `--help`)
    #[arg(long, value_name = "I/N", value_parser = shard)]
    shard: Option<Shard>,
    #[command(flatten)]
    hyper: CnnHyper,
    #[command(flatten)]
    common: CommonArgs,
}

/// One job per value and seed: run folders `<letter><value>-s<seed>` in `dir`,
/// labelled `<LETTER>=<value>`.
fn jobs(
    dir: &Path,
    sweep: &str,
    letter: char,
    values: &[usize],
    seeds: &[u64],
    spec: impl Fn(usize, u64) -> RunSpec,
) -> Vec<Job> {
    let upper = letter.to_ascii_uppercase();
    let mut out = Vec::with_capacity(values.len() * seeds.len());
    for &v in values {
        for &seed in seeds {
            out.push(Job {
                sweep: sweep.into(),
                label: format!("{upper}={v}"),
                value: v,
                spec: spec(v, seed),
                dir: dir.join(format!("{letter}{v}-s{seed}")),
            });
        }
    }
    out
}

/// Jobs of an MLP sweep in `dir`: one per hidden size and seed.
pub fn mlp_jobs(
    dir: &Path,
    hidden: &[usize],
    seeds: &[u64],
    hyper: &MlpHyper,
    batch_size: usize,
) -> Vec<Job> {
    jobs(dir, "mlp", 'h', hidden, seeds, |h, seed| {
        hyper.spec(h, batch_size, seed)
    })
}

/// Jobs of a CNN sweep in `dir`: one per kernel size and seed.
pub fn cnn_jobs(
    dir: &Path,
    kernels: &[usize],
    seeds: &[u64],
    hyper: &CnnHyper,
    batch_size: usize,
) -> Vec<Job> {
    jobs(dir, "cnn", 'k', kernels, seeds, |k, seed| {
        hyper.spec(k, batch_size, seed)
    })
}

/// A sweep's plan: its jobs, common flags, folder, figure title and swept parameter.
type Plan = (
    Vec<Job>,
    CommonArgs,
    std::path::PathBuf,
    &'static str,
    &'static str,
    Option<Shard>,
);

fn plan(c: SweepCommand) -> Plan {
    match c {
        SweepCommand::Mlp(a) => {
            let out = a.common.out_dir("sweep-mlp");
            let (hidden, seeds) = (unique("--hidden", &a.hidden), unique("--seeds", &a.seeds));
            let jobs = mlp_jobs(&out, &hidden, &seeds, &a.hyper, a.common.batch_size);
            (
                jobs,
                a.common,
                out,
                "MLP sweep: learning curves by hidden size",
                "hidden size",
                a.shard,
            )
        }
        SweepCommand::Cnn(a) => {
            let out = a.common.out_dir("sweep-cnn");
            let (kernels, seeds) = (unique("--kernel", &a.kernel), unique("--seeds", &a.seeds));
            let jobs = cnn_jobs(&out, &kernels, &seeds, &a.hyper, a.common.batch_size);
            (
                jobs,
                a.common,
                out,
                "CNN sweep: learning curves by kernel size",
                "kernel size",
                a.shard,
            )
        }
    }
}

/// With list-valued flags, the jobs of every combination (see `grid`), each
/// labelled and foldered by its values, all in the first combination's folder.
fn plan_grid(first: Plan) -> Result<Plan> {
    let combos = super::grid::combinations();
    if combos.is_empty() {
        return Ok(first);
    }
    let (_, common, name, title, parameter, shard) = first;
    let mut jobs = Vec::new();
    for combo in combos {
        // A value that its flag refuses ends the program as the first one would (exit 2).
        let cli = super::Cli::try_parse_from(&combo.argv).unwrap_or_else(|e| e.exit());
        let super::Command::Sweep(c) = cli.command else {
            unreachable!("a sweep command line stays a sweep");
        };
        for mut job in plan(c).0 {
            job.label = format!("{} {}", job.label, combo.label());
            let leaf = job
                .dir
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let leaf = match leaf.rsplit_once("-s") {
                Some((head, seed)) => format!("{head}-{}-s{seed}", combo.folder()),
                None => format!("{leaf}-{}", combo.folder()),
            };
            job.dir = name.join(leaf);
            jobs.push(job);
        }
    }
    Ok((jobs, common, name, title, parameter, shard))
}

pub fn run(c: SweepCommand) -> Result<()> {
    let (jobs, common, name, title, parameter, shard) = plan_grid(plan(c))?;
    for job in &jobs {
        job.spec.validate().map_err(super::usage)?;
    }
    warn_if_debug();
    let threads = super::set_threads(common.threads)?;
    std::fs::create_dir_all(&name)?;
    let data = DataCache::new(&common.data)?;
    if let Some(s) = shard {
        let mine = share(&jobs, s);
        say!(
            "sweep shard {}/{}: {} of the plan's {} runs into {} ({threads} threads)",
            s.index,
            s.count,
            mine.len(),
            jobs.len(),
            name.display()
        );
        let results = run_jobs(&mine, !common.overwrite, true, &data, 1)?;
        let labels: Vec<String> = results
            .iter()
            .map(|r| format!("{} seed {}", r.job.label, r.job.spec.settings.seed))
            .collect();
        say!(
            "shard {}/{} done: {} runs finished here or earlier ({}); {} left to other processes. \
             When every shard is done, run the same command without --shard for the tables and figures.",
            s.index,
            s.count,
            results.len(),
            labels.join(", "),
            mine.len() - results.len()
        );
        return Ok(());
    }
    say!(
        "sweep of {} runs into {} ({threads} threads)",
        jobs.len(),
        name.display()
    );
    let results = run_jobs(&jobs, !common.overwrite, false, &data, 1)?;
    let summaries = summarise(&results);
    write_sweep_outputs(&name, title, parameter, &summaries)?;
    // The table, without the figure links that only a markdown viewer shows.
    let md = std::fs::read_to_string(name.join("results.md"))?;
    let table: Vec<&str> = md.lines().filter(|l| !l.starts_with("![")).collect();
    say!("\n{}", table.join("\n"));
    say!(
        "Wrote {}/results.md, results.csv, curves.png and curves.svg",
        name.display()
    );
    Ok(())
}

/// Runs a plan, printing each run's start and epochs with the plan's ETA;
/// `side_by_side` as in [`run_plan`] (epoch lines then name their run).
/// With `skip_in_use`, a run whose folder another process holds is left to it.
pub fn run_jobs(
    jobs: &[Job],
    reuse: bool,
    skip_in_use: bool,
    data: &DataCache,
    side_by_side: usize,
) -> Result<Vec<JobResult>> {
    let command = super::command_line();
    let batches: usize = jobs
        .iter()
        .map(|j| j.spec.settings.epochs * 60_000usize.div_ceil(j.spec.settings.batch_size))
        .sum();
    let bar = progress_bar(batches as u64);
    let result = run_plan(
        jobs,
        reuse,
        skip_in_use,
        &|n| data.get(n),
        &command,
        side_by_side,
        &mut |e| match e {
            PlanEvent::Start {
                job,
                index,
                total,
                reused,
                eta_seconds,
            } => bar.suspend(|| {
                let seed = job.spec.settings.seed;
                if reused {
                    say!(
                        "== [{index}/{total}] {} {} seed {seed}: finished earlier in {}, reused",
                        job.sweep,
                        job.label,
                        job.dir.display()
                    );
                } else {
                    let eta = eta_seconds
                        .map(|s| format!(", ETA for all runs {}", format_duration(s)))
                        .unwrap_or_default();
                    say!(
                        "== [{index}/{total}] {} {} seed {seed} → {}{eta}",
                        job.sweep,
                        job.label,
                        job.dir.display()
                    );
                }
            }),
            PlanEvent::Epoch {
                job,
                record,
                eta_seconds,
                concurrent,
            } => {
                let eta = eta_seconds
                    .map(|s| format!(", ETA {}", format_duration(s)))
                    .unwrap_or_default();
                let line = epoch_line(record, job.spec.settings.epochs, &eta);
                let seed = job.spec.settings.seed;
                bar.suspend(|| match concurrent {
                    true => say!("[{} {} seed {seed}] {line}", job.sweep, job.label),
                    false => say!("{line}"),
                });
            }
            PlanEvent::InUse { job, holder } => bar.suspend(|| {
                say!(
                    "== {} {} seed {}: {} is being trained by another process ({holder}); left to it",
                    job.sweep,
                    job.label,
                    job.spec.settings.seed,
                    job.dir.display()
                )
            }),
            PlanEvent::Batch => bar.inc(1),
        },
    );
    bar.finish_and_clear();
    result
}
