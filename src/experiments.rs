//! Experiments: one training run into a run folder, sweeps over a
//! hyperparameter (resumable: finished runs are verified and skipped), their
//! result tables and figures, and the reproduction of the report's tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};

use crate::atomic::write_atomic;
use crate::checkpoint::{self, Checkpoint};
use crate::data::batches::{Normalize, Samples};
use crate::data::mnist::Dataset;
use crate::init::Init;
use crate::kernels::Choice;
use crate::models::{Mlp, ModelSpec, Net};
use crate::optim;
use crate::plot::{Panel, Series, save_figure};
use crate::run::{CONFIG_FILE, HISTORY_FILE, RunConfig, RunDir};
use crate::train::{self, EpochRecord, Outcome, Position, Progress, Runner, Settings};

/// Everything that defines one training run (besides the data).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunSpec {
    pub model: ModelSpec,
    pub init: Init,
    pub init_std: f64,
    pub normalize: Normalize,
    pub settings: Settings,
}

/// A dataset's splits, normalised.
pub struct Data {
    pub dataset: Dataset,
    pub dir: PathBuf,
    pub normalize: Normalize,
    pub train: Samples,
    pub test: Samples,
}

impl RunSpec {
    /// The configuration saved in `config.json`.
    pub fn config(&self, data: &Data, command: &str, checkpoint_every: usize) -> RunConfig {
        RunConfig {
            scratchnet_version: env!("CARGO_PKG_VERSION").to_string(),
            model: self.model,
            init: self.init,
            init_std: self.init_std,
            settings: self.settings,
            normalize: self.normalize,
            dataset: data.dataset,
            data_dir: data.dir.clone(),
            threads: rayon::current_num_threads(),
            command: command.to_string(),
            checkpoint_every,
        }
    }

    /// Relative cost of one epoch, for ETAs: the training FLOPs per sample
    /// plus a fixed share for what does not scale with the model (batching,
    /// the loss, evaluation); roughly proportional to time.
    pub fn cost(&self) -> f64 {
        const OVERHEAD: f64 = 150_000.0;
        OVERHEAD + crate::bench::train_flops_per_sample(&self.model)
    }
}

/// How [`execute`] runs.
#[derive(Clone, Copy, Default)]
pub struct ExecuteOptions<'a> {
    /// The command line, recorded in `config.json`.
    pub command: &'a str,
    /// Checked after every batch: when set, the run saves where it is and stops.
    pub stop: Option<&'a AtomicBool>,
    /// Write a resume checkpoint every this many epochs (0: never).
    pub checkpoint_every: usize,
}

/// Where an unfinished run stopped, stored in its resume checkpoint.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResumeState {
    pub position: Position,
    pub history: Vec<EpochRecord>,
    /// Threads of the run: resuming with the same count gives the same bits.
    pub threads: usize,
    /// Optimiser steps taken (its moments are the checkpoint's `optimizer.m`, `optimizer.v`).
    #[serde(default)]
    pub optimizer_steps: u64,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEnd {
    Finished(Vec<EpochRecord>),
    /// Stopped on request; the resume checkpoint holds this position.
    Interrupted(Position),
}

/// Trains `spec` into `run_dir`: `config.json` first, `history.csv` after every
/// epoch, a resume checkpoint every `checkpoint_every` epochs and on
/// interruption, then `model.safetensors` and `curves.png`/`.svg`.
pub fn execute(
    spec: &RunSpec,
    data: &Data,
    run_dir: &RunDir,
    options: ExecuteOptions,
    report: &mut dyn FnMut(Progress),
) -> Result<RunEnd> {
    execute_from(spec, data, run_dir, options, None, report)
}

/// [`execute`], continuing from a resume checkpoint when `resume` is given.
pub fn execute_from(
    spec: &RunSpec,
    data: &Data,
    run_dir: &RunDir,
    options: ExecuteOptions,
    resume: Option<Resume>,
    report: &mut dyn FnMut(Progress),
) -> Result<RunEnd> {
    anyhow::ensure!(
        data.normalize == spec.normalize,
        "data normalised differently from the run"
    );
    let net = match spec.model.build() {
        Net::Mlp(net) => Net::Mlp(Mlp {
            init: spec.init,
            init_std: spec.init_std,
            ..net
        }),
        cnn => cnn,
    };
    let runner = Runner::new(net, Choice::Auto).map_err(|e| anyhow!(e))?;
    execute_net(&runner, spec, data, run_dir, options, resume, report)
}

/// Whether a run of `model` gives the same bits on any thread count with the
/// kernels chosen here.
fn thread_independent(model: &ModelSpec) -> bool {
    Runner::of(model, Choice::Auto).is_ok_and(|r| r.thread_independent())
}

/// What a resume checkpoint holds: parameters, position, optimiser state.
pub struct Resume {
    pub params: Vec<f32>,
    pub state: ResumeState,
    pub optimizer: optim::State,
}

/// Reads the resume checkpoint of `run_dir`.
pub fn load_resume(run_dir: &RunDir) -> Result<(Checkpoint, ResumeState)> {
    let path = run_dir.resume_path();
    let ckpt = checkpoint::load(&path)?;
    let state = ckpt.resume.as_deref().ok_or_else(|| {
        anyhow!(
            "{}: not a resume checkpoint (no `resume` metadata)",
            path.display()
        )
    })?;
    let state: ResumeState = serde_json::from_str(state)
        .with_context(|| format!("{}: the `resume` metadata is malformed", path.display()))?;
    Ok((ckpt, state))
}

#[allow(clippy::too_many_arguments)]
fn execute_net(
    runner: &Runner,
    spec: &RunSpec,
    data: &Data,
    run_dir: &RunDir,
    options: ExecuteOptions,
    resume: Option<Resume>,
    report: &mut dyn FnMut(Progress),
) -> Result<RunEnd> {
    let settings = spec.settings;
    if settings.batch_size > data.train.len() {
        anyhow::bail!(
            "--batch-size {} is larger than the {} training images",
            settings.batch_size,
            data.train.len()
        );
    }
    let config = spec.config(data, options.command, options.checkpoint_every);
    let (mut params, start, mut history, mut opt_state) = match resume {
        Some(r) => {
            let n = spec.model.layout().len();
            let expected = settings.optimizer.state(n);
            anyhow::ensure!(
                r.optimizer.m.len() == expected.m.len() && r.optimizer.v.len() == expected.v.len(),
                "{}: the optimiser state does not match the run's optimiser",
                run_dir.resume_path().display()
            );
            (r.params, r.state.position, r.state.history, r.optimizer)
        }
        None => {
            run_dir.write_config(&config)?;
            let params = runner.init_params(settings.seed);
            let state = settings.optimizer.state(params.len());
            (params, Position::default(), Vec::new(), state)
        }
    };
    let config_json = serde_json::to_string(&config)?;
    let save_model = |path: &Path, params: &[f32], history: &[EpochRecord]| -> Result<()> {
        let last = history.last().expect("at least one epoch");
        let metrics = serde_json::json!({
            "test_accuracy": last.test_accuracy,
            "validation_accuracy": last.validation_accuracy,
            "train_loss": last.train_loss,
            "train_accuracy": last.train_accuracy,
            "epochs": last.epoch,
            "seconds": history.iter().map(|r| r.seconds).sum::<f64>(),
        });
        checkpoint::save(
            path,
            &Checkpoint {
                spec: spec.model,
                params: params.to_vec(),
                dataset: data.dataset,
                normalize: spec.normalize,
                config: Some(config_json.clone()),
                metrics: Some(metrics.to_string()),
                resume: None,
                extra: Vec::new(),
            },
        )
    };
    let save_resume =
        |params: &[f32], opt: &optim::State, position: Position, history: &[EpochRecord]| -> Result<()> {
            let state = ResumeState {
                position,
                history: history.to_vec(),
                threads: rayon::current_num_threads(),
                optimizer_steps: opt.steps,
            };
            let mut extra = Vec::new();
            if !opt.m.is_empty() {
                extra.push(("optimizer.m".to_string(), opt.m.clone()));
            }
            if !opt.v.is_empty() {
                extra.push(("optimizer.v".to_string(), opt.v.clone()));
            }
            checkpoint::save(
                &run_dir.resume_path(),
                &Checkpoint {
                    spec: spec.model,
                    params: params.to_vec(),
                    dataset: data.dataset,
                    normalize: spec.normalize,
                    config: Some(config_json.clone()),
                    metrics: None,
                    resume: Some(serde_json::to_string(&state)?),
                    extra,
                },
            )
        };
    let mut write_error = None;
    // A seeded part of the training set held out for validation (never the test set).
    let split =
        (settings.validation > 0).then(|| split_validation(&data.train, settings.validation, settings.seed));
    let (train_part, validation) = match &split {
        Some((t, v)) => (t, Some(v)),
        None => (&data.train, None),
    };
    if let Some(v) = validation {
        anyhow::ensure!(
            train_part.len() >= settings.batch_size && !v.is_empty(),
            "--validation {} leaves {} training samples, fewer than a batch",
            settings.validation,
            train_part.len()
        );
    }
    // Set by the user's interrupt or by early stopping; checked after every batch.
    let stop_now = AtomicBool::new(false);
    let mut early_stopped = false;
    let best_path = run_dir.path.join(BEST_MODEL_FILE);
    let mut best = history
        .iter()
        .filter_map(|r| r.validation_accuracy)
        .fold(f64::NEG_INFINITY, f64::max);
    let result = train::train_from(
        runner,
        &mut params,
        &mut opt_state,
        train_part,
        validation,
        &data.test,
        &settings,
        start,
        Some(&stop_now),
        &mut |p| {
            if let Progress::Batch { .. } = &p
                && options.stop.is_some_and(|s| s.load(Ordering::SeqCst))
            {
                stop_now.store(true, Ordering::SeqCst);
            }
            if let Progress::Epoch(r, params, opt) = &p {
                history.push((*r).clone());
                let mut written = run_dir.write_history(&history);
                if let Some(v) = r.validation_accuracy {
                    if v > best {
                        best = v;
                        if written.is_ok() {
                            written = save_model(&best_path, params, &history);
                        }
                    }
                    if settings.patience > 0 && epochs_since_best(&history) >= settings.patience {
                        early_stopped = true;
                        stop_now.store(true, Ordering::SeqCst);
                    }
                }
                let every = options.checkpoint_every;
                if written.is_ok() && every > 0 && r.epoch % every == 0 && r.epoch < settings.epochs {
                    written = save_resume(
                        params,
                        opt,
                        Position {
                            epoch: r.epoch + 1,
                            ..Position::default()
                        },
                        &history,
                    );
                }
                if let Err(e) = written {
                    write_error.get_or_insert(e);
                }
            }
            report(p);
        },
    );
    if let Some(e) = write_error {
        return Err(e);
    }
    match result {
        Err(e) => {
            let resume = run_dir.resume_path();
            let kept = if resume.exists() {
                format!(
                    "\nThe last good checkpoint is {} (resume with `scratchnet train --resume {}`, perhaps after lowering the rate).",
                    resume.display(),
                    run_dir.path.display()
                )
            } else {
                String::new()
            };
            let so_far = if history.is_empty() {
                String::new()
            } else {
                format!(
                    "\nThe history of the {} completed epochs is in {}",
                    history.len(),
                    run_dir.path.join(HISTORY_FILE).display()
                )
            };
            Err(anyhow!("{e}{so_far}{kept}"))
        }
        Ok(Outcome::Interrupted(_, position)) if !early_stopped => {
            save_resume(&params, &opt_state, position, &history)?;
            Ok(RunEnd::Interrupted(position))
        }
        Ok(Outcome::Finished(_) | Outcome::Interrupted(..)) => {
            save_model(&run_dir.model_path(), &params, &history)?;
            save_run_curves(&run_dir.path, &spec.model.describe(), &history)?;
            if run_dir.resume_path().exists() {
                std::fs::remove_file(run_dir.resume_path())
                    .with_context(|| format!("{}: cannot remove", run_dir.resume_path().display()))?;
            }
            Ok(RunEnd::Finished(history))
        }
    }
}

/// The model with the best validation accuracy so far, in runs with `--validation`.
pub const BEST_MODEL_FILE: &str = "model_best.safetensors";

/// Splits `train` into (rest, validation) with `n` samples drawn by a seeded permutation.
pub fn split_validation(train: &Samples, n: usize, seed: u64) -> (Samples, Samples) {
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    crate::rng::Rng::new(seed, VALIDATION_STREAM).shuffle(&mut order);
    let n = n.min(train.len());
    let pick = |idx: &[u32]| {
        let mut x = Vec::with_capacity(idx.len() * train.dim);
        let mut y = Vec::with_capacity(idx.len());
        // Keep the original order inside each part.
        let mut sorted = idx.to_vec();
        sorted.sort_unstable();
        for &i in &sorted {
            x.extend_from_slice(train.row(i as usize));
            y.push(train.y[i as usize]);
        }
        Samples { x, y, dim: train.dim }
    };
    (pick(&order[n..]), pick(&order[..n]))
}

/// Epochs since the best validation accuracy of `history` (0 when the last
/// epoch is the best; ties count as not better).
pub fn epochs_since_best(history: &[EpochRecord]) -> usize {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in history
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.validation_accuracy.map(|v| (i, v)))
    {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| history.len() - 1 - i)
}

/// PRNG stream that draws the validation split.
pub const VALIDATION_STREAM: u64 = 3;

/// `curves.png`/`.svg` of one run: training loss; training and test accuracy.
pub fn save_run_curves(dir: &Path, title: &str, history: &[EpochRecord]) -> Result<()> {
    let pts = |f: fn(&EpochRecord) -> f64| history.iter().map(|r| (r.epoch as f64, f(r))).collect::<Vec<_>>();
    let loss = Panel {
        title: "Training loss".into(),
        y_label: "cross-entropy (log scale)".into(),
        log_y: true,
        series: vec![Series {
            label: "train loss".into(),
            points: pts(|r| r.train_loss),
            thin: false,
        }],
    };
    let acc = Panel {
        title: "Accuracy".into(),
        y_label: "accuracy".into(),
        log_y: false,
        series: vec![
            Series {
                label: "train".into(),
                points: pts(|r| r.train_accuracy),
                thin: false,
            },
            Series {
                label: "test".into(),
                points: pts(|r| r.test_accuracy),
                thin: true,
            },
        ]
        .into_iter()
        .chain(history.iter().any(|r| r.validation_accuracy.is_some()).then(|| {
            Series {
                label: "validation".into(),
                points: history
                    .iter()
                    .filter_map(|r| r.validation_accuracy.map(|v| (r.epoch as f64, v)))
                    .collect(),
                thin: true,
            }
        }))
        .collect(),
    };
    save_figure(dir, "curves", title, &[loss, acc])
}

/// Parses a `history.csv`.
pub fn read_history(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |j: usize| -> Result<f64> {
                f.get(j)
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| anyhow!("{}: line {} is malformed: {line:?}", path.display(), i + 2))
            };
            Ok(EpochRecord {
                epoch: num(0)? as usize,
                train_loss: num(1)?,
                train_accuracy: num(2)?,
                test_accuracy: num(3)?,
                seconds: num(4)?,
                // An optional sixth column; empty when the run held out no validation set.
                validation_accuracy: f.get(5).and_then(|v| v.trim().parse().ok()),
            })
        })
        .collect()
}

/// The history of a run folder that already holds this exact run, finished:
/// same configuration, a checkpoint of the same model that loads, and every epoch.
pub fn finished_run(dir: &Path, spec: &RunSpec, dataset: Dataset) -> Option<Vec<EpochRecord>> {
    let config: RunConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join(CONFIG_FILE)).ok()?).ok()?;
    let same = config.model == spec.model
        && config.init == spec.init
        && config.init_std == spec.init_std
        && config.settings == spec.settings
        && config.normalize == spec.normalize
        && config.dataset == dataset;
    if !same {
        return None;
    }
    let ckpt = checkpoint::load(&dir.join(crate::run::MODEL_FILE)).ok()?;
    if ckpt.spec != spec.model {
        return None;
    }
    let history = read_history(&dir.join(HISTORY_FILE)).ok()?;
    // Every epoch ran, or early stopping ended the run (its model was saved).
    let complete =
        history.len() == spec.settings.epochs || (spec.settings.patience > 0 && !history.is_empty());
    complete.then_some(history)
}

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct Job {
    /// Which sweep it belongs to ("mlp", "cnn").
    pub sweep: String,
    /// The configuration's label in tables and legends ("H=256", "K=7").
    pub label: String,
    /// The swept value.
    pub value: usize,
    pub spec: RunSpec,
    /// Its run folder.
    pub dir: PathBuf,
}

/// What a job produced.
#[derive(Clone, Debug)]
pub struct JobResult {
    pub job: Job,
    pub history: Vec<EpochRecord>,
    /// Whether it was found finished on disk rather than trained now.
    pub reused: bool,
}

/// Events of a plan, for printing.
pub enum PlanEvent<'a> {
    /// A job starts (index from 1) or was found finished.
    Start {
        job: &'a Job,
        index: usize,
        total: usize,
        reused: bool,
        eta_seconds: Option<f64>,
    },
    /// An epoch of the current job ended.
    Epoch {
        job: &'a Job,
        record: &'a EpochRecord,
        eta_seconds: Option<f64>,
        /// Whether other jobs are running beside this one.
        concurrent: bool,
    },
    Batch,
}

/// Runs `jobs`. With `reuse`, jobs already finished in their folders
/// (verified by [`finished_run`]) are skipped and their results read back.
/// `data_for` gives the data of a normalisation (loaded once by the caller).
///
/// With `lanes` > 1, the jobs whose results do not depend on the thread count
/// (the MLP's, see `train::mlp_step`) run `lanes` at a time, longest first,
/// each on its own pool of threads/`lanes` threads (a small MLP keeps one
/// core busier than it keeps two); the others then run one after another on
/// all threads. The results come back in the order of `jobs` either way.
pub fn run_plan(
    jobs: &[Job],
    reuse: bool,
    data_for: &dyn Fn(Normalize) -> Result<std::sync::Arc<Data>>,
    command: &str,
    lanes: usize,
    report: &mut (dyn FnMut(PlanEvent) + Send),
) -> Result<Vec<JobResult>> {
    use std::sync::Mutex;
    let work = |j: &Job| j.spec.cost() * j.spec.settings.epochs as f64;
    let total_work: f64 = jobs.iter().map(work).sum();
    // Data first, on this thread (`data_for` loads and caches).
    let data: Vec<_> = jobs
        .iter()
        .map(|j| data_for(j.spec.normalize))
        .collect::<Result<_>>()?;
    // The ETA is the remaining work at the rate trained so far (wall clock,
    // so that runs side by side count once).
    struct Shared<'r> {
        report: &'r mut (dyn for<'a> FnMut(PlanEvent<'a>) + Send),
        started: usize,
        done_work: f64,
        trained_work: f64,
        training_since: Option<Instant>,
    }
    let shared = Mutex::new(Shared {
        report,
        started: 0,
        done_work: 0.0,
        trained_work: 0.0,
        training_since: None,
    });
    let eta = |sh: &Shared, in_flight: f64| {
        let rate = sh
            .training_since
            .map(|t| t.elapsed().as_secs_f64() / (sh.trained_work + in_flight));
        rate.filter(|r| r.is_finite() && sh.trained_work + in_flight > 0.0)
            .map(|r| (total_work - sh.done_work - in_flight).max(0.0) * r)
    };
    let run_one = |job: &Job, data: &Data, concurrent: bool| -> Result<JobResult> {
        let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(history) = reuse
            .then(|| finished_run(&job.dir, &job.spec, data.dataset))
            .flatten()
        {
            let mut sh = lock();
            sh.started += 1;
            sh.done_work += work(job);
            let index = sh.started;
            (sh.report)(PlanEvent::Start {
                job,
                index,
                total: jobs.len(),
                reused: true,
                eta_seconds: None,
            });
            return Ok(JobResult {
                job: job.clone(),
                history,
                reused: true,
            });
        }
        {
            let mut sh = lock();
            sh.started += 1;
            sh.training_since.get_or_insert_with(Instant::now);
            let (index, eta_seconds) = (sh.started, eta(&sh, 0.0));
            (sh.report)(PlanEvent::Start {
                job,
                index,
                total: jobs.len(),
                reused: false,
                eta_seconds,
            });
        }
        let run_dir = RunDir::create(&job.dir, true)?;
        let per_epoch = job.spec.cost();
        let options = ExecuteOptions {
            command,
            ..Default::default()
        };
        let end = execute(&job.spec, data, &run_dir, options, &mut |p| {
            let mut sh = lock();
            match p {
                Progress::Epoch(r, _, _) => {
                    let eta_seconds = eta(&sh, per_epoch * r.epoch as f64);
                    (sh.report)(PlanEvent::Epoch {
                        job,
                        record: r,
                        eta_seconds,
                        concurrent,
                    });
                }
                Progress::Batch { .. } => (sh.report)(PlanEvent::Batch),
            }
        })?;
        let RunEnd::Finished(_) = end else {
            anyhow::bail!("{}: the run stopped before its last epoch", job.dir.display());
        };
        // The history as written (six decimals), exactly as a reused run reads it,
        // so a sweep's summary does not depend on which runs were reused.
        let history = read_history(&job.dir.join(HISTORY_FILE))?;
        let mut sh = lock();
        sh.trained_work += work(job);
        sh.done_work += work(job);
        Ok(JobResult {
            job: job.clone(),
            history,
            reused: false,
        })
    };
    let mut results: Vec<Option<Result<JobResult>>> = jobs.iter().map(|_| None).collect();
    // Side by side: the thread-independent jobs, longest first.
    let mut side: Vec<usize> = (0..jobs.len())
        .filter(|&i| lanes > 1 && thread_independent(&jobs[i].spec.model))
        .collect();
    side.sort_by(|&a, &b| work(&jobs[b]).total_cmp(&work(&jobs[a])));
    if !side.is_empty() {
        let per_lane = (rayon::current_num_threads() / lanes).max(1);
        let queue = Mutex::new(side.into_iter());
        let done = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..lanes {
                scope.spawn(|| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(per_lane).build();
                    loop {
                        let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).next() else {
                            break;
                        };
                        let result = match &pool {
                            Ok(pool) => pool.install(|| run_one(&jobs[i], &data[i], true)),
                            Err(e) => Err(anyhow!("could not start a thread pool: {e}")),
                        };
                        done.lock().unwrap_or_else(|e| e.into_inner()).push((i, result));
                    }
                });
            }
        });
        for (i, r) in done.into_inner().unwrap_or_else(|e| e.into_inner()) {
            results[i] = Some(r);
        }
    }
    let side_failed = results.iter().flatten().any(|r| r.is_err());
    for i in 0..jobs.len() {
        if results[i].is_none() && !side_failed {
            let r = run_one(&jobs[i], &data[i], false);
            let failed = r.is_err();
            results[i] = Some(r);
            if failed {
                break;
            }
        }
    }
    results.into_iter().map_while(|r| r).collect()
}

/// One configuration of a sweep, aggregated over its seeds.
#[derive(Clone, Debug)]
pub struct ConfigSummary {
    pub label: String,
    pub value: usize,
    pub seeds: usize,
    pub test_accuracy_mean: f64,
    pub test_accuracy_std: f64,
    pub final_train_loss: f64,
    pub final_train_accuracy: f64,
    pub seconds_per_epoch: f64,
    pub total_seconds: f64,
    /// Per epoch, means over seeds: (train loss, train accuracy).
    pub curve: Vec<(f64, f64)>,
}

/// Groups a sweep's results by swept value, in first-seen order.
pub fn summarise(results: &[JobResult]) -> Vec<ConfigSummary> {
    let mut values: Vec<usize> = Vec::new();
    for r in results {
        if !values.contains(&r.job.value) {
            values.push(r.job.value);
        }
    }
    values
        .iter()
        .map(|&v| {
            let runs: Vec<&JobResult> = results.iter().filter(|r| r.job.value == v).collect();
            let n = runs.len() as f64;
            let last = |f: fn(&EpochRecord) -> f64| {
                runs.iter()
                    .map(|r| f(r.history.last().expect("epochs")))
                    .collect::<Vec<_>>()
            };
            let tests = last(|e| e.test_accuracy);
            let mean = tests.iter().sum::<f64>() / n;
            let std = if runs.len() > 1 {
                (tests.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            } else {
                0.0
            };
            let total_seconds = runs
                .iter()
                .flat_map(|r| r.history.iter().map(|e| e.seconds))
                .sum::<f64>();
            let epochs = runs.iter().map(|r| r.history.len()).sum::<usize>() as f64;
            let len = runs.iter().map(|r| r.history.len()).min().unwrap_or(0);
            let curve = (0..len)
                .map(|e| {
                    let l = runs.iter().map(|r| r.history[e].train_loss).sum::<f64>() / n;
                    let a = runs.iter().map(|r| r.history[e].train_accuracy).sum::<f64>() / n;
                    (l, a)
                })
                .collect();
            ConfigSummary {
                label: runs[0].job.label.clone(),
                value: v,
                seeds: runs.len(),
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

/// Test accuracy as "97.01 %" or "97.01 ± 0.12 %".
pub fn format_accuracy(s: &ConfigSummary) -> String {
    if s.seeds > 1 {
        format!(
            "{:.2} ± {:.2} %",
            100.0 * s.test_accuracy_mean,
            100.0 * s.test_accuracy_std
        )
    } else {
        format!("{:.2} %", 100.0 * s.test_accuracy_mean)
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
    let seeds = summaries.iter().map(|s| s.seeds).max().unwrap_or(1);
    if seeds > 1 {
        let _ = writeln!(
            md,
            "\nTest accuracy: mean ± sample standard deviation over {seeds} seeds; other columns are means."
        );
    }
    let _ = writeln!(md, "\n![learning curves](curves.png)");
    write_atomic(&dir.join("results.csv"), csv.as_bytes())?;
    write_atomic(&dir.join("results.md"), md.as_bytes())?;
    let series = |f: fn(&(f64, f64)) -> f64| {
        summaries
            .iter()
            .map(|s| Series {
                label: s.label.clone(),
                points: s
                    .curve
                    .iter()
                    .enumerate()
                    .map(|(e, p)| ((e + 1) as f64, f(p)))
                    .collect(),
                thin: false,
            })
            .collect::<Vec<_>>()
    };
    let panels = [
        Panel {
            title: "Training loss".into(),
            y_label: "cross-entropy (log scale)".into(),
            log_y: true,
            series: series(|p| p.0),
        },
        Panel {
            title: "Training accuracy".into(),
            y_label: "accuracy".into(),
            log_y: false,
            series: series(|p| p.1),
        },
    ];
    save_figure(dir, "curves", title, &panels)
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

/// The CPU model, from /proc/cpuinfo where available.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// "1h02m03s", "4m05s" or "12s".
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_round_trips_through_csv() {
        let dir = tempfile::tempdir().unwrap();
        let h = vec![
            EpochRecord {
                epoch: 1,
                train_loss: 0.5,
                train_accuracy: 0.8,
                test_accuracy: 0.85,
                seconds: 1.5,
                validation_accuracy: None,
            },
            EpochRecord {
                epoch: 2,
                train_loss: 0.25,
                train_accuracy: 0.9,
                test_accuracy: 0.875,
                seconds: 1.25,
                validation_accuracy: None,
            },
        ];
        let p = dir.path().join("history.csv");
        std::fs::write(&p, crate::run::history_csv(&h)).unwrap();
        assert_eq!(read_history(&p).unwrap(), h);
        std::fs::write(&p, "epoch,a\n1,x\n").unwrap();
        assert!(format!("{:#}", read_history(&p).unwrap_err()).contains("line 2"));
    }

    #[test]
    fn early_stopping_counts_epochs_since_the_best_validation_accuracy() {
        let h = |vals: &[f64]| -> Vec<EpochRecord> {
            vals.iter()
                .enumerate()
                .map(|(i, &v)| EpochRecord {
                    epoch: i + 1,
                    train_loss: 0.1,
                    train_accuracy: 0.9,
                    test_accuracy: 0.9,
                    seconds: 1.0,
                    validation_accuracy: Some(v),
                })
                .collect()
        };
        assert_eq!(epochs_since_best(&h(&[0.90, 0.95])), 0);
        assert_eq!(epochs_since_best(&h(&[0.90, 0.95, 0.94, 0.95])), 2);
        assert_eq!(epochs_since_best(&h(&[0.97, 0.95, 0.96])), 2);
    }

    #[test]
    fn validation_split_is_seeded_and_disjoint() {
        let data = Samples {
            x: (0..100).map(|v| v as f32).collect(),
            y: (0..100).map(|v| (v % 10) as u8).collect(),
            dim: 1,
        };
        let (t1, v1) = split_validation(&data, 20, 4);
        let (t2, v2) = split_validation(&data, 20, 4);
        let (_, v3) = split_validation(&data, 20, 5);
        assert_eq!((t1.len(), v1.len()), (80, 20));
        assert_eq!(v1.x, v2.x);
        assert_eq!(t1.x, t2.x);
        assert_ne!(v1.x, v3.x);
        let mut all: Vec<f32> = t1.x.iter().chain(&v1.x).copied().collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, data.x);
    }

    #[test]
    fn comparison_and_durations() {
        let s = ConfigSummary {
            label: "H=32".into(),
            value: 32,
            seeds: 1,
            test_accuracy_mean: 0.9600,
            test_accuracy_std: 0.0,
            final_train_loss: 0.1,
            final_train_accuracy: 0.99,
            seconds_per_epoch: 0.1,
            total_seconds: 10.0,
            curve: vec![],
        };
        let md = comparison_table("hidden", &REPORT_MLP, &[s], |v| v.to_string());
        assert!(md.contains("| 32 | 95.69 % | 96.00 % | +0.31 pp |"), "{md}");
        assert!(md.contains("| 64 | 96.94 % | not run |"), "{md}");
        assert_eq!(format_duration(3723.0), "1h02m03s");
        assert_eq!(format_duration(65.0), "1m05s");
    }
}
