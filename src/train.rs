//! The epoch loop: shuffle, gather a batch, forward, loss, backward, update.
//!
//! Reported per epoch, as in the report: the running means over the epoch's
//! batches of the batch-mean training loss and of the batch accuracy; then the
//! test accuracy (recorded, never used for any choice). All buffers are sized
//! before the first batch; the loop allocates nothing.

use std::time::Instant;

use crate::data::batches::{Batches, Samples, gather};
use crate::layers::softmax_ce::{self, Reduction};
use crate::metrics::Confusion;
use crate::models::Network;
use crate::optim::sgd_step;
use crate::rng::Rng;

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
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
}

/// What the loop reports while it runs.
pub enum Progress<'a> {
    Batch { epoch: usize, done: usize, total: usize },
    Epoch(&'a EpochRecord),
}

/// Training stopped because the loss or the parameters stopped being finite.
#[derive(Debug, thiserror::Error)]
#[error(
    "training diverged: the loss became {loss} at epoch {epoch}, batch {batch}. \
     The learning rate ({lr}) is probably too large; try --lr {suggestion}"
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

/// Trains `params` in place for `settings.epochs` epochs.
pub fn train<N: Network<f32>>(
    net: &N,
    params: &mut [f32],
    train: &Samples,
    test: &Samples,
    settings: &Settings,
    report: &mut dyn FnMut(Progress),
) -> Result<Vec<EpochRecord>, Diverged> {
    let bs = settings.batch_size;
    let (d, c) = (net.input_dim(), net.classes());
    let mut ws = net.workspace(bs);
    let mut grads = vec![0.0f32; params.len()];
    let mut x = vec![0.0f32; bs * d];
    let mut y = vec![0u8; bs];
    let mut d_logits = vec![0.0f32; bs * c];
    let mut batches = Batches::new(train.len(), bs);
    let mut rng = Rng::new(settings.seed, SHUFFLE_STREAM);
    let mut history = Vec::with_capacity(settings.epochs);

    for epoch in 1..=settings.epochs {
        let start = Instant::now();
        batches.shuffle(&mut rng);
        let total = batches.count();
        let (mut loss_sum, mut acc_sum) = (0.0f64, 0.0f64);
        for b in 0..total {
            let n = gather(train, batches.indices(b), &mut x, &mut y);
            let logits = net.forward(params, &x, n, &mut ws);
            let score =
                softmax_ce::forward_backward(logits, &y[..n], settings.reduction, &mut d_logits[..n * c]);
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
            net.backward(params, &x, n, &d_logits[..n * c], &mut ws, &mut grads);
            sgd_step(params, &grads, settings.lr);
            report(Progress::Batch {
                epoch,
                done: b + 1,
                total,
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        let test_accuracy = evaluate(net, params, test, bs, &mut ws).accuracy();
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / total as f64,
            train_accuracy: acc_sum / total as f64,
            test_accuracy,
            seconds,
        };
        report(Progress::Epoch(&record));
        history.push(record);
    }
    Ok(history)
}

/// Confusion matrix of `net` on `data`, in batches of `batch_size` (at most the
/// workspace's batch size).
pub fn evaluate<N: Network<f32>>(
    net: &N,
    params: &[f32],
    data: &Samples,
    batch_size: usize,
    ws: &mut N::Workspace,
) -> Confusion {
    let d = net.input_dim();
    let c = net.classes();
    let mut confusion = Confusion::default();
    for start in (0..data.len()).step_by(batch_size) {
        let n = batch_size.min(data.len() - start);
        let logits = net.forward(params, &data.x[start * d..(start + n) * d], n, ws);
        for (row, &t) in logits.chunks_exact(c).zip(&data.y[start..start + n]) {
            confusion.add(t as usize, softmax_ce::argmax(row));
        }
    }
    confusion
}

/// [`evaluate`] with its own workspace.
pub fn evaluate_fresh<N: Network<f32>>(
    net: &N,
    params: &[f32],
    data: &Samples,
    batch_size: usize,
) -> Confusion {
    let mut ws = net.workspace(batch_size);
    evaluate(net, params, data, batch_size, &mut ws)
}
