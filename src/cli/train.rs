//! `scratchnet train mlp`: train, print the report's lines, write a run folder.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use scratchnet::checkpoint::{self, Checkpoint};
use scratchnet::data::batches::{Normalize, Samples};
use scratchnet::data::mnist::{CLASSES, FileKind, PIXELS, SIDE, Split, load_split, locate, require};
use scratchnet::init::Init;
use scratchnet::layers::softmax_ce::Reduction;
use scratchnet::models::{Cnn, Mlp, ModelSpec, Network};
use scratchnet::run::{RunConfig, RunDir, utc_stamp};
use scratchnet::train::{self, EpochRecord, Progress, Settings};

use super::DataArgs;

#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    /// The report's MLP: 784 → hidden (sigmoid) → 10 (softmax)
    Mlp(MlpArgs),
    /// The report's CNN: conv (F filters K×K) → ReLU → flatten → 10 (softmax)
    Cnn(CnnArgs),
}

#[derive(Args, Debug)]
pub struct CnnArgs {
    /// Kernel side K (the convolution is valid, stride 1: output (29−K)×(29−K))
    #[arg(long, default_value_t = 7, value_parser = kernel_size)]
    kernel: usize,
    /// Number of filters F (the report's "one kernel" is 1)
    #[arg(long, default_value_t = 1, value_parser = positive)]
    filters: usize,
    /// Give the convolution a bias per filter (the report's has none)
    #[arg(long)]
    conv_bias: bool,
    /// Epochs
    #[arg(long, default_value_t = 5, value_parser = positive)]
    epochs: usize,
    /// Learning rate η
    #[arg(long, default_value_t = CNN_DEFAULT_LR, value_parser = learning_rate)]
    lr: f32,
    /// How per-sample losses and gradients combine over a batch (the report's CNN averages)
    #[arg(long, value_enum, default_value_t = Reduction::Mean)]
    loss_reduction: Reduction,
    /// Input normalisation: p/255 (unit) or (p/255 − 0.1307)/0.3081 (standard)
    #[arg(long, value_enum, default_value_t = Normalize::Unit)]
    normalize: Normalize,
    #[command(flatten)]
    run: RunArgs,
}

/// Default CNN learning rate (see the README for how it was chosen).
pub const CNN_DEFAULT_LR: f32 = 0.03;

#[derive(Args, Debug)]
pub struct MlpArgs {
    /// Hidden units H
    #[arg(long, default_value_t = 256, value_parser = positive)]
    hidden: usize,
    /// Epochs
    #[arg(long, default_value_t = 100, value_parser = positive)]
    epochs: usize,
    /// Learning rate η
    #[arg(long, default_value_t = 0.01, value_parser = learning_rate)]
    lr: f32,
    /// How per-sample losses and gradients combine over a batch (the report's MLP sums)
    #[arg(long, value_enum, default_value_t = Reduction::Sum)]
    loss_reduction: Reduction,
    /// Weight initialisation (biases start at zero)
    #[arg(long, value_enum, default_value_t = Init::Normal)]
    init: Init,
    /// Standard deviation of --init normal
    #[arg(long, default_value_t = 0.01, value_name = "SIGMA")]
    init_std: f64,
    /// Input normalisation: p/255 (unit) or (p/255 − 0.1307)/0.3081 (standard)
    #[arg(long, value_enum, default_value_t = Normalize::Unit)]
    normalize: Normalize,
    #[command(flatten)]
    run: RunArgs,
}

/// Flags of every training command.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Mini-batch size
    #[arg(long, default_value_t = 128, value_parser = positive)]
    batch_size: usize,
    /// Seed of initialisation and shuffling
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (0: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Run folder for config.json, history.csv, model.safetensors (default: runs/<model>-<UTC time>)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace a finished run already in --out
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    data: DataArgs,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

fn kernel_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(k) if (1..=SIDE).contains(&k) => Ok(k),
        Ok(k) => Err(format!("must be between 1 and {SIDE} (the image side), got {k}")),
        Err(e) => Err(e.to_string()),
    }
}

fn learning_rate(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a positive finite number, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(c: TrainCommand) -> Result<()> {
    match c {
        TrainCommand::Mlp(a) => {
            if a.init_std.is_nan() || a.init_std < 0.0 {
                bail!("--init-std must be a non-negative number, got {}", a.init_std);
            }
            let net = Mlp {
                input: PIXELS,
                hidden: a.hidden,
                classes: CLASSES,
                init: a.init,
                init_std: a.init_std,
            };
            let spec = ModelSpec::Mlp {
                input: net.input,
                hidden: net.hidden,
                classes: net.classes,
            };
            let settings = Settings {
                epochs: a.epochs,
                lr: a.lr,
                batch_size: a.run.batch_size,
                reduction: a.loss_reduction,
                seed: a.run.seed,
            };
            let name = format!("mlp-h{}", a.hidden);
            train_and_save(
                &net,
                spec,
                (a.init, a.init_std),
                a.normalize,
                settings,
                &a.run,
                &name,
            )
        }
        TrainCommand::Cnn(a) => {
            let spec = ModelSpec::Cnn {
                side: SIDE,
                kernel: a.kernel,
                filters: a.filters,
                conv_bias: a.conv_bias,
                classes: CLASSES,
            };
            let net = Cnn::new(SIDE, a.kernel, a.filters, a.conv_bias, CLASSES);
            let settings = Settings {
                epochs: a.epochs,
                lr: a.lr,
                batch_size: a.run.batch_size,
                reduction: a.loss_reduction,
                seed: a.run.seed,
            };
            let name = format!("cnn-k{}-f{}", a.kernel, a.filters);
            train_and_save(&net, spec, (Init::He, 0.0), a.normalize, settings, &a.run, &name)
        }
    }
}

/// Makes sure the data folder holds the four files, downloading them when
/// `--download` is given; otherwise the error says how to get them.
pub fn ensure_data(data: &DataArgs) -> Result<()> {
    let dir = data.dir();
    let missing = FileKind::ALL.iter().any(|&k| locate(&dir, k).is_none());
    if missing {
        if data.download {
            super::download::fetch(data, Duration::from_secs(30), false)?;
        } else {
            for k in FileKind::ALL {
                require(&dir, data.dataset, k)?;
            }
        }
    }
    Ok(())
}

fn train_and_save<N: Network<f32>>(
    net: &N,
    spec: ModelSpec,
    (init, init_std): (Init, f64),
    normalize: Normalize,
    settings: Settings,
    run: &RunArgs,
    name: &str,
) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, and training will be slow; use `cargo run --release` or a release binary"
        );
    }
    let threads = super::set_threads(run.threads)?;
    let out = run
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{name}-{}", utc_stamp())));
    let run_dir = RunDir::create(&out, run.overwrite)?;
    ensure_data(&run.data)?;
    let dir = run.data.dir();
    let train_raw = load_split(&dir, run.data.dataset, Split::Train, run.data.verify())?;
    let test_raw = load_split(&dir, run.data.dataset, Split::Test, run.data.verify())?;
    if settings.batch_size > train_raw.count {
        bail!(
            "--batch-size {} is larger than the {} training images",
            settings.batch_size,
            train_raw.count
        );
    }
    let train_set = Samples::from_raw(&train_raw, normalize);
    let test_set = Samples::from_raw(&test_raw, normalize);
    drop((train_raw, test_raw));

    let config = RunConfig {
        scratchnet_version: env!("CARGO_PKG_VERSION").to_string(),
        model: spec,
        init,
        init_std,
        settings,
        normalize,
        dataset: run.data.dataset,
        data_dir: dir.clone(),
        threads,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    run_dir.write_config(&config)?;
    println!(
        "{}: epochs {}, lr {}, batch {}, loss {}, init {}{}, normalize {}, seed {}, threads {}",
        spec.describe(),
        settings.epochs,
        settings.lr,
        settings.batch_size,
        settings.reduction.name(),
        init.name(),
        if init == Init::Normal {
            format!("(σ={init_std})")
        } else {
            String::new()
        },
        normalize.name(),
        settings.seed,
        threads
    );
    println!("data: {}   run folder: {}", dir.display(), out.display());
    println!("The number of training data: {}", train_set.len());
    println!("The number of testing data: {}", test_set.len());

    let batches_per_epoch = train_set.len().div_ceil(settings.batch_size);
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new((settings.epochs * batches_per_epoch) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {percent}% ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut params = train::init_params(net, settings.seed);
    let mut history: Vec<EpochRecord> = Vec::new();
    let mut write_error = None;
    let result = train::train(
        net,
        &mut params,
        &train_set,
        &test_set,
        &settings,
        &mut |p| match p {
            Progress::Batch { epoch, .. } => {
                bar.set_message(format!("epoch {epoch}/{}", settings.epochs));
                bar.inc(1);
            }
            Progress::Epoch(r) => {
                bar.suspend(|| {
                    println!(
                        "Epoch {}/{}, Train Loss: {:.4} Train Accuracy: {:.4} ({:.2} s)",
                        r.epoch, settings.epochs, r.train_loss, r.train_accuracy, r.seconds
                    )
                });
                history.push(r.clone());
                if let Err(e) = run_dir.write_history(&history) {
                    write_error.get_or_insert(e);
                }
            }
        },
    );
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }
    let history_so_far = history.len();
    let history = result.map_err(|e| {
        anyhow::anyhow!(
            "{e}\nThe history of the {history_so_far} completed epochs is in {}",
            run_dir.path.join(scratchnet::run::HISTORY_FILE).display()
        )
    })?;
    let last = history.last().expect("at least one epoch");
    println!("Test Accuracy: {:.4}", last.test_accuracy);
    let metrics = serde_json::json!({
        "test_accuracy": last.test_accuracy,
        "train_loss": last.train_loss,
        "train_accuracy": last.train_accuracy,
        "epochs": last.epoch,
        "seconds": history.iter().map(|r| r.seconds).sum::<f64>(),
    });
    checkpoint::save(
        &run_dir.model_path(),
        &Checkpoint {
            spec,
            params,
            dataset: run.data.dataset,
            normalize,
            config: Some(serde_json::to_string(&config)?),
            metrics: Some(metrics.to_string()),
        },
    )?;
    let total: f64 = history.iter().map(|r| r.seconds).sum();
    println!(
        "Training took {total:.1} s ({:.2} s per epoch). Saved {}",
        total / history.len() as f64,
        run_dir.path.display()
    );
    Ok(())
}
