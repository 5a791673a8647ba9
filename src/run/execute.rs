//! Executing one run: its configuration written first, the history after
//! every epoch, a resume checkpoint every `checkpoint_every` epochs and on
//! interruption, the best model by validation accuracy, then the model and
//! its figures.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow};

use super::{
    Data, ExecuteOptions, HISTORY_FILE, Resume, ResumeState, RunDir, RunEnd, RunSpec, run_title,
    save_run_curves,
};
use crate::checkpoint::{self, Checkpoint};
use crate::data::batches::Samples;
use crate::kernels::Choice;
use crate::models::ModelSpec;
use crate::optim;
use crate::train::{self, EpochRecord, Outcome, Position, Progress, Runner};

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
    let runner = Runner::new(spec.net(), Choice::Auto).map_err(|e| anyhow!(e))?;
    // A fresh start replaces any final state an earlier run left.
    if resume.is_none() && run_dir.final_state_path().exists() {
        std::fs::remove_file(run_dir.final_state_path())
            .with_context(|| format!("{}: cannot remove", run_dir.final_state_path().display()))?;
    }
    execute_net(&runner, spec, data, run_dir, options, resume, report)
}

/// Whether a run of `model` gives the same bits on any thread count with the
/// kernels chosen here.
pub(crate) fn thread_independent(model: &ModelSpec) -> bool {
    Runner::of(model, Choice::Auto).is_ok_and(|r| r.thread_independent())
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
    let mut config = spec.config(
        data,
        options.command,
        options.checkpoint_every,
        runner.code_name(),
    );
    config.init_from = options.init_from.map(|i| i.path.clone());
    let (mut params, start, mut history, mut opt_state) = match resume {
        Some(r) => {
            // A resumed run keeps the starting point it was given.
            config.init_from = run_dir.read_config().ok().and_then(|c| c.init_from);
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
            // A fresh start: an earlier run's resume checkpoint must not stay
            // beside this run's configuration.
            if run_dir.resume_path().exists() {
                std::fs::remove_file(run_dir.resume_path())
                    .with_context(|| format!("{}: cannot remove", run_dir.resume_path().display()))?;
            }
            run_dir.write_config(&config)?;
            let params = match options.init_from {
                Some(i) => {
                    anyhow::ensure!(
                        i.params.len() == spec.model.layout().len(),
                        "{}: {} parameters, but the run's model has {}",
                        i.path.display(),
                        i.params.len(),
                        spec.model.layout().len()
                    );
                    i.params.clone()
                }
                None => runner.init_params(settings.seed),
            };
            let state = settings.optimizer.state(params.len());
            (params, Position::default(), Vec::new(), state)
        }
    };
    let config_json = serde_json::to_string(&config)?;
    // A checkpoint of this run: the model, data and configuration, with the
    // given parameters and record.
    let checkpoint_of = |params: &[f32],
                         metrics: Option<String>,
                         resume: Option<String>,
                         extra: Vec<(String, Vec<f32>)>| Checkpoint {
        spec: spec.model,
        params: params.to_vec(),
        dataset: data.dataset,
        normalize: spec.normalize,
        config: Some(config_json.clone()),
        metrics,
        resume,
        extra,
    };
    // `finished`: the run's end ("all epochs" or "early stop"); none for the best model so far.
    let save_model =
        |path: &Path, params: &[f32], history: &[EpochRecord], finished: Option<&str>| -> Result<()> {
            let last = history.last().expect("at least one epoch");
            let metrics = serde_json::json!({
                "finished": finished,
                "test_accuracy": last.test_accuracy,
                "validation_accuracy": last.validation_accuracy,
                "train_loss": last.train_loss,
                "train_accuracy": last.train_accuracy,
                "epochs": last.epoch,
                "seconds": history.iter().map(|r| r.seconds).sum::<f64>(),
            });
            checkpoint::save(
                path,
                &checkpoint_of(params, Some(metrics.to_string()), None, Vec::new()),
            )
        };
    let save_state = |path: &Path,
                      params: &[f32],
                      opt: &optim::State,
                      position: Position,
                      history: &[EpochRecord]|
     -> Result<()> {
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
            path,
            &checkpoint_of(params, None, Some(serde_json::to_string(&state)?), extra),
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
    let batches = train_part.len().div_ceil(settings.batch_size);
    anyhow::ensure!(
        start.batch < batches,
        "{}: the position's batch {} is past the {batches} batches of an epoch",
        run_dir.resume_path().display(),
        start.batch
    );
    let best_path = run_dir.path.join(BEST_MODEL_FILE);
    let mut best = history
        .iter()
        .filter_map(|r| r.validation_accuracy)
        .fold(f64::NEG_INFINITY, f64::max);
    // The epochs before this call, for early stopping (the callback extends `history`).
    let earlier = history.clone();
    // Set by the caller's stop request or by a failed write; checked after every batch.
    let halt = AtomicBool::new(false);
    let result = train::train_from(
        runner,
        &mut params,
        &mut opt_state,
        train_part,
        validation,
        Some(&data.test),
        &settings,
        start,
        &earlier,
        Some(&halt),
        &mut |p| {
            if options.stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                halt.store(true, Ordering::SeqCst);
            }
            if let Progress::Epoch(r, params, opt) = &p {
                history.push((*r).clone());
                let mut written = run_dir.write_history(&history);
                if let Some(v) = r.validation_accuracy
                    && v > best
                {
                    best = v;
                    if written.is_ok() {
                        written = save_model(&best_path, params, &history, None);
                    }
                }
                let every = options.checkpoint_every;
                if written.is_ok() && every > 0 && r.epoch % every == 0 && r.epoch < settings.epochs {
                    written = save_state(
                        &run_dir.resume_path(),
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
                    // Nothing more can be saved: stop now rather than train on.
                    write_error.get_or_insert(e);
                    halt.store(true, Ordering::SeqCst);
                }
            }
            report(p);
        },
    );
    if let Some(e) = write_error {
        let kept = if run_dir.resume_path().exists() {
            format!(
                "; the last checkpoint written is {} (continue with `scratchnet train --resume {}`)",
                run_dir.resume_path().display(),
                run_dir.path.display()
            )
        } else {
            String::new()
        };
        return Err(e.context(format!(
            "training stopped after epoch {}: a file of the run could not be written. Free space on the disk \
             holding {} (or fix its permissions){kept}",
            history.len(),
            run_dir.path.display()
        )));
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
        Ok(Outcome::Interrupted(_, position)) => {
            save_state(&run_dir.resume_path(), &params, &opt_state, position, &history)?;
            Ok(RunEnd::Interrupted(position))
        }
        Ok(end @ (Outcome::Finished(_) | Outcome::EarlyStopped(_))) => {
            let finished = match end {
                Outcome::EarlyStopped(_) => "early stop",
                _ => "all epochs",
            };
            save_model(&run_dir.model_path(), &params, &history, Some(finished))?;
            // What `train --resume RUN --epochs N` continues from.
            let next = Position {
                epoch: history.len() + 1,
                ..Position::default()
            };
            save_state(&run_dir.final_state_path(), &params, &opt_state, next, &history)?;
            save_run_curves(&run_dir.path, &run_title(spec, &history), &history)?;
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

/// PRNG stream that draws the validation split.
pub const VALIDATION_STREAM: u64 = 3;

#[cfg(test)]
mod tests {
    use super::*;

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
}
