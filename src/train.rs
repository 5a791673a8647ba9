//! The epoch loop: shuffle, gather a batch, forward, loss, backward, update.
//!
//! How a step is spread over the threads is a [`Step`]. The generic one
//! ([`Sharded`]) cuts each batch into one contiguous shard per thread. Every
//! shard runs forward and backward on its rows with its own workspace and
//! gradient buffer (its matrix products single-threaded), and the shards'
//! gradients are summed in shard order before the update: the same bits for a
//! given seed and thread count. The MLP has its own step, which splits the
//! hidden layer across threads instead ([`mlp_step`]); its results do not
//! depend on the thread count at all.
//!
//! Reported per epoch, as in the report: the running means over the epoch's
//! batches of the batch-mean training loss and of the batch accuracy; then the
//! test accuracy (recorded, never used for any choice). All buffers are sized
//! before the first batch; the loop allocates nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::data::batches::{Batches, Samples, gather, prefetch};
use crate::layers::softmax_ce::{self, Reduction};
use crate::metrics::Confusion;
use crate::models::{Network, Noise};
use crate::optim::{Optimizer, Schedule, State};
use crate::rng::Rng;

use rayon::prelude::*;

mod mlp_step;

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
}

impl Settings {
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
        }
    }
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
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
    /// Stopped on request after a batch: the epochs this call completed, and where it stopped.
    Interrupted(Vec<EpochRecord>, Position),
}

/// Training stopped because the loss stopped being finite.
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

/// Fresh parameters for `net` from `seed`.
pub fn init_params<N: Network<f32>>(net: &N, seed: u64) -> Vec<f32> {
    let mut params = vec![0.0; net.layout().len()];
    net.init(&mut params, &mut Rng::new(seed, INIT_STREAM));
    params
}

/// One batch of a training step.
pub(crate) struct Batch<'a> {
    pub train: &'a Samples,
    /// Indices in `train` of the batch's samples.
    pub indices: &'a [u32],
    /// Indices of the next batch of the epoch (empty for the last): a step may
    /// start fetching them from memory while it computes.
    pub next: &'a [u32],
    /// ∂L/∂z scale of the loss reduction for the whole batch.
    pub scale: f32,
    /// Dropout of this step (its `ids` are filled in per sample).
    pub dropout: f32,
    pub seed: u64,
    pub step: u64,
}

impl Batch<'_> {
    /// The dropout noise of the samples `ids` (a part of `indices`).
    pub fn noise<'i>(&self, ids: &'i [u32]) -> Noise<'i> {
        Noise {
            rate: self.dropout,
            seed: self.seed,
            step: self.step,
            ids,
        }
    }
}

/// How a training step is computed and spread over the threads.
pub(crate) trait Step: Send {
    /// Forward pass of the batch to its loss, keeping what [`Step::update`] needs.
    fn loss(&mut self, params: &[f32], batch: &Batch) -> softmax_ce::BatchScore;
    /// The rest of the backward pass, and the optimiser's update of `params`
    /// (`batch` is the one [`Step::loss`] saw).
    fn update(&mut self, params: &mut [f32], state: &mut State, opt: &Optimizer, lr: f32, batch: &Batch);

    /// [`loss`](Step::loss), then [`update`](Step::update) unless the loss is
    /// not finite (`params` and `state` are then left as they were). Both run
    /// on a worker of the thread pool: the step's parallel phases then start by
    /// work-stealing between the workers, instead of each waking the pool from
    /// a blocked outside thread.
    fn run(
        &mut self,
        params: &mut [f32],
        state: &mut State,
        opt: &Optimizer,
        lr: f32,
        batch: &Batch,
    ) -> softmax_ce::BatchScore {
        rayon::scope(|_| {
            let score = self.loss(params, batch);
            if score.loss_sum.is_finite() {
                self.update(params, state, opt, lr, batch);
            }
            score
        })
    }
}

/// One thread's share of a batch: its rows, activations and gradients.
struct Shard<W> {
    ws: W,
    x: Vec<f32>,
    y: Vec<u8>,
    d_logits: Vec<f32>,
    grads: Vec<f32>,
    rows: usize,
    score: softmax_ce::BatchScore,
}

/// The generic step, for any [`Network`]: the batch is cut into one contiguous
/// shard per thread, each shard runs forward and backward with its own
/// workspace and gradient buffer, and the update sums the shards' gradients.
struct Sharded<'n, N: Network<f32>> {
    net: &'n N,
    shards: Vec<Shard<N::Workspace>>,
    per_shard: usize,
    used: usize,
}

impl<'n, N: Network<f32>> Sharded<'n, N> {
    fn new(net: &'n N, batch_size: usize) -> Self {
        let n_params = net.layout().len();
        let (d, c) = (net.input_dim(), net.classes());
        let n_shards = rayon::current_num_threads().clamp(1, batch_size);
        let per_shard = batch_size.div_ceil(n_shards);
        let shards = (0..n_shards)
            .map(|_| Shard {
                ws: net.workspace(per_shard),
                x: vec![0.0; per_shard * d],
                y: vec![0; per_shard],
                d_logits: vec![0.0; per_shard * c],
                grads: vec![0.0; n_params],
                rows: 0,
                score: Default::default(),
            })
            .collect();
        Sharded {
            net,
            shards,
            per_shard,
            used: 0,
        }
    }
}

impl<N: Network<f32>> Step for Sharded<'_, N> {
    fn loss(&mut self, params: &[f32], batch: &Batch) -> softmax_ce::BatchScore {
        let (net, c) = (self.net, self.net.classes());
        let per_shard = self.per_shard;
        let step = |(i, (shard, part)): (usize, (&mut Shard<N::Workspace>, &[u32]))| {
            shard.rows = gather(batch.train, part, &mut shard.x, &mut shard.y);
            let rows = shard.rows;
            let noise = batch.noise(part);
            let logits = net.forward_with(params, &shard.x, rows, Some(&noise), &mut shard.ws);
            shard.score = softmax_ce::forward_backward_scaled(
                logits,
                &shard.y[..rows],
                batch.scale,
                &mut shard.d_logits[..rows * c],
            );
            net.backward(
                params,
                &shard.x,
                rows,
                &shard.d_logits[..rows * c],
                &mut shard.ws,
                &mut shard.grads,
            );
            // This shard's rows of the next batch, for its gather at the next step.
            let next = batch.next.chunks(per_shard).nth(i).unwrap_or_default();
            prefetch(batch.train, next);
        };
        self.used = batch.indices.len().div_ceil(self.per_shard);
        if self.used == 1 {
            step((0, (&mut self.shards[0], batch.indices)));
        } else {
            self.shards[..self.used]
                .par_iter_mut()
                .zip(batch.indices.par_chunks(self.per_shard))
                .enumerate()
                .for_each(step);
        }
        let mut score = self.shards[0].score;
        for sh in &self.shards[1..self.used] {
            score.loss_sum += sh.score.loss_sum;
            score.correct += sh.score.correct;
        }
        score
    }

    fn update(&mut self, params: &mut [f32], state: &mut State, opt: &Optimizer, lr: f32, _: &Batch) {
        update_shards(opt, state, params, &self.shards[..self.used], lr);
    }
}

/// Parameters per parallel block of the update.
const UPDATE_BLOCK: usize = 1 << 14;
/// Parameters whose shard gradients are summed at a time, before their update.
const SUM_RUN: usize = 512;

/// One optimiser step with g = Σ_s g_s, the shards' gradients summed in shard
/// order, in parallel blocks of parameters (each element's update is
/// independent, so the blocking does not change the result).
fn update_shards<W: Sync>(
    opt: &Optimizer,
    state: &mut State,
    params: &mut [f32],
    shards: &[Shard<W>],
    lr: f32,
) {
    state.steps += 1;
    let k = opt.consts(lr, state.steps);
    // One block of parameters with its moments (empty for rules that keep none),
    // in runs short enough for the summed gradient to stay in L1.
    let block = |b: usize, p: &mut [f32], m: &mut [f32], v: &mut [f32]| {
        let mut g = [0.0f32; SUM_RUN];
        for (r, p) in p.chunks_mut(SUM_RUN).enumerate() {
            let from = b * UPDATE_BLOCK + r * SUM_RUN;
            let g = &mut g[..p.len()];
            g.copy_from_slice(&shards[0].grads[from..from + p.len()]);
            for sh in &shards[1..] {
                for (a, &x) in g.iter_mut().zip(&sh.grads[from..from + p.len()]) {
                    *a += x;
                }
            }
            let (at, n) = (r * SUM_RUN, p.len());
            opt.update(k, p, g, window(m, at, n), window(v, at, n));
        }
    };
    let blocks = params.par_chunks_mut(UPDATE_BLOCK);
    match (state.m.is_empty(), state.v.is_empty()) {
        (true, _) => blocks
            .enumerate()
            .for_each(|(b, p)| block(b, p, &mut [], &mut [])),
        (false, true) => blocks
            .zip(state.m.par_chunks_mut(UPDATE_BLOCK))
            .enumerate()
            .for_each(|(b, (p, m))| block(b, p, m, &mut [])),
        (false, false) => blocks
            .zip(state.m.par_chunks_mut(UPDATE_BLOCK))
            .zip(state.v.par_chunks_mut(UPDATE_BLOCK))
            .enumerate()
            .for_each(|(b, ((p, m), v))| block(b, p, m, v)),
    }
}

/// `s[at..at + n]`, or an empty slice when `s` is (the moments of a rule that keeps none).
fn window(s: &mut [f32], at: usize, n: usize) -> &mut [f32] {
    if s.is_empty() { s } else { &mut s[at..at + n] }
}

/// Trains `params` in place for `settings.epochs` epochs.
pub fn train<N: Network<f32>>(
    net: &N,
    params: &mut [f32],
    train: &Samples,
    test: &Samples,
    settings: &Settings,
    report: &mut dyn FnMut(Progress),
) -> Result<Vec<EpochRecord>, Diverged> {
    let mut state = settings.optimizer.state(params.len());
    match train_from(
        net,
        params,
        &mut state,
        train,
        None,
        test,
        settings,
        Position::default(),
        None,
        report,
    )? {
        Outcome::Finished(h) | Outcome::Interrupted(h, _) => Ok(h),
    }
}

/// Trains `params` (and the optimiser `state`) in place from `start` (the
/// default position is the beginning) to the last epoch, or until `stop` is
/// set: the flag is checked after every batch.
#[allow(clippy::too_many_arguments)]
pub fn train_from<N: Network<f32>>(
    net: &N,
    params: &mut [f32],
    state: &mut State,
    train: &Samples,
    validation: Option<&Samples>,
    test: &Samples,
    settings: &Settings,
    start: Position,
    stop: Option<&AtomicBool>,
    report: &mut dyn FnMut(Progress),
) -> Result<Outcome, Diverged> {
    let bs = settings.batch_size;
    let per_shard = bs.div_ceil(rayon::current_num_threads().clamp(1, bs));
    let mut step: Box<dyn Step + '_> = match net.mlp() {
        Some(mlp) => Box::new(mlp_step::MlpStep::new(mlp, bs)),
        None => Box::new(Sharded::new(net, bs)),
    };
    let mut batches = Batches::new(train.len(), bs);
    let mut rng = Rng::new(settings.seed, SHUFFLE_STREAM);
    let mut history = Vec::with_capacity(settings.epochs);

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
        let test_accuracy = evaluate(net, params, test, per_shard).accuracy();
        let validation_accuracy = validation.map(|v| evaluate(net, params, v, per_shard).accuracy());
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / total as f64,
            train_accuracy: acc_sum / total as f64,
            test_accuracy,
            seconds,
            validation_accuracy,
        };
        report(Progress::Epoch(&record, params, state));
        history.push(record);
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

/// Confusion matrix of `net` on `data`, in batches of `batch_size`, the
/// batches spread over the threads (each with its own workspace).
pub fn evaluate<N: Network<f32>>(net: &N, params: &[f32], data: &Samples, batch_size: usize) -> Confusion {
    let d = net.input_dim();
    let c = net.classes();
    let batch_size = batch_size.max(1);
    let n_batches = data.len().div_ceil(batch_size);
    let threads = rayon::current_num_threads().clamp(1, n_batches.max(1));
    let per_thread = n_batches.div_ceil(threads).max(1);
    let part = |t: usize| {
        let mut ws = net.workspace(batch_size);
        let mut confusion = Confusion::default();
        for b in t * per_thread..((t + 1) * per_thread).min(n_batches) {
            let start = b * batch_size;
            let n = batch_size.min(data.len() - start);
            let logits = net.forward(params, &data.x[start * d..(start + n) * d], n, &mut ws);
            for (row, &label) in logits.chunks_exact(c).zip(&data.y[start..start + n]) {
                confusion.add(label as usize, softmax_ce::argmax(row));
            }
        }
        confusion
    };
    (0..threads)
        .into_par_iter()
        .map(part)
        .reduce(Confusion::default, |mut a, b| {
            a.merge(&b);
            a
        })
}
