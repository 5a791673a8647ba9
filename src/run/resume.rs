//! Resuming an unfinished run: what its resume checkpoint holds, and how a
//! run folder is opened to continue it.

use anyhow::{Context, Result, anyhow, bail};

use super::{CONFIG_FILE, FINAL_STATE_FILE, MODEL_FILE, RESUME_FILE, RunConfig, RunDir};
use crate::checkpoint::{self, Checkpoint};
use crate::optim;
use crate::train::{EpochRecord, Position};

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

/// Opens the unfinished run in `run_dir` to continue it: its configuration,
/// and its resume checkpoint with the optimiser's state. An error says why a
/// folder cannot be resumed (finished, never checkpointed, or inconsistent).
pub fn open_unfinished(run_dir: &RunDir) -> Result<(RunConfig, Resume)> {
    let run = &run_dir.path;
    let config_path = run.join(CONFIG_FILE);
    let config: RunConfig = serde_json::from_str(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("{}: cannot read", config_path.display()))?,
    )
    .with_context(|| format!("{}: not a run configuration", config_path.display()))?;
    if run_dir.model_path().exists() && !run_dir.resume_path().exists() {
        bail!("{} is already finished (it holds {MODEL_FILE})", run.display());
    }
    if !run_dir.resume_path().exists() {
        bail!(
            "{} holds no resume checkpoint ({RESUME_FILE}); start the run again instead",
            run.display()
        );
    }
    // The configuration and the position are checked as the command line
    // would check them: a hand-edited or damaged file is refused, not trusted.
    config
        .spec
        .validate()
        .map_err(|e| anyhow!("{}: {e}", config_path.display()))?;
    let (ckpt, state) = load_resume(run_dir)?;
    let resume_path = run_dir.resume_path();
    if ckpt.spec != config.spec.model {
        bail!(
            "{}: the resume checkpoint is of another model than config.json",
            run.display()
        );
    }
    if ckpt.normalize != config.spec.normalize || ckpt.dataset != config.dataset {
        bail!(
            "{}: the resume checkpoint was trained on {} normalised `{}`, but config.json says {} normalised `{}`",
            run.display(),
            ckpt.dataset.display_name(),
            ckpt.normalize.name(),
            config.dataset.display_name(),
            config.spec.normalize.name()
        );
    }
    check_position(&state, config.spec.settings.epochs)
        .map_err(|e| anyhow!("{}: {e}", resume_path.display()))?;
    // The optimiser's moments, when its rule keeps them.
    let moments = |name: &str| {
        ckpt.extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let optimizer = optim::State {
        steps: state.optimizer_steps,
        m: moments("optimizer.m"),
        v: moments("optimizer.v"),
    };
    let resume = Resume {
        params: ckpt.params,
        state,
        optimizer,
    };
    Ok((config, resume))
}

/// Sets the run in `run_dir` to end after `epochs` epochs, so that
/// [`open_unfinished`] continues it there: an unfinished run's target is
/// changed (to no fewer epochs than it has started); a finished run gets its
/// final state back as its resume checkpoint (it must have fewer epochs).
/// `config.json` records the new count and the command that asked for it.
///
/// With a constant learning rate the continued run is the run that would
/// have been trained for `epochs` from the start, bit for bit; a schedule
/// that depends on the number of epochs (cosine, step) follows the new count
/// from where the run is.
pub fn extend(run_dir: &RunDir, epochs: usize, command: &str) -> Result<()> {
    let run = &run_dir.path;
    let mut config = run_dir.read_config()?;
    let finished = run_dir.model_path().exists() && !run_dir.resume_path().exists();
    let done = if finished {
        let state = run_dir.final_state_path();
        if !state.exists() {
            bail!(
                "{} is finished but holds no {FINAL_STATE_FILE} (it was trained by an earlier version); \
                 start a new run from its model with `train … --init-from {}`",
                run.display(),
                run_dir.model_path().display()
            );
        }
        let ckpt = checkpoint::load(&state)?;
        let s: ResumeState =
            serde_json::from_str(ckpt.resume.as_deref().unwrap_or("")).with_context(|| {
                format!(
                    "{}: the `resume` metadata is missing or malformed",
                    state.display()
                )
            })?;
        s.history.len()
    } else {
        let (_, s) = load_resume(run_dir)?;
        s.position.epoch.saturating_sub(1)
    };
    // A finished run needs at least one more epoch; an unfinished one at
    // least the epoch it is in.
    let least = done + 1;
    if epochs < least {
        bail!(
            "--epochs {epochs}: {} has {} {done} epoch{}; ask for at least {least}",
            run.display(),
            if finished { "finished" } else { "completed" },
            if done == 1 { "" } else { "s" }
        );
    }
    config.spec.settings.epochs = epochs;
    config
        .spec
        .validate()
        .map_err(|e| anyhow!("{}: {e}", run.join(CONFIG_FILE).display()))?;
    config.command = format!("{}; then: {command}", config.command);
    if finished {
        let bytes = std::fs::read(run_dir.final_state_path())
            .with_context(|| format!("{}: cannot read", run_dir.final_state_path().display()))?;
        crate::atomic::write_atomic(&run_dir.resume_path(), &bytes)?;
    }
    run_dir.write_config(&config)
}

/// Checks a resume state's position and history against the run's epochs.
fn check_position(state: &ResumeState, epochs: usize) -> Result<()> {
    let p = &state.position;
    if !(1..=epochs).contains(&p.epoch) {
        bail!(
            "the position's epoch {} is not one of the run's epochs 1 to {epochs}",
            p.epoch
        );
    }
    if state.history.len() != p.epoch - 1 || state.history.iter().enumerate().any(|(i, r)| r.epoch != i + 1) {
        bail!(
            "the history holds {} epochs, but the position is at epoch {}",
            state.history.len(),
            p.epoch
        );
    }
    if !(p.loss_sum.is_finite() && p.acc_sum.is_finite() && p.seconds.is_finite() && p.seconds >= 0.0) {
        bail!("the position's running sums are not finite");
    }
    if state.threads == 0 {
        bail!("the run's thread count is 0");
    }
    Ok(())
}
