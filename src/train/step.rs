//! How a training step is spread over the threads: the [`Step`] trait, the
//! sample-sharded step that runs any [`Network`], and the factory
//! ([`Runner`]) that picks the step for a model and a kernel choice.
//!
//! The sample-sharded step ([`Sharded`]) cuts each batch into one contiguous
//! shard per thread. Every shard runs forward and backward on its rows with
//! its own workspace and gradient buffer (its products single-threaded), and
//! the shards' gradients are summed in shard order before the update. The
//! engine's MLP step ([`MlpStep`]) splits the hidden layer across the threads
//! instead.

use rayon::prelude::*;

use crate::data::batches::{Batch, Samples, gather, prefetch};
use crate::engine::{Fast, MlpStep};
use crate::kernels::{Choice, Resolved};
use crate::layers::softmax_ce;
use crate::metrics::{Confusion, Evaluation};
use crate::models::{ModelSpec, Net, Network};
use crate::optim::{Optimizer, State};

/// How a training step is computed and spread over the threads.
pub trait Step: Send {
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
pub struct Sharded<N: Network<f32>> {
    net: N,
    shards: Vec<Shard<N::Workspace>>,
    per_shard: usize,
    used: usize,
}

impl<N: Network<f32>> Sharded<N> {
    /// The step for batches of up to `batch_size` samples on `threads` shards.
    pub fn new(net: N, batch_size: usize, threads: usize) -> Self {
        let n_params = net.layout().len();
        let (d, c) = (net.input_dim(), net.classes());
        let n_shards = threads.clamp(1, batch_size.max(1));
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

impl<N: Network<f32>> Step for Sharded<N> {
    fn loss(&mut self, params: &[f32], batch: &Batch) -> softmax_ce::BatchScore {
        let (net, c) = (&self.net, self.net.classes());
        let per_shard = self.per_shard;
        let step = |(i, (shard, part)): (usize, (&mut Shard<N::Workspace>, &[u32]))| {
            shard.rows = gather(batch, part, &mut shard.x, &mut shard.y);
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
    let consts = opt.consts(lr, state.steps);
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
            opt.update(consts, p, g, window(m, at, n), window(v, at, n));
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

impl Step for MlpStep {
    fn loss(&mut self, params: &[f32], batch: &Batch) -> softmax_ce::BatchScore {
        MlpStep::loss(self, params, batch)
    }

    fn update(&mut self, params: &mut [f32], state: &mut State, opt: &Optimizer, lr: f32, batch: &Batch) {
        MlpStep::update(self, params, state, opt, lr, batch)
    }
}

/// A model and the code that runs it: the textbook wing, or the engine on a
/// kernel level. The one place that decides how training and evaluation
/// spread their work over the threads of the current pool.
#[derive(Clone, Copy, Debug)]
pub struct Runner {
    pub net: Net,
    pub code: Resolved,
}

impl Runner {
    /// `net` run as `choice` says; an error for a level this CPU lacks or a
    /// bad `SCRATCHNET_KERNELS`.
    pub fn new(net: Net, choice: Choice) -> Result<Runner, String> {
        Ok(Runner {
            net,
            code: choice.resolve()?,
        })
    }

    /// The spec's model, run as `choice` says.
    pub fn of(spec: &ModelSpec, choice: Choice) -> Result<Runner, String> {
        Runner::new(spec.build(), choice)
    }

    /// Fresh parameters from `seed` (the textbook model's initialisation,
    /// whichever code runs it).
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        match self.net {
            Net::Mlp(n) => super::init_params(&n, seed),
            Net::Cnn(n) => super::init_params(&n, seed),
        }
    }

    /// `reference` or the kernel level's name.
    pub fn code_name(&self) -> &'static str {
        self.code.name()
    }

    /// Whether trained parameters are the same bits for any thread count (the
    /// engine's MLP step); otherwise they depend on it (`lib.rs`).
    pub fn thread_independent(&self) -> bool {
        matches!((self.net, self.code), (Net::Mlp(_), Resolved::Engine(_)))
    }

    fn threads() -> usize {
        rayon::current_num_threads().max(1)
    }

    /// The training step for batches of up to `batch_size` samples.
    pub fn step(&self, batch_size: usize) -> Box<dyn Step> {
        let threads = Self::threads();
        match (self.net, self.code) {
            (Net::Mlp(n), Resolved::Reference) => Box::new(Sharded::new(n, batch_size, threads)),
            (Net::Cnn(n), Resolved::Reference) => Box::new(Sharded::new(n, batch_size, threads)),
            (net, Resolved::Engine(k)) => match Fast::new(&net, k, threads) {
                Fast::Mlp(f) => Box::new(MlpStep::new(f.net, k, batch_size, threads)),
                Fast::Cnn(f) => Box::new(Sharded::new(f, batch_size, threads)),
            },
        }
    }

    /// Confusion matrix on `data`, in batches of `batch_size` spread over the threads.
    pub fn evaluate(&self, params: &[f32], data: &Samples, batch_size: usize) -> Evaluation {
        let threads = Self::threads();
        match (self.net, self.code) {
            (Net::Mlp(n), Resolved::Reference) => evaluate(&n, params, data, batch_size, threads),
            (Net::Cnn(n), Resolved::Reference) => evaluate(&n, params, data, batch_size, threads),
            (net, Resolved::Engine(k)) => match Fast::new(&net, k, threads) {
                Fast::Mlp(f) => evaluate(&f, params, data, batch_size, threads),
                Fast::Cnn(f) => evaluate(&f, params, data, batch_size, threads),
            },
        }
    }

    /// The logits `[n, classes]` of `n` inputs `x` (row-major), on the calling thread.
    pub fn logits(&self, params: &[f32], x: &[f32], n: usize) -> Vec<f32> {
        fn run<N: Network<f32>>(net: &N, params: &[f32], x: &[f32], n: usize) -> Vec<f32> {
            net.forward(params, x, n, &mut net.workspace(n)).to_vec()
        }
        match (self.net, self.code) {
            (Net::Mlp(m), Resolved::Reference) => run(&m, params, x, n),
            (Net::Cnn(m), Resolved::Reference) => run(&m, params, x, n),
            (net, Resolved::Engine(k)) => match Fast::new(&net, k, 1) {
                Fast::Mlp(f) => run(&f, params, x, n),
                Fast::Cnn(f) => run(&f, params, x, n),
            },
        }
    }
}

/// Confusion matrix and mean loss of `net` on `data`, in batches of
/// `batch_size`, the batches spread over the threads (each with its own
/// workspace).
fn evaluate<N: Network<f32>>(
    net: &N,
    params: &[f32],
    data: &Samples,
    batch_size: usize,
    threads: usize,
) -> Evaluation {
    let d = net.input_dim();
    let c = net.classes();
    let batch_size = batch_size.max(1);
    let n_batches = data.len().div_ceil(batch_size);
    let threads = threads.clamp(1, n_batches.max(1));
    let per_thread = n_batches.div_ceil(threads).max(1);
    let part = |t: usize| {
        let mut ws = net.workspace(batch_size);
        let mut confusion = Confusion::default();
        let mut loss_sum = 0.0f64;
        for b in t * per_thread..((t + 1) * per_thread).min(n_batches) {
            let start = b * batch_size;
            let n = batch_size.min(data.len() - start);
            let labels = &data.y[start..start + n];
            let logits = net.forward(params, &data.x[start * d..(start + n) * d], n, &mut ws);
            for (row, &label) in logits.chunks_exact(c).zip(labels) {
                confusion.add(label as usize, softmax_ce::argmax(row));
            }
            loss_sum += softmax_ce::score(logits, labels).loss_sum;
        }
        (confusion, loss_sum)
    };
    let (confusion, loss_sum) = (0..threads).into_par_iter().map(part).reduce(
        || (Confusion::default(), 0.0),
        |(mut a, la), (b, lb)| {
            a.merge(&b);
            (a, la + lb)
        },
    );
    Evaluation {
        confusion,
        loss: loss_sum / data.len().max(1) as f64,
    }
}
