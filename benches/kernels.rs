//! Criterion benches: the matrix products of the MLP (general and the dense
//! layer's own kernels), the ten-output layer's kernels against the general
//! product, the sparse first layer's kernels against the dense ones, the
//! optimiser step, the engine's convolution against the
//! textbook's im2col and product, and whole training epochs of each model on
//! synthetic data. Kernels at the level `SCRATCHNET_KERNELS` chooses (default:
//! the fastest this CPU has). `cargo bench --bench kernels`; compare runs with criterion's
//! saved baselines (`-- --save-baseline before`, then `-- --baseline before`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scratchnet::bench::{synthetic, train_flops_per_sample};
use scratchnet::engine::conv::{ConvRelu, DeltaSource};
use scratchnet::kernels::conv::Shape;
use scratchnet::kernels::{Choice, Kernels, Level, Resolved, dense10};
use scratchnet::layers::conv2d::Conv2d;
use scratchnet::layers::softmax_ce::Reduction;
use scratchnet::linalg::{self, matmul_a_bt, matmul_at_b};
use scratchnet::models::ModelSpec;
use scratchnet::optim::{Optimizer, Rule};
use scratchnet::rng::Rng;
use scratchnet::train::{self, Runner, Settings};

/// The kernels of the chosen level (the portable ones for `reference`).
fn kernels() -> &'static Kernels {
    match Choice::Auto.resolve().expect("a valid SCRATCHNET_KERNELS") {
        Resolved::Engine(k) => k,
        Resolved::Reference => Kernels::for_level(Level::Portable).unwrap(),
    }
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed, 0);
    (0..n).map(|_| rng.normal() as f32).collect()
}

/// Inputs x [128, 784], weights W [h, 784] and δ [128, h] of an MLP layer of h units.
fn layer_operands(h: usize) -> (usize, usize, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b, d) = (128, 784);
    (b, d, random(b * d, 1), random(h * d, 2), random(b * h, 3))
}

fn matmul(c: &mut Criterion) {
    let h = 256;
    let (b, d, x, w, dz) = layer_operands(h);
    let mut g = c.benchmark_group("matmul");
    g.throughput(Throughput::Elements((2 * b * d * h) as u64));
    let mut z = vec![0.0; b * h];
    g.bench_function("forward X·Wᵀ 128x784x256", |bench| {
        bench.iter(|| matmul_a_bt(b, d, h, &x, &w, 0.0, &mut z))
    });
    let mut dw = vec![0.0; h * d];
    g.bench_function("dW = dZᵀ·X 256x128x784", |bench| {
        bench.iter(|| matmul_at_b(h, b, d, &dz, &x, 0.0, &mut dw))
    });
    g.finish();
}

/// The MLP's two large products for one thread's block of 128 hidden units
/// (H = 256 on two threads), on one thread: the dense layer's kernels
/// (`kernels::gemm`, without packing where the level has them)
/// against the general product (matrixmultiply, packing both operands).
fn dense_products(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let k = kernels();
    let h = 128;
    let (b, d, x, w, dz) = layer_operands(h);
    let mut g = c.benchmark_group("dense 128x784, 128 units, one thread");
    g.throughput(Throughput::Elements((2 * b * d * h) as u64));
    let mut z = vec![0.0; b * h];
    g.bench_function("forward X·Wᵀ, dense kernel", |bench| {
        bench.iter(|| one.install(|| (k.gemm_nt)(b, h, d, &x, d, &w, d, &mut z, h)))
    });
    g.bench_function("forward X·Wᵀ, matrix product", |bench| {
        bench.iter(|| one.install(|| matmul_a_bt(b, d, h, &x, &w, 1.0, &mut z)))
    });
    let mut dw = vec![0.0; h * d];
    g.bench_function("dW = dZᵀ·X, dense kernel", |bench| {
        bench.iter(|| one.install(|| (k.gemm_tn)(h, d, b, &dz, h, &x, d, &mut dw, d)))
    });
    g.bench_function("dW = dZᵀ·X, matrix product", |bench| {
        bench.iter(|| one.install(|| matmul_at_b(h, b, d, &dz, &x, 0.0, &mut dw)))
    });
    g.finish();
}

/// The sparse first layer's pieces (`kernels::sparse`, levels that have it)
/// on the operands of `dense_products`, with 19 % of the inputs nonzero at
/// random places (MNIST's share; real digits cluster theirs): reading the
/// rows, regrouping them by input, both products and the two transposes.
fn sparse_first_layer(c: &mut Criterion) {
    use scratchnet::kernels::sparse::{Columns, Rows};
    let k = kernels();
    let Some(sk) = k.sparse else { return };
    let h = 128;
    let (b, d, _, w, dz) = layer_operands(h);
    let mut rng = Rng::new(4, 0);
    let x: Vec<f32> = (0..b * d)
        .map(|_| {
            if rng.next_f64() < 0.19 {
                rng.next_f64() as f32
            } else {
                0.0
            }
        })
        .collect();
    let mut g = c.benchmark_group("sparse first layer 128x784, 128 units, 19 % nonzero");
    let (mut rows, mut cols) = (Rows::default(), Columns::default());
    g.bench_function("read the rows", |bench| {
        bench.iter(|| {
            rows.clear(d, 0.0);
            for r in x.chunks_exact(d) {
                (sk.push_row)(&mut rows, r);
            }
        })
    });
    g.bench_function("regroup by input", |bench| bench.iter(|| cols.set(&rows)));
    let mut wt = vec![0.0; d * h];
    g.bench_function("transpose W", |bench| {
        bench.iter(|| (sk.transpose)(h, d, &w, d, &mut wt, h))
    });
    let mut z = vec![0.0; b * h];
    g.bench_function("forward X·Wᵀ, sparse", |bench| {
        bench.iter(|| (sk.forward)(&cols, h, &wt, h, &mut z, h, &[]))
    });
    g.bench_function("forward X·Wᵀ, dense kernel", |bench| {
        bench.iter(|| (k.gemm_nt)(b, h, d, &x, d, &w, d, &mut z, h))
    });
    let mut gt = vec![0.0; d * h];
    g.bench_function("dWᵀ = Xᵀ·dZ, sparse", |bench| {
        bench.iter(|| (sk.d_weight_t)(&cols, h, &dz, h, &mut gt, h, &[]))
    });
    let mut dw = vec![0.0; h * d];
    g.bench_function("transpose dWᵀ", |bench| {
        bench.iter(|| (sk.transpose)(d, h, &gt, h, &mut dw, d))
    });
    g.bench_function("dW = dZᵀ·X, dense kernel", |bench| {
        bench.iter(|| (k.gemm_tn)(h, d, b, &dz, h, &x, d, &mut dw, d))
    });
    g.finish();
}

/// The CNN's output layer (32×7×7 features → 10) on a 64-sample shard, on one
/// thread as in training: the ten-output kernels against the general matrix product.
fn output_layer(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let k = kernels();
    let (b, d, n) = (64, 32 * 22 * 22, dense10::OUTPUTS);
    let x = random(b * d, 7);
    let w = random(n * d, 8);
    let d_y = random(b * n, 9);
    let mut g = c.benchmark_group("output layer 64x15488->10");
    g.throughput(Throughput::Elements((2 * b * d * n) as u64));
    let mut y = vec![0.0; b * n];
    let mut d_w = vec![0.0; n * d];
    let mut d_x = vec![0.0; b * d];
    g.bench_function("forward, ten-output kernel", |bench| {
        bench.iter(|| one.install(|| (k.dense10_forward)(b, &x, &w, &mut y)))
    });
    g.bench_function("forward, matrix product", |bench| {
        bench.iter(|| one.install(|| matmul_a_bt(b, d, n, &x, &w, 1.0, &mut y)))
    });
    g.bench_function("dW, ten-output kernel", |bench| {
        bench.iter(|| one.install(|| (k.dense10_d_weight)(b, &x, &d_y, &mut d_w)))
    });
    g.bench_function("dW, matrix product", |bench| {
        bench.iter(|| one.install(|| matmul_at_b(n, b, d, &d_y, &x, 0.0, &mut d_w)))
    });
    g.bench_function("dX, ten-output kernel", |bench| {
        bench.iter(|| one.install(|| (k.dense10_d_input)(b, &d_y, &w, &mut d_x)))
    });
    g.bench_function("dX, matrix product", |bench| {
        bench.iter(|| one.install(|| linalg::matmul(b, n, d, &d_y, &w, 0.0, &mut d_x)))
    });
    g.finish();
}

/// One optimiser step over the MLP's 203,530 parameters.
fn update(c: &mut Criterion) {
    let n = 784 * 256 + 256 + 256 * 10 + 10;
    let mut params = random(n, 10);
    let grads = random(n, 11);
    let mut g = c.benchmark_group("optimiser step");
    g.throughput(Throughput::Elements(n as u64));
    for rule in [Rule::Sgd, Rule::Adamw] {
        let opt = Optimizer {
            rule,
            ..Optimizer::default()
        };
        let mut state = opt.state(n);
        g.bench_function(format!("{rule:?}"), |bench| {
            bench.iter(|| opt.step(&mut state, &mut params, &grads, 1e-6))
        });
    }
    g.finish();
}

fn conv(c: &mut Criterion) {
    // One thread, one 64-sample shard of a training step.
    let batch = 64;
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let mut g = c.benchmark_group("conv2d, one thread");
    for filters in [1, 32] {
        let shape = Shape {
            side: 28,
            kernel: 7,
            filters,
        };
        let fast = ConvRelu::new(shape, kernels());
        let conv = Conv2d {
            side: 28,
            kernel: 7,
            filters,
        };
        let x = random(batch * 784, 4);
        let w = random(filters * 49, 5);
        let d_h = random(batch * conv.out_len(), 6);
        let mut scratch = fast.scratch(batch, 1);
        let mut h = vec![0.0; batch * conv.out_len()];
        let mut d_w = vec![0.0; w.len()];
        g.throughput(Throughput::Elements(
            (2 * batch * filters * 49 * conv.positions()) as u64,
        ));
        g.bench_function(
            format!("forward K7 F{filters} B{batch} ({:?})", fast.strategy()),
            |bench| {
                bench.iter(|| one.install(|| fast.forward(batch, &x, (&w, None), None, &mut scratch, &mut h)))
            },
        );
        let mut delta = d_h.clone();
        g.bench_function(
            format!("backward dW K7 F{filters} B{batch} ({:?})", fast.strategy()),
            |bench| {
                bench.iter(|| {
                    delta.copy_from_slice(&d_h);
                    let source = DeltaSource::Given(&mut delta);
                    one.install(|| fast.backward(batch, &x, &h, source, &mut scratch, (&mut d_w, None)))
                })
            },
        );
        // The same sums the way the textbook layer computes them (patch
        // matrix, then a general product), for comparison.
        let (p, kk) = (conv.positions(), conv.patch());
        let mut cols = vec![0.0f32; p * kk];
        g.bench_function(
            format!("forward K7 F{filters} B{batch} (im2col + product)"),
            |bench| {
                bench.iter(|| {
                    for (img, zb) in x.chunks_exact(784).zip(h.chunks_exact_mut(filters * p)) {
                        conv.im2col(img, &mut cols);
                        linalg::matmul_a_bt(filters, kk, p, &w, &cols, 0.0, zb);
                    }
                })
            },
        );
        g.bench_function(
            format!("backward dW K7 F{filters} B{batch} (im2col + product)"),
            |bench| {
                bench.iter(|| {
                    for (img, dzb) in x.chunks_exact(784).zip(d_h.chunks_exact(filters * p)) {
                        conv.im2col(img, &mut cols);
                        linalg::matmul(filters, p, kk, dzb, &cols, 1.0, &mut d_w);
                    }
                })
            },
        );
    }
    g.finish();
}

fn training(c: &mut Criterion) {
    let samples = 1280;
    let mut g = c.benchmark_group("training epoch (1280 samples, batch 128)");
    g.sample_size(10);
    for spec in [ModelSpec::mlp(256), ModelSpec::cnn(7, 1), ModelSpec::cnn(7, 32)] {
        let data = synthetic(samples, 784, 1);
        let test = synthetic(1, 784, 2);
        let settings = Settings::sgd(1, 1e-3, 128, Reduction::Mean, 0);
        g.throughput(Throughput::Elements(
            (train_flops_per_sample(&spec) * samples as f64) as u64,
        ));
        let runner = Runner::of(&spec, Choice::Auto).unwrap();
        g.bench_function(spec.describe(), |bench| {
            bench.iter(|| {
                let mut p = runner.init_params(0);
                train::train(&runner, &mut p, &data, Some(&test), &settings, &mut |_| {}).unwrap()
            })
        });
    }
    g.finish();
}

/// Max-pooling as the engine runs it (`kernels::pool`, at the chosen level) against the textbook
/// layer, 32 maps of 24×24 per sample (the `fast-cnn` shape), on ReLU-like
/// maps (about half zeros).
fn pool(c: &mut Criterion) {
    use scratchnet::kernels::pool::Pool;
    use scratchnet::layers::maxpool::MaxPool;
    let k = kernels();
    let (batch, channels, side) = (8, 32, 24);
    let mut g = c.benchmark_group("max-pool 8x32x24x24, one thread");
    for size in [2, 3] {
        let p = Pool {
            channels,
            height: side,
            width: side,
            size,
        };
        let textbook = MaxPool {
            channels,
            height: side,
            width: side,
            size,
        };
        let x: Vec<f32> = random(batch * p.in_len(), 8)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let d_y = random(batch * p.out_len(), 9);
        let (mut y, mut d_x) = (vec![0.0; d_y.len()], vec![0.0; x.len()]);
        let mut argmax = vec![0u32; d_y.len()];
        g.throughput(Throughput::Elements(x.len() as u64));
        g.bench_function(format!("{size}x{size} forward, engine"), |bench| {
            bench.iter(|| (k.pool_forward)(&p, batch, &x, &mut y))
        });
        g.bench_function(format!("{size}x{size} backward, engine"), |bench| {
            bench.iter(|| (k.pool_backward)(&p, batch, &x, &y, &d_y, &mut d_x))
        });
        g.bench_function(format!("{size}x{size} forward, textbook"), |bench| {
            bench.iter(|| textbook.forward(batch, &x, &mut y, &mut argmax))
        });
        g.bench_function(format!("{size}x{size} backward, textbook"), |bench| {
            bench.iter(|| textbook.backward(batch, &d_y, &argmax, &mut d_x))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    pool,
    matmul,
    dense_products,
    sparse_first_layer,
    output_layer,
    update,
    conv,
    training
);
criterion_main!(benches);
