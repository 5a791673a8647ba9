//! The epoch loop: shuffle, gather a batch, forward, loss, backward, update.
//!
//! How a step is spread over the threads is a [`Step`], chosen for the model
//! and the kernel choice by [`Runner`] (`step.rs`): the sample-sharded step
//! over the textbook models or the engine's CNN, or the engine's MLP step.
//!
//! Reported per epoch, as in the report: the running means over the epoch's
//! batches of the batch-mean training loss and of the batch accuracy; then the
//! test accuracy (recorded, never used for any choice). All buffers are sized
//! before the first batch; the loop allocates nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::data::batches::{Batch, Batches, Samples};
use crate::layers::softmax_ce::Reduction;
use crate::models::{ModelSpec, Network};
use crate::optim::{Optimizer, Schedule, State};
use crate::rng::Rng;

pub mod answers;
mod step;
#[cfg(test)]
mod tests;

pub use answers::Answers;
pub use step::{Runner, Sharded, Step};

/// PRNG stream used for initialisation (the seed is shared with shuffling).
pub const INIT_STREAM: u64 = 1;
/// PRNG stream used for the per-epoch shuffles.
pub const SHUFFLE_STREAM: u64 = 2;

/// Optimisation settings of one run.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub epochs: usize,
    pub lr: f32,
    pub batch_size: usize,
    pub reduction: Reduction,
    pub seed: u64,
    /// The update rule (default: plain SGD, the report's).
    #[serde(default)]
    pub optimizer: Optimizer,
    /// The learning-rate schedule (default: constant).
    #[serde(default)]
    pub schedule: Schedule,
    /// Training samples held out for validation (seeded; 0: none).
    #[serde(default)]
    pub validation: usize,
    /// Stop after this many epochs without a better validation accuracy (0: never).
    #[serde(default)]
    pub patience: usize,
    /// Dropout rate on the output layer's input while training (0: none).
    #[serde(default)]
    pub dropout: f32,
    /// Largest random translation, in pixels, of each training image in each
    /// direction (0: none); see [`crate::data::batches::shift_image`].
    #[serde(default)]
    pub shift: usize,
}

impl Default for Settings {
    /// Ten epochs of plain SGD at η = 0.1 on batches of 128, gradients
    /// averaged over the batch, seed 0: a sound start for either model.
    ///
    /// ```
    /// use scratchnet::prelude::*;
    /// let s = Settings::default().epochs(3).lr(0.05);
    /// assert_eq!((s.epochs, s.lr, s.batch_size), (3, 0.05, 128));
    /// assert!(s.validate().is_ok());
    /// ```
    fn default() -> Self {
        Settings::sgd(10, 0.1, 128, Reduction::Mean, 0)
    }
}

/// The most epochs a run may ask for.
pub const MAX_EPOCHS: usize = 100_000;
/// The largest batch a run or an evaluation may ask for.
pub const MAX_BATCH: usize = 1 << 16;
/// The largest random translation of the training images, in pixels.
pub const MAX_SHIFT: usize = 8;

impl Settings {
    /// Checks every setting as the command line does (a configuration read
    /// back from a run folder is checked the same way); the error names the
    /// flag, its value and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        fn within<T: PartialOrd + std::fmt::Display>(
            flag: &str,
            v: T,
            ok: bool,
            range: &str,
        ) -> Result<(), String> {
            if ok {
                Ok(())
            } else {
                Err(format!("--{flag} {v} is out of range (expected {range})"))
            }
        }
        let o = &self.optimizer;
        let unit = |v: f32| (0.0..1.0).contains(&v);
        let non_negative = |v: f32| v.is_finite() && v >= 0.0;
        within(
            "epochs",
            self.epochs,
            (1..=MAX_EPOCHS).contains(&self.epochs),
            &format!("1 to {MAX_EPOCHS}"),
        )?;
        within(
            "lr",
            self.lr,
            self.lr.is_finite() && self.lr > 0.0,
            "a positive finite number",
        )?;
        within(
            "batch-size",
            self.batch_size,
            (1..=MAX_BATCH).contains(&self.batch_size),
            &format!("1 to {MAX_BATCH}"),
        )?;
        within("momentum", o.momentum, unit(o.momentum), "[0, 1)")?;
        within("beta1", o.beta1, unit(o.beta1), "[0, 1)")?;
        within("beta2", o.beta2, unit(o.beta2), "[0, 1)")?;
        within("eps", o.eps, non_negative(o.eps), "a non-negative finite number")?;
        within(
            "weight-decay",
            o.weight_decay,
            non_negative(o.weight_decay),
            "a non-negative finite number",
        )?;
        let sc = &self.schedule;
        within("step-size", sc.step_size, sc.step_size >= 1, "at least 1")?;
        within(
            "gamma",
            sc.gamma,
            non_negative(sc.gamma),
            "a non-negative finite number",
        )?;
        within(
            "warmup-epochs",
            sc.warmup_epochs,
            sc.warmup_epochs <= MAX_EPOCHS,
            &format!("0 to {MAX_EPOCHS}"),
        )?;
        within("dropout", self.dropout, unit(self.dropout), "[0, 1)")?;
        within(
            "shift",
            self.shift,
            self.shift <= MAX_SHIFT,
            &format!("0 to {MAX_SHIFT}"),
        )?;
        within(
            "patience",
            self.patience,
            self.patience <= MAX_EPOCHS,
            &format!("0 to {MAX_EPOCHS}"),
        )?;
        Ok(())
    }

    /// Sets the number of epochs.
    pub fn epochs(self, epochs: usize) -> Self {
        Settings { epochs, ..self }
    }

    /// Sets the learning rate η.
    pub fn lr(self, lr: f32) -> Self {
        Settings { lr, ..self }
    }

    /// Sets the batch size.
    pub fn batch_size(self, batch_size: usize) -> Self {
        Settings { batch_size, ..self }
    }

    /// Sets how a batch's losses and gradients combine.
    pub fn reduction(self, reduction: Reduction) -> Self {
        Settings { reduction, ..self }
    }

    /// Sets the seed of shuffling and dropout.
    pub fn seed(self, seed: u64) -> Self {
        Settings { seed, ..self }
    }

    /// Sets the update rule.
    pub fn optimizer(self, optimizer: Optimizer) -> Self {
        Settings { optimizer, ..self }
    }

    /// Sets the learning-rate schedule.
    pub fn schedule(self, schedule: Schedule) -> Self {
        Settings { schedule, ..self }
    }

    /// Sets the dropout rate on the output layer's input.
    pub fn dropout(self, dropout: f32) -> Self {
        Settings { dropout, ..self }
    }

    /// Sets the largest random translation of the training images, in pixels.
    pub fn shift(self, shift: usize) -> Self {
        Settings { shift, ..self }
    }

    /// The report's plain SGD at a constant rate.
    pub fn sgd(epochs: usize, lr: f32, batch_size: usize, reduction: Reduction, seed: u64) -> Self {
        Settings {
            epochs,
            lr,
            batch_size,
            reduction,
            seed,
            optimizer: Optimizer::default(),
            schedule: Schedule::default(),
            validation: 0,
            patience: 0,
            dropout: 0.0,
            shift: 0,
        }
    }
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Accuracy on the test set (NaN when training was given none).
    pub test_accuracy: f64,
    /// Mean cross-entropy on the test set (absent in histories written
    /// before it was recorded).
    #[serde(default)]
    pub test_loss: Option<f64>,
    pub seconds: f64,
    /// Accuracy on the held-out validation samples, when there are any.
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
}

/// What the loop reports while it runs.
pub enum Progress<'a> {
    Batch {
        epoch: usize,
        done: usize,
        total: usize,
    },
    /// An epoch ended; the parameters and optimiser state after it.
    Epoch(&'a EpochRecord, &'a [f32], &'a State),
}

/// Where training is inside an epoch: enough, with the parameters and the
/// seed, to continue bit-identically (the shuffles of earlier epochs are
/// replayed from the seed).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The epoch in progress (from 1).
    pub epoch: usize,
    /// Batches of it already done.
    pub batch: usize,
    /// Running sums over those batches of the batch-mean loss and the batch accuracy.
    pub loss_sum: f64,
    pub acc_sum: f64,
    /// Seconds spent on those batches.
    pub seconds: f64,
}

/// How a call to [`train`] ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// All epochs done: the history of the epochs this call ran.
    Finished(Vec<EpochRecord>),
    /// Stopped early: `patience` epochs passed without a better validation
    /// accuracy. The history of the epochs this call ran.
    EarlyStopped(Vec<EpochRecord>),
    /// Stopped on request after a batch: the epochs this call completed, and where it stopped.
    Interrupted(Vec<EpochRecord>, Position),
}

/// Training stopped because the loss stopped being finite, or exploded, or
/// rose above chance level while the accuracy stayed at chance ([`diverging`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "training diverged: the loss became {loss} at epoch {epoch}, batch {batch}. \
     The learning rate ({lr:e}) is probably too large; try --lr {suggestion:e}"
)]
pub struct Diverged {
    pub epoch: usize,
    pub batch: usize,
    pub loss: f64,
    pub lr: f32,
    pub suggestion: f32,
}

/// Whether an epoch's mean training loss and accuracy show a run that
/// diverged without the loss becoming infinite: a loss a hundred times that
/// of a uniform guess (ln C), or a loss above 1.5·ln C while the accuracy
/// stays at chance (below 1.5/C). A run that merely learns slowly sits near
/// ln C and is not stopped.
pub fn diverging(train_loss: f64, train_accuracy: f64, classes: usize) -> bool {
    let uniform = (classes.max(2) as f64).ln();
    let chance = 1.0 / classes.max(2) as f64;
    train_loss > 100.0 * uniform || (train_loss > 1.5 * uniform && train_accuracy < 1.5 * chance)
}

/// Fresh parameters for `net` from `seed`.
pub fn init_params<N: Network<f32>>(net: &N, seed: u64) -> Vec<f32> {
    let mut params = vec![0.0; net.layout().len()];
    net.init(&mut params, &mut Rng::new(seed, INIT_STREAM));
    params
}

/// Trains `params` in place for `settings.epochs` epochs.
pub fn train(
    runner: &Runner,
    params: &mut [f32],
    train: &Samples,
    test: Option<&Samples>,
    settings: &Settings,
    report: &mut dyn FnMut(Progress),
) -> Result<Vec<EpochRecord>, Diverged> {
    let mut state = settings.optimizer.state(params.len());
    match train_from(
        runner,
        params,
        &mut state,
        train,
        None,
        test,
        settings,
        Position::default(),
        &[],
        None,
        report,
    )? {
        Outcome::Finished(h) | Outcome::EarlyStopped(h) | Outcome::Interrupted(h, _) => Ok(h),
    }
}

/// Trains `params` (and the optimiser `state`) in place from `start` (the
/// default position is the beginning; `earlier` holds the epochs before it)
/// to the last epoch, or until `settings.patience` epochs pass without a
/// better validation accuracy, or until `stop` is set: the flag is checked
/// after every batch.
#[allow(clippy::too_many_arguments)]
pub fn train_from(
    runner: &Runner,
    params: &mut [f32],
    state: &mut State,
    train: &Samples,
    validation: Option<&Samples>,
    test: Option<&Samples>,
    settings: &Settings,
    start: Position,
    earlier: &[EpochRecord],
    stop: Option<&AtomicBool>,
    report: &mut dyn FnMut(Progress),
) -> Result<Outcome, Diverged> {
    let bs = settings.batch_size;
    let per_shard = bs.div_ceil(rayon::current_num_threads().clamp(1, bs));
    let mut step = runner.step(bs);
    let mut batches = Batches::new(train.len(), bs);
    let mut rng = Rng::new(settings.seed, SHUFFLE_STREAM);
    let mut history = Vec::new();

    let first_epoch = start.epoch.max(1);
    for epoch in 1..=settings.epochs {
        // Every epoch's shuffle is drawn, so a resumed run sees the same orders.
        batches.shuffle(&mut rng);
        if epoch < first_epoch {
            continue;
        }
        let started = Instant::now();
        let total = batches.count();
        let resumed = if epoch == first_epoch {
            start
        } else {
            Position {
                epoch,
                ..Position::default()
            }
        };
        let (mut loss_sum, mut acc_sum) = (resumed.loss_sum, resumed.acc_sum);
        let seconds_before = resumed.seconds;
        for b in resumed.batch..total {
            let indices = batches.indices(b);
            let n = indices.len();
            let batch = Batch {
                train,
                indices,
                next: if b + 1 < total {
                    batches.indices(b + 1)
                } else {
                    &[]
                },
                scale: settings.reduction.scale(n) as f32,
                dropout: settings.dropout,
                shift: settings.shift,
                seed: settings.seed,
                step: ((epoch - 1) * total + b) as u64,
            };
            let lr = settings
                .schedule
                .lr(settings.lr, (epoch - 1) * total + b, total, settings.epochs);
            let score = step.run(params, state, &settings.optimizer, lr, &batch);
            let batch_loss = score.loss_sum / n as f64;
            if !batch_loss.is_finite() {
                return Err(Diverged {
                    epoch,
                    batch: b + 1,
                    loss: batch_loss,
                    lr: settings.lr,
                    suggestion: settings.lr / 10.0,
                });
            }
            loss_sum += batch_loss;
            acc_sum += score.correct as f64 / n as f64;
            report(Progress::Batch {
                epoch,
                done: b + 1,
                total,
            });
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) && b + 1 < total {
                let position = Position {
                    epoch,
                    batch: b + 1,
                    loss_sum,
                    acc_sum,
                    seconds: seconds_before + started.elapsed().as_secs_f64(),
                };
                return Ok(Outcome::Interrupted(history, position));
            }
        }
        let seconds = seconds_before + started.elapsed().as_secs_f64();
        let (train_loss, train_accuracy) = (loss_sum / total as f64, acc_sum / total as f64);
        if diverging(train_loss, train_accuracy, runner.net.classes()) {
            return Err(Diverged {
                epoch,
                batch: total,
                loss: train_loss,
                lr: settings.lr,
                suggestion: settings.lr / 10.0,
            });
        }
        // Without a test set the accuracy is NaN and the loss absent.
        let tested = test.map(|t| runner.evaluate(params, t, per_shard));
        let validation_accuracy = validation.map(|v| runner.evaluate(params, v, per_shard).accuracy());
        let record = EpochRecord {
            epoch,
            train_loss,
            train_accuracy,
            test_accuracy: tested.as_ref().map_or(f64::NAN, |t| t.accuracy()),
            test_loss: tested.map(|t| t.loss),
            seconds,
            validation_accuracy,
        };
        report(Progress::Epoch(&record, params, state));
        history.push(record);
        if epoch < settings.epochs
            && settings.patience > 0
            && since_best(earlier.iter().chain(&history)) >= settings.patience
        {
            return Ok(Outcome::EarlyStopped(history));
        }
        if epoch < settings.epochs && stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Ok(Outcome::Interrupted(
                history,
                Position {
                    epoch: epoch + 1,
                    ..Position::default()
                },
            ));
        }
    }
    Ok(Outcome::Finished(history))
}

/// Epochs since the best validation accuracy of `history` (0 when the last
/// epoch is the best; ties count as not better).
pub fn epochs_since_best(history: &[EpochRecord]) -> usize {
    since_best(history.iter())
}

fn since_best<'a>(history: impl Iterator<Item = &'a EpochRecord>) -> usize {
    let mut best: Option<(usize, f64)> = None;
    let mut len = 0;
    for (i, r) in history.enumerate() {
        len = i + 1;
        if let Some(v) = r.validation_accuracy
            && best.is_none_or(|(_, b)| v > b)
        {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| len - 1 - i)
}

/// Bytes that training (`training` = true) or evaluation of `spec` in
/// batches of `batch` on `threads` threads asks for, roughly: the parameters
/// with their gradients and optimiser moments, and each shard's activations.
pub fn memory_estimate(spec: &ModelSpec, batch: usize, threads: usize, training: bool) -> u64 {
    let (params, threads) = (spec.param_count() as u64, threads.max(1) as u64);
    let per_sample = (spec.activations_per_sample() as u64).saturating_add(spec.input_len() as u64);
    let copies = if training { 3 + threads } else { 1 };
    params
        .saturating_mul(copies)
        .saturating_add(
            per_sample
                .saturating_mul(batch as u64)
                .saturating_mul(if training { 2 } else { 1 }),
        )
        .saturating_mul(4)
}

/// The memory this machine can give a new process (`MemAvailable` on
/// Linux), if known.
pub fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// An error, before anything is allocated, when [`memory_estimate`] exceeds
/// what the machine has available.
pub fn check_memory(spec: &ModelSpec, batch: usize, threads: usize, training: bool) -> Result<(), String> {
    let need = memory_estimate(spec, batch, threads, training);
    match memory_available() {
        Some(have) if need > have => Err(format!(
            "{} {} in batches of {batch} needs about {:.1} GiB, but this machine has {:.1} GiB available; \
             use a smaller model or --batch-size",
            if training { "training" } else { "evaluating" },
            spec.describe(),
            need as f64 / (1u64 << 30) as f64,
            have as f64 / (1u64 << 30) as f64
        )),
        _ => Ok(()),
    }
}
