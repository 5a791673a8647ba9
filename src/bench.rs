//! Throughput measurement: training steps per second of a model on synthetic
//! data, the FLOPs they represent, and the machine's matrix-multiply speed for
//! scale. Used by `scratchnet bench` and the criterion benches.

use std::time::Instant;

use crate::data::batches::Samples;
use crate::kernels::{Choice, Kernels};
use crate::layers::softmax_ce::Reduction;
use crate::linalg::matmul;
use crate::models::ModelSpec;
use crate::rng::Rng;
use crate::train::{self, Runner, Settings};
use rayon::prelude::*;

/// Floating-point operations of one training step per sample (forward and
/// backward, multiply-add = 2), counting the matrix products and convolutions
/// only: the measure the GFLOP/s figures use.
pub fn train_flops_per_sample(spec: &ModelSpec) -> f64 {
    match *spec {
        // forward x·W₁ᵀ and h·W₂ᵀ; backward ∂W₂, ∂h, ∂W₁ (no ∂x).
        ModelSpec::Mlp {
            input,
            hidden,
            classes,
            ..
        } => 2.0 * (2 * input * hidden + 3 * hidden * classes) as f64,
        // conv forward and ∂W (no ∂x); fc forward, ∂W, ∂h.
        ModelSpec::Cnn {
            side,
            kernel,
            filters,
            classes,
            pool,
            pool_size: p,
            ..
        } => {
            // conv forward and ∂W (no ∂x); fc forward, ∂W, ∂features on F·OS² (or pooled F·⌊OS/P⌋²).
            let os = side - kernel + 1;
            let features = if pool {
                filters * (os / p) * (os / p)
            } else {
                filters * os * os
            };
            2.0 * (2 * filters * kernel * kernel * os * os + 3 * classes * features) as f64
        }
    }
}

/// Random inputs U(0, 1) and labels for `n` samples of `dim` features.
pub fn synthetic(n: usize, dim: usize, seed: u64) -> Samples {
    let mut rng = Rng::new(seed, 7);
    Samples {
        x: (0..n * dim).map(|_| rng.next_f64() as f32).collect(),
        y: (0..n).map(|_| rng.below(10) as u8).collect(),
        dim,
    }
}

/// Result of timing a model.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// Fastest epoch's seconds per 60,000 samples (an MNIST epoch).
    pub seconds_per_epoch_min: f64,
    pub seconds_per_epoch_median: f64,
    pub samples_per_second: f64,
    pub gflops: f64,
}

/// Times `repeats` epochs of `samples` samples (the training loop as `train`
/// runs it, evaluation excluded), scaled to a 60,000-sample epoch: the first
/// `samples` of `images` when given (they must have the model's input size),
/// else synthetic ones.
pub fn time_training(
    spec: &ModelSpec,
    choice: Choice,
    batch_size: usize,
    samples: usize,
    repeats: usize,
    images: Option<&Samples>,
) -> Result<Throughput, String> {
    let runner = Runner::of(spec, choice)?;
    let dim = spec.input_len();
    let data = match images {
        Some(s) if s.dim != dim => {
            return Err(format!("the images have {} values, the model takes {dim}", s.dim));
        }
        Some(s) => {
            let n = samples.min(s.y.len());
            Samples {
                x: s.x[..n * dim].to_vec(),
                y: s.y[..n].to_vec(),
                dim,
            }
        }
        None => synthetic(samples, dim, 1),
    };
    let samples = data.y.len().max(1);
    let test = synthetic(1, dim, 2);
    let settings = Settings::sgd(repeats.max(1), 1e-3, batch_size, Reduction::Mean, 0);
    let history = run(&runner, &data, &test, &settings);
    let mut secs: Vec<f64> = history.iter().map(|s| s * 60_000.0 / samples as f64).collect();
    secs.sort_by(f64::total_cmp);
    let min = secs[0];
    let median = secs[secs.len() / 2];
    Ok(Throughput {
        seconds_per_epoch_min: min,
        seconds_per_epoch_median: median,
        samples_per_second: 60_000.0 / min,
        gflops: train_flops_per_sample(spec) * 60_000.0 / min / 1e9,
    })
}

fn run(runner: &Runner, data: &Samples, test: &Samples, settings: &Settings) -> Vec<f64> {
    let mut params = runner.init_params(0);
    // Random labels and a small learning rate keep the loss finite.
    train::train(runner, &mut params, data, Some(test), settings, &mut |_| {})
        .map(|h| h.iter().map(|r| r.seconds).collect())
        .unwrap_or_default()
}

/// Best GFLOP/s of an n×n×n f32 matrix product on the current thread pool
/// (best of `repeats`), through either of the crate's two kernels: the general
/// product (`linalg::matmul`) and the dense layer's (`gemm_nt` of `kernels`,
/// its rows of C split across the threads).
pub fn matmul_peak(kernels: &Kernels, n: usize, repeats: usize) -> f64 {
    let mut rng = Rng::new(3, 0);
    let a: Vec<f32> = (0..n * n).map(|_| rng.normal() as f32).collect();
    let b: Vec<f32> = (0..n * n).map(|_| rng.normal() as f32).collect();
    let mut c = vec![0.0f32; n * n];
    let rows = n.div_ceil(rayon::current_num_threads()).max(1);
    let mut best = f64::MAX;
    for _ in 0..repeats {
        let t = Instant::now();
        matmul(n, n, n, &a, &b, 0.0, &mut c);
        best = best.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        c.par_chunks_mut(rows * n)
            .zip(a.par_chunks(rows * n))
            .for_each(|(c, a)| (kernels.gemm_nt)(a.len() / n, n, n, a, n, &b, n, c, n));
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
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

/// Peak resident memory of this process so far (Linux), in MB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_counts_match_the_hand_counts() {
        // 49.1 GFLOP per 60,000-sample epoch for the MLP H=256, 7.43 for the CNN K=7 F=1.
        let mlp = ModelSpec::Mlp {
            input: 784,
            hidden: 256,
            classes: 10,
            activation: Default::default(),
        };
        assert!((train_flops_per_sample(&mlp) * 60_000.0 / 1e9 - 49.09).abs() < 0.01);
        let cnn = ModelSpec::cnn(7, 1);
        assert!((train_flops_per_sample(&cnn) * 60_000.0 / 1e9 - 7.43).abs() < 0.01);
    }

    #[test]
    fn timing_runs_and_reports_positive_rates() {
        let spec = ModelSpec::Mlp {
            input: 784,
            hidden: 16,
            classes: 10,
            activation: Default::default(),
        };
        let t = time_training(&spec, Choice::Auto, 32, 256, 2, None).unwrap();
        assert!(t.seconds_per_epoch_min > 0.0 && t.gflops > 0.0);
        assert!(t.seconds_per_epoch_median >= t.seconds_per_epoch_min);
    }
}
