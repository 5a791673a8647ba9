//! The flag groups that several subcommands share: a model family's
//! hyperparameters, the optimiser's, and the run's common flags.

use std::path::PathBuf;

use clap::Args;
use scratchnet::data::batches::Normalize;
use scratchnet::data::mnist::{CLASSES, PIXELS, SIDE};
use scratchnet::init::Init;
use scratchnet::layers::softmax_ce::Reduction;
use scratchnet::models::{Activation, ModelSpec};
use scratchnet::optim::{Optimizer, Rule, Schedule, ScheduleKind};
use scratchnet::run::{RunSpec, utc_stamp};
use scratchnet::train::Settings;

use super::DataArgs;
use super::validate::{
    batch_size, epochs, filters, learning_rate, non_negative, non_negative_f32, positive, unit_interval,
};

#[derive(Args, Debug, Clone)]
pub struct MlpHyper {
    /// Epochs
    #[arg(long, default_value_t = 100, value_parser = epochs)]
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
    /// see docs/reproduction.md)
    #[arg(long, value_enum, default_value_t = Normalize::Symmetric)]
    normalize: Normalize,
    #[command(flatten)]
    optim: OptimArgs,
}

#[derive(Args, Debug, Clone)]
pub struct CnnHyper {
    /// Number of filters F (the report's "one kernel" is 1)
    #[arg(long, default_value_t = 1, value_parser = filters)]
    pub filters: usize,
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
    #[arg(long, default_value_t = 5, value_parser = epochs)]
    epochs: usize,
    /// Learning rate η (chosen against the report's K=7 curve and accuracy; see docs/reproduction.md)
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
    /// Data augmentation: move each training image by up to N pixels in each
    /// direction, drawn afresh for every sample at every step (edge pixels
    /// repeated); 0: none. Evaluation always sees the images as they are
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=scratchnet::train::MAX_SHIFT as u64))]
    shift: u64,
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
            shift: self.shift as usize,
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

/// Flags of every training command.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// A named set of flags expanded in place before the others: report, best-mlp, best-cnn, fast-mlp or fast-cnn
    /// (`--preset NAME` first; flags after it override the preset's)
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Mini-batch size
    #[arg(long, default_value_t = 128, value_parser = batch_size)]
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

/// `values` without repeats, in first-seen order; a repeat is reported once
/// (a list such as `--seeds 0,0` would count one run twice).
pub fn unique<T: PartialEq + Copy + std::fmt::Display>(flag: &str, values: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for &v in values {
        if out.contains(&v) {
            eprintln!("note: {flag} lists {v} more than once; it runs once");
        } else {
            out.push(v);
        }
    }
    out
}
