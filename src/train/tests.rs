//! The steps against each other on real steps: the engine's MLP step against
//! the same network in the sample-sharded step (same bits), and every engine
//! step against the textbook models (within rounding).

use super::*;
use crate::bench::synthetic;
use crate::data::batches::Batch;
use crate::engine::{FastCnn, FastMlp, MlpStep};
use crate::init::Init;
use crate::kernels::{Choice, Kernels, Level};
use crate::layers::softmax_ce::{BatchScore, Reduction};
use crate::models::{Activation, Cnn, Mlp};
use crate::optim::Rule;

fn best() -> &'static Kernels {
    Kernels::for_level(Level::best()).unwrap()
}

/// Parameters and scores after three steps of `step` on batches of 7, 7 and 5,
/// with this dropout and random translation.
fn run<N: Network<f32>>(
    step: &mut dyn Step,
    net: &N,
    dropout: f32,
    shift: usize,
    opt: &Optimizer,
) -> (Vec<f32>, Vec<BatchScore>) {
    let data = synthetic(19, net.input_dim(), 5);
    let mut params = init_params(net, 3);
    let mut state = opt.state(params.len());
    let order: Vec<u32> = (0..19).rev().collect();
    let mut scores = Vec::new();
    for (b, indices) in order.chunks(7).enumerate() {
        let batch = Batch {
            train: &data,
            indices,
            next: order.chunks(7).nth(b + 1).unwrap_or(&[]),
            scale: Reduction::Mean.scale(indices.len()) as f32,
            dropout,
            shift,
            seed: 4,
            step: b as u64,
        };
        scores.push(step.loss(&params, &batch));
        step.update(&mut params, &mut state, opt, 0.05, &batch);
    }
    (params, scores)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn other_class_counts_give_the_same_bits_on_any_thread_count_and_the_generic_step_s_values() {
    let net = Mlp {
        input: 21,
        hidden: 9,
        classes: 13,
        activation: Activation::Sigmoid,
        init: Init::Normal,
        init_std: 0.3,
    };
    let opt = Optimizer::default();
    let fast = FastMlp { net, kernels: best() };
    let (generic, _) = pool(1).install(|| run(&mut Sharded::new(fast, 7, 1), &net, 0.0, 0, &opt));
    let (one, _) = pool(1).install(|| run(&mut MlpStep::new(net, best(), 7, 1), &net, 0.0, 0, &opt));
    for threads in [2, 3] {
        let (got, _) =
            pool(threads).install(|| run(&mut MlpStep::new(net, best(), 7, threads), &net, 0.0, 0, &opt));
        assert_eq!(got, one, "{threads} threads");
    }
    for (a, b) in one.iter().zip(&generic) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn mlp_step_gives_the_sharded_step_s_bits_on_any_thread_count_at_every_level() {
    let cases = [
        (Activation::Sigmoid, 0.0, 0, Rule::Sgd, 0.0),
        (Activation::Relu, 0.4, 1, Rule::Adamw, 0.05),
        (Activation::Tanh, 0.0, 2, Rule::Momentum, 0.01),
    ];
    for (activation, dropout, shift, rule, weight_decay) in cases {
        let net = Mlp {
            input: 36,
            hidden: 23,
            classes: 10,
            activation,
            init: Init::Normal,
            init_std: 0.3,
        };
        let opt = Optimizer {
            rule,
            weight_decay,
            ..Optimizer::default()
        };
        for k in Kernels::available() {
            let fast = FastMlp { net, kernels: k };
            let (want, want_scores) =
                pool(1).install(|| run(&mut Sharded::new(fast, 7, 1), &net, dropout, shift, &opt));
            for threads in [1, 2, 3, 8] {
                let (got, scores) = pool(threads)
                    .install(|| run(&mut MlpStep::new(net, k, 7, threads), &net, dropout, shift, &opt));
                assert_eq!(got, want, "{k:?} {activation:?} shift {shift}, {threads} threads");
                for (s, w) in scores.iter().zip(&want_scores) {
                    assert_eq!(s.correct, w.correct);
                    assert!((s.loss_sum - w.loss_sum).abs() < 1e-12 * w.loss_sum.abs().max(1.0));
                }
            }
        }
    }
}

/// Parameters after three steps agree within `tol` (relative, with a floor of 1).
fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0f32, f32::max);
    assert!(worst < tol, "{what}: worst relative difference {worst:e}");
}

/// The textbook MLP and the engine's step, three real steps each, for every
/// activation, with and without dropout, at every level this CPU has: the
/// same parameters within rounding (the kernels' sums run in another order).
#[test]
fn engine_mlp_step_matches_the_textbook_mlp() {
    for (activation, dropout, shift) in [
        (Activation::Sigmoid, 0.0, 0),
        (Activation::Relu, 0.5, 1),
        (Activation::Tanh, 0.2, 0),
    ] {
        let net = Mlp {
            input: 36,
            hidden: 23,
            classes: 10,
            activation,
            init: Init::Normal,
            init_std: 0.3,
        };
        let opt = Optimizer::default();
        let (want, want_scores) =
            pool(2).install(|| run(&mut Sharded::new(net, 7, 2), &net, dropout, shift, &opt));
        for k in Kernels::available() {
            let (got, scores) =
                pool(2).install(|| run(&mut MlpStep::new(net, k, 7, 2), &net, dropout, shift, &opt));
            close(
                &got,
                &want,
                1e-5,
                &format!("{k:?} {activation:?} dropout {dropout} shift {shift}"),
            );
            for (s, w) in scores.iter().zip(&want_scores) {
                assert_eq!(s.correct, w.correct);
                assert!((s.loss_sum - w.loss_sum).abs() < 1e-5 * w.loss_sum.abs().max(1.0));
            }
        }
    }
}

/// The textbook CNN and the engine's, three real steps each in the
/// sample-sharded step, with and without bias, pooling and dropout, on few
/// and many filters (each convolution strategy), at every level this CPU has.
#[test]
fn engine_cnn_matches_the_textbook_cnn() {
    for (bias, filters, pool_size, dropout, shift) in [
        (false, 1, None, 0.0, 0),
        (true, 3, None, 0.0, 2),
        (false, 8, Some(2), 0.0, 0),
        (true, 2, None, 0.5, 0),
        (true, 6, Some(3), 0.3, 1),
    ] {
        let net = Cnn::new(28, 5, filters, bias, 10).with_pool(pool_size);
        let opt = Optimizer::default();
        let (want, want_scores) =
            pool(2).install(|| run(&mut Sharded::new(net, 7, 2), &net, dropout, shift, &opt));
        for k in Kernels::available() {
            let fast = FastCnn::new(net, k, 2);
            let (got, scores) =
                pool(2).install(|| run(&mut Sharded::new(fast, 7, 2), &net, dropout, shift, &opt));
            let what =
                format!("{k:?} bias {bias} F {filters} pool {pool_size:?} dropout {dropout} shift {shift}");
            close(&got, &want, 1e-5, &what);
            for (s, w) in scores.iter().zip(&want_scores) {
                assert_eq!(s.correct, w.correct, "{what}");
                assert!(
                    (s.loss_sum - w.loss_sum).abs() < 1e-5 * w.loss_sum.abs().max(1.0),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn early_stopping_counts_epochs_since_the_best_validation_accuracy() {
    let h = |vals: &[f64]| -> Vec<EpochRecord> {
        vals.iter()
            .enumerate()
            .map(|(i, &v)| EpochRecord {
                epoch: i + 1,
                train_loss: 0.1,
                train_accuracy: 0.9,
                test_accuracy: 0.9,
                test_loss: None,
                seconds: 1.0,
                validation_accuracy: Some(v),
            })
            .collect()
    };
    assert_eq!(epochs_since_best(&h(&[0.90, 0.95])), 0);
    assert_eq!(epochs_since_best(&h(&[0.90, 0.95, 0.94, 0.95])), 2);
    assert_eq!(epochs_since_best(&h(&[0.97, 0.95, 0.96])), 2);
}

/// Parameters after one epoch of `runner` on 96 synthetic samples, batches of 32, on `threads` threads.
fn epoch(runner: &Runner, threads: usize, dropout: f32) -> Vec<f32> {
    let input = match runner.net {
        crate::models::Net::Mlp(m) => m.input,
        crate::models::Net::Cnn(c) => c.conv.side * c.conv.side,
    };
    let data = synthetic(96, input, 9);
    let test = synthetic(8, input, 10);
    let settings = Settings {
        dropout,
        ..Settings::sgd(1, 0.05, 32, Reduction::Mean, 5)
    };
    pool(threads).install(|| {
        let mut params = runner.init_params(5);
        train(runner, &mut params, &data, Some(&test), &settings, &mut |_| {}).unwrap();
        params
    })
}

fn contract_models() -> Vec<crate::models::Net> {
    use crate::models::Net;
    vec![
        Net::Mlp(Mlp {
            input: 784,
            hidden: 24,
            classes: 10,
            activation: Activation::Sigmoid,
            init: Init::Normal,
            init_std: 0.1,
        }),
        Net::Cnn(Cnn::new(28, 5, 1, false, 10)),
        Net::Cnn(Cnn::new(28, 7, 8, true, 10).with_pool(Some(2))),
    ]
}

/// The contract (lib.rs): a seed, a thread count and a kernel choice give the
/// same bits on every run, for every code this CPU can run.
#[test]
fn a_seed_threads_and_kernels_give_the_same_bits_every_run() {
    let mut choices = vec![Choice::Reference];
    choices.extend(Kernels::available().iter().map(|k| Choice::Level(k.level)));
    for net in contract_models() {
        for &choice in &choices {
            let runner = Runner::new(net, choice).unwrap();
            assert_eq!(
                epoch(&runner, 2, 0.3),
                epoch(&runner, 2, 0.3),
                "{net:?} {choice:?}"
            );
        }
    }
}

/// The contract (lib.rs): the engine's MLP gives the same bits on any thread
/// count, at every level.
#[test]
fn thread_counts_change_the_bits_only_where_the_contract_says() {
    for net in contract_models() {
        for k in Kernels::available() {
            let runner = Runner::new(net, Choice::Level(k.level)).unwrap();
            if runner.thread_independent() {
                let bits = epoch(&runner, 2, 0.0);
                assert_eq!(epoch(&runner, 1, 0.0), bits, "{net:?} {k:?}: 1 thread");
                assert_eq!(epoch(&runner, 3, 0.0), bits, "{net:?} {k:?}: 3 threads");
            }
        }
    }
    // A level this CPU lacks is an error naming it, never a silent fallback.
    let missing = Level::ALL.into_iter().find(|l| !l.available());
    if let Some(level) = missing {
        let err = Runner::new(contract_models()[0], Choice::Level(level)).unwrap_err();
        assert!(err.contains(level.name()), "{err}");
    }
}

/// A loss that explodes, or that rises above a uniform guess's while the
/// accuracy sits at chance, is divergence; a run that learns slowly is not.
#[test]
fn divergence_is_an_exploding_loss_or_a_loss_above_chance_at_chance_accuracy() {
    assert!(diverging(365_463.0, 0.30, 10));
    assert!(diverging(4.0, 0.098, 10));
    assert!(!diverging(2.31, 0.098, 10), "a slow start near ln 10");
    assert!(!diverging(4.0, 0.6, 10), "a high loss while learning");
    assert!(!diverging(0.3, 0.9, 10));
}
