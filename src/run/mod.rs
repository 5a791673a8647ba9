//! One training run and its folder: `config.json` (the resolved
//! configuration, [`RunConfig`]), `history.csv` (one line per epoch),
//! `model.safetensors`, the figures, and `resume.safetensors` while it is
//! unfinished. Executing a run is `execute.rs`, resuming one `resume.rs`,
//! reading a finished one `history.rs`. Every file is written atomically; a
//! folder that already holds a finished run is not reused unless asked.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};

use crate::atomic::write_atomic;
use crate::data::batches::Normalize;
use crate::data::batches::Samples;
use crate::data::mnist::Dataset;
use crate::init::Init;
use crate::models::{Mlp, ModelSpec, Net};
use crate::train::{EpochRecord, Position, Settings};

pub(crate) mod execute;
mod history;
mod resume;

pub use execute::{BEST_MODEL_FILE, VALIDATION_STREAM, execute, execute_from, split_validation};
pub use history::{finished_run, read_history, run_title, save_run_curves};
pub use resume::{Resume, ResumeState, extend, load_resume, open_unfinished};

pub const CONFIG_FILE: &str = "config.json";
pub const HISTORY_FILE: &str = "history.csv";
pub const MODEL_FILE: &str = "model.safetensors";
/// Parameters and position of an unfinished run, written every `--checkpoint-every`
/// epochs and on interruption; removed when the run finishes.
pub const RESUME_FILE: &str = "resume.safetensors";
/// A finished run's final training state (parameters, optimiser, position).
pub const FINAL_STATE_FILE: &str = "state.safetensors";

/// Everything that determines a run, as saved in `config.json`: its
/// [`RunSpec`] and where and how it ran.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    pub scratchnet_version: String,
    #[serde(flatten)]
    pub spec: RunSpec,
    /// The code that trained it: `reference` (the textbook wing) or the
    /// kernel level (`avx512`, `avx2`, `neon`, `portable`); empty in runs
    /// written before the field existed.
    #[serde(default)]
    pub kernels: String,
    pub dataset: Dataset,
    pub data_dir: PathBuf,
    pub threads: usize,
    pub command: String,
    /// Epochs between resume checkpoints (`--checkpoint-every`; runs written
    /// before the field existed checkpoint every epoch).
    #[serde(default = "every_epoch")]
    pub checkpoint_every: usize,
    /// The model file the parameters started from (`--init-from`), instead
    /// of a fresh initialisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

fn every_epoch() -> usize {
    1
}

/// Everything that defines one training run (besides the data): the part
/// of `config.json` that decides the trained parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// The configuration saved in `config.json`; `kernels` names the code
    /// that trains it (`reference` or a kernel level).
    pub fn config(&self, data: &Data, command: &str, checkpoint_every: usize, kernels: &str) -> RunConfig {
        RunConfig {
            scratchnet_version: env!("CARGO_PKG_VERSION").to_string(),
            spec: *self,
            kernels: kernels.to_string(),
            dataset: data.dataset,
            data_dir: data.dir.clone(),
            threads: rayon::current_num_threads(),
            command: command.to_string(),
            checkpoint_every,
            init_from: None,
        }
    }

    /// Checks the model and every setting as the command line does; a
    /// configuration read back from a run folder goes through the same checks.
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        self.settings.validate()?;
        if !(self.init_std.is_finite() && self.init_std >= 0.0) {
            return Err(format!(
                "--init-std {} is out of range (expected a non-negative finite number)",
                self.init_std
            ));
        }
        Ok(())
    }

    /// The model with this run's initialisation: the MLP's `init` and
    /// `init_std`; the CNN is always He-initialised (its spec records `he`).
    pub fn net(&self) -> Net {
        match self.model.build() {
            Net::Mlp(net) => Net::Mlp(Mlp {
                init: self.init,
                init_std: self.init_std,
                ..net
            }),
            cnn => cnn,
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
    /// Start from these parameters instead of a fresh initialisation.
    pub init_from: Option<&'a InitFrom>,
}

/// Parameters of another model to start a run from (`--init-from`).
#[derive(Clone, Debug)]
pub struct InitFrom {
    pub path: PathBuf,
    pub params: Vec<f32>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEnd {
    Finished(Vec<EpochRecord>),
    /// Stopped on request; the resume checkpoint holds this position.
    Interrupted(Position),
}

/// The lock file of a run folder.
pub const LOCK_FILE: &str = ".lock";

/// A run folder's lock, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Takes the lock of the run folder `dir` for as long as the returned guard
/// lives. The lock is the operating system's lock on [`LOCK_FILE`], so it is
/// released when its holder exits, however it exits (a crashed run never
/// blocks the folder); the file records the holder, to name it when the lock
/// is taken.
/// A run folder locked by another process (its lock names the holder).
#[derive(Debug, thiserror::Error)]
#[error("{} is in use by another scratchnet process ({holder}); wait for it to finish or choose another --out", dir.display())]
pub struct InUse {
    pub dir: PathBuf,
    pub holder: String,
}

fn lock(dir: &Path) -> Result<RunLock> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);

    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("{}: cannot open the run folder's lock", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(InUse {
                dir: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "unknown holder".into()
                } else {
                    holder.into()
                },
            }
            .into());
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("{}: cannot lock", path.display()));
        }
    }
    let record = format!("pid {} since {}", std::process::id(), utc_stamp());
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(record.as_bytes()))
        .and_then(|_| file.flush())
        .with_context(|| format!("{}: cannot record the lock's holder", path.display()))?;
    Ok(RunLock { _file: file })
}

/// A run's folder, locked for as long as this value (or a clone) lives:
/// one writer per run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
    _lock: std::sync::Arc<RunLock>,
}

impl RunDir {
    /// Creates `path` (and parents). Refuses a folder holding a finished run
    /// (a `model.safetensors`) or an unfinished one (a `resume.safetensors`)
    /// unless `overwrite`.
    pub fn create(path: &Path, overwrite: bool) -> Result<Self> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("{}: cannot create the run folder", path.display()))?;
        // Locked first, so that what is checked below stays true.
        let lock = lock(path)?;
        let model = path.join(MODEL_FILE);
        if model.exists() && !overwrite {
            bail!(
                "{} already holds a finished run ({} exists); choose another --out or pass --overwrite",
                path.display(),
                MODEL_FILE
            );
        }
        if path.join(RESUME_FILE).exists() && !overwrite {
            bail!(
                "{} holds an unfinished run ({RESUME_FILE} exists); continue it with `scratchnet train --resume {}`, \
                 or choose another --out, or pass --overwrite to start again",
                path.display(),
                path.display()
            );
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: std::sync::Arc::new(lock),
        })
    }

    /// An existing run folder, locked (to resume it).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            bail!("{}: no such run folder", path.display());
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: std::sync::Arc::new(lock(path)?),
        })
    }

    pub fn model_path(&self) -> PathBuf {
        self.path.join(MODEL_FILE)
    }

    pub fn resume_path(&self) -> PathBuf {
        self.path.join(RESUME_FILE)
    }

    /// The training state at the end of a finished run, kept so that the run
    /// can be continued to more epochs.
    pub fn final_state_path(&self) -> PathBuf {
        self.path.join(FINAL_STATE_FILE)
    }

    /// The folder's `config.json`, read back.
    pub fn read_config(&self) -> Result<RunConfig> {
        let path = self.path.join(CONFIG_FILE);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a run configuration", path.display()))
    }

    pub fn write_config(&self, config: &RunConfig) -> Result<()> {
        let json = serde_json::to_string_pretty(config)?;
        write_atomic(&self.path.join(CONFIG_FILE), format!("{json}\n").as_bytes())
    }

    pub fn write_history(&self, history: &[EpochRecord]) -> Result<()> {
        write_atomic(&self.path.join(HISTORY_FILE), history_csv(history).as_bytes())
    }
}

/// `epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds[,validation_accuracy]`
/// lines (the last column only when the run holds out a validation set; a
/// value not measured is left empty).
pub fn history_csv(history: &[EpochRecord]) -> String {
    let validation = history.iter().any(|r| r.validation_accuracy.is_some());
    let mut out = String::from("epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds");
    out.push_str(if validation {
        ",validation_accuracy\n"
    } else {
        "\n"
    });
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for r in history {
        out.push_str(&format!(
            "{},{:.6},{:.6},{},{:.6},{:.4}",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            opt(r.test_loss),
            r.test_accuracy,
            r.seconds
        ));
        if validation {
            out.push_str(&format!(",{}", opt(r.validation_accuracy)));
        }
        out.push('\n');
    }
    out
}

/// The current UTC time as `YYYYMMDD-HHMMSS`, for default run-folder names.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_finished_run_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), false).unwrap();
        std::fs::write(run.model_path(), b"x").unwrap();
        // One writer: a second handle is refused while the first lives.
        let e = RunDir::create(dir.path(), true).unwrap_err().to_string();
        assert!(
            e.contains("in use") && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(run);
        let e = RunDir::create(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("--overwrite"), "{e}");
        assert!(RunDir::create(dir.path(), true).is_ok());
    }

    #[test]
    fn stamp_has_the_expected_shape() {
        let s = utc_stamp();
        assert_eq!(s.len(), 15);
        assert!(s.starts_with("20") && s.as_bytes()[8] == b'-');
    }
}
