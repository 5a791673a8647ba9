//! Resuming an unfinished run: what its resume checkpoint holds, and how a
//! run folder is opened to continue it.

use anyhow::{Context, Result, anyhow, bail};

use super::{CONFIG_FILE, MODEL_FILE, RESUME_FILE, RunConfig, RunDir};
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
    let (ckpt, state) = load_resume(run_dir)?;
    if ckpt.spec != config.spec.model {
        bail!(
            "{}: the resume checkpoint is of another model than config.json",
            run.display()
        );
    }
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
