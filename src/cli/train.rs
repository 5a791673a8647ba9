//! `scratchnet train mlp|cnn`: train one model, print the report's lines, write a run folder.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use scratchnet::data::batches::{Normalize, Samples};
use scratchnet::data::mnist::{
    CLASSES, FileKind, PIXELS, RawSplit, SIDE, Split, load_split, locate, require,
};
use scratchnet::experiments::{Data, ExecuteOptions, Resume, RunEnd, RunSpec, execute_from, load_resume};
use scratchnet::init::Init;
use scratchnet::layers::softmax_ce::Reduction;
use scratchnet::models::{Activation, ModelSpec};
use scratchnet::optim::{Optimizer, Rule, Schedule, ScheduleKind};
use scratchnet::run::{RunConfig, RunDir, utc_stamp};
use scratchnet::train::{Progress, Settings};

use super::DataArgs;

/// `scratchnet train mlp|cnn …` or `scratchnet train --resume RUN`.
#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_required = false,
    arg_required_else_help = true
)]
pub struct TrainArgs {
    #[command(subcommand)]
    model: Option<TrainCommand>,
    /// Continue an interrupted run from its folder's resume checkpoint
    #[arg(long, value_name = "RUN")]
    resume: Option<PathBuf>,
    /// With --resume: the folder holding the data, if not where the run found it
    #[arg(long, value_name = "DIR", requires = "resume")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    /// The report's MLP: 784 → hidden (sigmoid) → 10 (softmax)
    Mlp(MlpArgs),
    /// The report's CNN: conv (F filters K×K) → ReLU → flatten → 10 (softmax)
    Cnn(CnnArgs),
}

#[derive(Args, Debug)]
pub struct MlpArgs {
    /// Hidden units H
    #[arg(long, default_value_t = 256, value_parser = positive)]
    hidden: usize,
    #[command(flatten)]
    pub hyper: MlpHyper,
    /// Seed of initialisation and shuffling
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The MLP's training settings (report defaults).
#[derive(Args, Debug, Clone)]
pub struct MlpHyper {
    /// Epochs
    #[arg(long, default_value_t = 100, value_parser = positive)]
    epochs: usize,
    /// Learning rate η
    #[arg(long, default_value_t = 0.01, value_parser = learning_rate)]
    lr: f32,
    /// How per-sample losses and gradients combine over a batch (the report's MLP sums)
    #[arg(long, value_enum, default_value_t = Reduction::Sum)]
    loss_reduction: Reduction,
    /// Hidden activation (the report's is sigmoid)
    #[arg(long, value_enum, default_value_t = Activation::Sigmoid)]
    activation: Activation,
    /// Weight initialisation (biases start at zero)
    #[arg(long, value_enum, default_value_t = Init::Normal)]
    init: Init,
    /// Standard deviation of --init normal
    #[arg(long, default_value_t = 0.01, value_name = "SIGMA", value_parser = non_negative)]
    init_std: f64,
    /// Input normalisation: p/255 (unit), (p/255 − 0.1307)/0.3081 (standard) or [−1, 1]
    /// (symmetric: TorchVision's Normalize((0.5,), (0.5,)), which matches the report's MLP curves;
    /// see the README)
    #[arg(long, value_enum, default_value_t = Normalize::Symmetric)]
    normalize: Normalize,
    #[command(flatten)]
    optim: OptimArgs,
}

#[derive(Args, Debug)]
pub struct CnnArgs {
    /// Kernel side K (the convolution is valid, stride 1: output (29−K)×(29−K))
    #[arg(long, default_value_t = 7, value_parser = kernel_size)]
    kernel: usize,
    #[command(flatten)]
    pub hyper: CnnHyper,
    /// Seed of initialisation and shuffling
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The CNN's training settings (report defaults).
#[derive(Args, Debug, Clone)]
pub struct CnnHyper {
    /// Number of filters F (the report's "one kernel" is 1)
    #[arg(long, default_value_t = 1, value_parser = positive)]
    filters: usize,
    /// Give the convolution a bias per filter (the report's has none)
    #[arg(long)]
    conv_bias: bool,
    /// Max-pooling after the ReLU (the report has none)
    #[arg(long)]
    pool: bool,
    /// Window and stride P of --pool (P×P windows)
    #[arg(long, default_value_t = 2, value_parser = positive, value_name = "P")]
    pool_size: usize,
    /// Epochs
    #[arg(long, default_value_t = 5, value_parser = positive)]
    epochs: usize,
    /// Learning rate η (chosen against the report's K=7 curve and accuracy; see the README)
    #[arg(long, default_value_t = 0.04, value_parser = learning_rate)]
    lr: f32,
    /// How per-sample losses and gradients combine over a batch (the report's CNN averages)
    #[arg(long, value_enum, default_value_t = Reduction::Mean)]
    loss_reduction: Reduction,
    /// Input normalisation: p/255 (unit), (p/255 − 0.1307)/0.3081 (standard) or [−1, 1] (symmetric)
    #[arg(long, value_enum, default_value_t = Normalize::Unit)]
    normalize: Normalize,
    #[command(flatten)]
    optim: OptimArgs,
}

/// Update rule and learning-rate schedule (default: the report's plain SGD at a constant rate).
#[derive(Args, Debug, Clone)]
pub struct OptimArgs {
    /// Update rule
    #[arg(long, value_enum, default_value_t = Rule::Sgd)]
    optimizer: Rule,
    /// μ of --optimizer momentum|nesterov
    #[arg(long, default_value_t = 0.9, value_parser = unit_interval)]
    momentum: f32,
    /// β₁ of --optimizer adam|adamw
    #[arg(long, default_value_t = 0.9, value_parser = unit_interval)]
    beta1: f32,
    /// β₂ of --optimizer adam|adamw
    #[arg(long, default_value_t = 0.999, value_parser = unit_interval)]
    beta2: f32,
    /// ε of --optimizer adam|adamw
    #[arg(long, default_value_t = 1e-8, value_parser = non_negative_f32)]
    eps: f32,
    /// Weight decay λ (L2 for sgd/momentum/nesterov/adam, decoupled for adamw)
    #[arg(long, default_value_t = 0.0, value_parser = non_negative_f32)]
    weight_decay: f32,
    /// Learning-rate schedule
    #[arg(long, value_enum, default_value_t = ScheduleKind::Constant)]
    schedule: ScheduleKind,
    /// Epochs between decays of --schedule step
    #[arg(long, default_value_t = 30, value_parser = positive)]
    step_size: usize,
    /// Decay factor of --schedule step
    #[arg(long, default_value_t = 0.1, value_parser = non_negative_f32)]
    gamma: f32,
    /// Epochs of linear warm-up at the start (0: none)
    #[arg(long, default_value_t = 0)]
    warmup_epochs: usize,
    /// Training samples held out (seeded) for per-epoch validation accuracy and model_best.safetensors
    #[arg(long, default_value_t = 0, value_name = "N")]
    validation: usize,
    /// With --validation: stop after this many epochs without a better validation accuracy (0: never)
    #[arg(long, default_value_t = 0, value_name = "EPOCHS")]
    patience: usize,
    /// Dropout rate p on the output layer's input while training (MLP: the hidden units;
    /// CNN: the flattened features); 0: none
    #[arg(long, default_value_t = 0.0, value_parser = unit_interval, value_name = "P")]
    dropout: f32,
}

impl OptimArgs {
    /// The run's optimisation settings with these options.
    fn settings(
        &self,
        epochs: usize,
        lr: f32,
        batch_size: usize,
        reduction: Reduction,
        seed: u64,
    ) -> Settings {
        Settings {
            optimizer: self.optimizer(),
            schedule: self.schedule(),
            validation: self.validation,
            patience: self.patience,
            dropout: self.dropout,
            ..Settings::sgd(epochs, lr, batch_size, reduction, seed)
        }
    }

    fn optimizer(&self) -> Optimizer {
        Optimizer {
            rule: self.optimizer,
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
        }
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            kind: self.schedule,
            step_size: self.step_size,
            gamma: self.gamma,
            warmup_epochs: self.warmup_epochs,
        }
    }
}

fn unit_interval(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("must be in [0, 1), got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

fn non_negative_f32(s: &str) -> Result<f32, String> {
    non_negative(s).map(|v| v as f32)
}

/// Flags of every training command.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Mini-batch size
    #[arg(long, default_value_t = 128, value_parser = positive)]
    pub batch_size: usize,
    /// Worker threads (0: one per core)
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Output folder (default: runs/<name>-<UTC time>)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace a finished run already in --out
    #[arg(long)]
    pub overwrite: bool,
    /// Write a resume checkpoint every N epochs (0: only when interrupted)
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub checkpoint_every: usize,
    #[command(flatten)]
    pub data: DataArgs,
}

impl CommonArgs {
    /// --out, or runs/<name>-<UTC time>.
    pub fn out_dir(&self, name: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(format!("{name}-{}", utc_stamp())))
    }
}

pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

pub fn kernel_size(s: &str) -> Result<usize, String> {
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

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a non-negative finite number, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

impl MlpHyper {
    pub fn spec(&self, hidden: usize, batch_size: usize, seed: u64) -> RunSpec {
        RunSpec {
            model: ModelSpec::Mlp {
                input: PIXELS,
                hidden,
                classes: CLASSES,
                activation: self.activation,
            },
            init: self.init,
            init_std: self.init_std,
            normalize: self.normalize,
            settings: self
                .optim
                .settings(self.epochs, self.lr, batch_size, self.loss_reduction, seed),
        }
    }
}

impl CnnHyper {
    pub fn spec(&self, kernel: usize, batch_size: usize, seed: u64) -> RunSpec {
        RunSpec {
            model: ModelSpec::Cnn {
                side: SIDE,
                kernel,
                filters: self.filters,
                conv_bias: self.conv_bias,
                classes: CLASSES,
                pool: self.pool,
                pool_size: self.pool_size,
            },
            init: Init::He,
            init_std: 0.0,
            normalize: self.normalize,
            settings: self
                .optim
                .settings(self.epochs, self.lr, batch_size, self.loss_reduction, seed),
        }
    }
}

/// Set by Ctrl-C (SIGINT) or SIGTERM: training stops after the current batch.
static STOP: AtomicBool = AtomicBool::new(false);

/// Exit code of a run stopped by a signal (128 + SIGINT).
pub const INTERRUPTED_EXIT: u8 = 130;

fn install_stop_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond interrupt: exiting now without saving");
            std::process::exit(INTERRUPTED_EXIT as i32);
        }
        eprintln!("\ninterrupted: finishing the current batch and saving a resume checkpoint (interrupt again to quit at once)");
    })
    .map_err(|e| anyhow::anyhow!("cannot install the interrupt handler: {e}"))
}

pub fn run(a: TrainArgs) -> Result<()> {
    let (spec, common, name) = match (a.model, a.resume) {
        (_, Some(run)) => return resume(&run, a.data_dir),
        (Some(TrainCommand::Mlp(a)), None) => (
            a.hyper.spec(a.hidden, a.common.batch_size, a.seed),
            a.common,
            format!("mlp-h{}", a.hidden),
        ),
        (Some(TrainCommand::Cnn(a)), None) => (
            a.hyper.spec(a.kernel, a.common.batch_size, a.seed),
            a.common,
            format!("cnn-k{}-f{}", a.kernel, a.hyper.filters),
        ),
        (None, None) => unreachable!("clap requires a model or --resume"),
    };
    spec.model.validate().map_err(anyhow::Error::msg)?;
    warn_if_debug();
    let threads = super::set_threads(common.threads)?;
    let out = common.out_dir(&name);
    let run_dir = RunDir::create(&out, common.overwrite)?;
    let data = DataCache::new(&common.data)?.get(spec.normalize)?;
    print_header(&spec, threads, &data, &out);
    println!("The number of training data: {}", data.train.len());
    println!("The number of testing data: {}", data.test.len());
    run_to_end(&spec, &data, &run_dir, common.checkpoint_every, None)
}

/// `train --resume RUN`: the run's configuration and thread count, its resume
/// checkpoint, and on to the last epoch.
fn resume(run: &std::path::Path, data_dir: Option<PathBuf>) -> Result<()> {
    warn_if_debug();
    let run_dir = RunDir {
        path: run.to_path_buf(),
    };
    let config_path = run.join(scratchnet::run::CONFIG_FILE);
    let config: RunConfig = serde_json::from_str(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("{}: cannot read", config_path.display()))?,
    )
    .with_context(|| format!("{}: not a run configuration", config_path.display()))?;
    if run_dir.model_path().exists() && !run_dir.resume_path().exists() {
        anyhow::bail!(
            "{} is already finished (it holds {})",
            run.display(),
            scratchnet::run::MODEL_FILE
        );
    }
    if !run_dir.resume_path().exists() {
        anyhow::bail!(
            "{} holds no resume checkpoint ({}); start the run again instead",
            run.display(),
            scratchnet::run::RESUME_FILE
        );
    }
    let (ckpt, state) = load_resume(&run_dir)?;
    if ckpt.spec != config.model {
        anyhow::bail!(
            "{}: the resume checkpoint is of another model than config.json",
            run.display()
        );
    }
    let threads = super::set_threads(state.threads)?;
    let spec = RunSpec {
        model: config.model,
        init: config.init,
        init_std: config.init_std,
        normalize: config.normalize,
        settings: config.settings,
    };
    let args = DataArgs {
        dataset: config.dataset,
        data_dir: Some(data_dir.unwrap_or(config.data_dir.clone())),
        download: false,
        skip_checksum: false,
        mirrors: Vec::new(),
    };
    let data = DataCache::new(&args)?.get(spec.normalize)?;
    print_header(&spec, threads, &data, run);
    let p = state.position;
    println!(
        "Resuming at epoch {}/{}, batch {} ({} epochs in the history)",
        p.epoch,
        spec.settings.epochs,
        p.batch,
        state.history.len()
    );
    for r in &state.history {
        println!("{}", epoch_line(r, spec.settings.epochs, ""));
    }
    // The optimiser's moments, when its rule keeps them.
    let moments = |name: &str| {
        ckpt.extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let optimizer = scratchnet::optim::State {
        steps: state.optimizer_steps,
        m: moments("optimizer.m"),
        v: moments("optimizer.v"),
    };
    run_to_end(
        &spec,
        &data,
        &run_dir,
        config.checkpoint_every,
        Some(Resume {
            params: ckpt.params,
            state,
            optimizer,
        }),
    )
}

/// Trains with progress output and interruption handling; prints the final lines.
fn run_to_end(
    spec: &RunSpec,
    data: &Data,
    run_dir: &RunDir,
    checkpoint_every: usize,
    resume: Option<Resume>,
) -> Result<()> {
    install_stop_handler()?;
    let epochs = spec.settings.epochs;
    let bar = progress_bar((epochs * data.train.len().div_ceil(spec.settings.batch_size)) as u64);
    if let Some(r) = &resume {
        let p = r.state.position;
        let per_epoch = data.train.len().div_ceil(spec.settings.batch_size);
        bar.set_position(((p.epoch.max(1) - 1) * per_epoch + p.batch) as u64);
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let options = ExecuteOptions {
        command: &command,
        stop: Some(&STOP),
        checkpoint_every,
    };
    let end = execute_from(spec, data, run_dir, options, resume, &mut |p| match p {
        Progress::Batch { epoch, .. } => {
            bar.set_message(format!("epoch {epoch}/{epochs}"));
            bar.inc(1);
        }
        Progress::Epoch(r, _, _) => bar.suspend(|| println!("{}", epoch_line(r, epochs, ""))),
    });
    bar.finish_and_clear();
    let history = match end? {
        RunEnd::Finished(h) => h,
        RunEnd::Interrupted(p) => {
            return Err(super::Exit {
                code: INTERRUPTED_EXIT,
                message: format!(
                    "training interrupted at epoch {}, batch {}; saved {}\nResume with: scratchnet train --resume {}",
                    p.epoch,
                    p.batch,
                    run_dir.resume_path().display(),
                    run_dir.path.display()
                ),
            }
            .into());
        }
    };
    let last = history.last().expect("at least one epoch");
    println!("Test Accuracy: {:.4}", last.test_accuracy);
    let total: f64 = history.iter().map(|r| r.seconds).sum();
    println!(
        "Training took {total:.1} s ({:.2} s per epoch). Saved {} (config.json, history.csv, model.safetensors, curves.png/.svg)",
        total / history.len() as f64,
        run_dir.path.display()
    );
    Ok(())
}

/// The report's epoch line, then seconds, validation accuracy (if any) and any extra note.
pub fn epoch_line(r: &scratchnet::train::EpochRecord, epochs: usize, extra: &str) -> String {
    let validation = r
        .validation_accuracy
        .map(|v| format!(", validation {v:.4}"))
        .unwrap_or_default();
    format!(
        "Epoch {}/{}, Train Loss: {:.4} Train Accuracy: {:.4} ({:.2} s{validation}{extra})",
        r.epoch, epochs, r.train_loss, r.train_accuracy, r.seconds
    )
}

pub fn warn_if_debug() {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build, and training will be slow; use `cargo run --release` or a release binary"
        );
    }
}

/// A progress bar with ETA on a terminal; hidden otherwise.
pub fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {percent}% ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn print_header(spec: &RunSpec, threads: usize, data: &Data, out: &std::path::Path) {
    let s = &spec.settings;
    let init = match spec.init {
        Init::Normal => format!("normal(σ={})", spec.init_std),
        other => other.name().to_string(),
    };
    println!(
        "{}: epochs {}, lr {}, batch {}, loss {}, init {init}, normalize {}, seed {}, threads {threads}",
        spec.model.describe(),
        s.epochs,
        s.lr,
        s.batch_size,
        s.reduction.name(),
        spec.normalize.name(),
        s.seed,
    );
    println!("data: {}   run folder: {}", data.dir.display(), out.display());
}

/// Makes sure the data folder holds the four files, downloading them when
/// `--download` is given; otherwise the error says how to get them.
pub fn ensure_data(data: &DataArgs) -> Result<()> {
    ensure_files(data, &FileKind::ALL)
}

/// [`ensure_data`] for some of the four files.
pub fn ensure_files(data: &DataArgs, kinds: &[FileKind]) -> Result<()> {
    let dir = data.dir();
    let missing = kinds.iter().any(|&k| locate(&dir, k).is_none());
    if missing {
        if data.download {
            super::download::fetch(data, Duration::from_secs(30), false)?;
        } else {
            for &k in kinds {
                require(&dir, data.dataset, k)?;
            }
        }
    }
    Ok(())
}

/// The dataset read once, normalised on demand (once per normalisation).
pub struct DataCache {
    args: DataArgs,
    train: RawSplit,
    test: RawSplit,
    normalised: Mutex<Vec<Arc<Data>>>,
}

impl DataCache {
    pub fn new(args: &DataArgs) -> Result<Self> {
        ensure_data(args)?;
        let dir = args.dir();
        Ok(DataCache {
            args: args.clone(),
            train: load_split(&dir, args.dataset, Split::Train, args.verify())?,
            test: load_split(&dir, args.dataset, Split::Test, args.verify())?,
            normalised: Mutex::new(Vec::new()),
        })
    }

    pub fn get(&self, normalize: Normalize) -> Result<Arc<Data>> {
        let mut cache = self
            .normalised
            .lock()
            .map_err(|_| anyhow::anyhow!("data cache poisoned"))?;
        if let Some(d) = cache.iter().find(|d| d.normalize == normalize) {
            return Ok(d.clone());
        }
        let d = Arc::new(Data {
            dataset: self.args.dataset,
            dir: self.args.dir(),
            normalize,
            train: Samples::from_raw(&self.train, normalize),
            test: Samples::from_raw(&self.test, normalize),
        });
        cache.push(d.clone());
        Ok(d)
    }
}
