//! Subcommands, one file each; what several share in its own file: flag
//! groups (`args.rs`), flag validators (`validate.rs`), printing
//! (`output.rs`), the data (`dataset.rs`). Exit codes: 0 success, 1 runtime
//! error, 2 usage error (reported before any work starts).

mod args;
mod bench;
mod data;
mod dataset;
mod download;
mod eval;
mod export;
mod gradcheck;
pub mod grid;
mod inspect;
mod output;
mod predict;
pub mod preset;
mod reproduce;
mod serve;
mod speedrun;
mod sweep;
mod train;
mod validate;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use scratchnet::data::download::MIRRORS_ENV;
use scratchnet::data::mnist::{Dataset, Verify};
use scratchnet::kernels::{Choice, Resolved};

#[derive(Parser, Debug)]
#[command(
    name = "scratchnet",
    version,
    about = "MNIST with an MLP and a CNN written from scratch: manual backpropagation and gradient descent",
    after_help = "Data: --data-dir DIR, else $SCRATCHNET_DATA_DIR/<dataset>/, else the user cache folder …/scratchnet/<dataset>/.\n\
                  Presets: `train mlp|cnn --preset NAME` (report, best-mlp, best-cnn, fast-mlp, fast-cnn) expand to their flags; later flags override them.",
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Download and verify a dataset's four files
    Download(download::DownloadArgs),
    /// Summarise a data folder: counts, class histogram, pixel statistics, checksums
    Data(data::DataSummaryArgs),
    /// Train a model, or resume an interrupted run (--resume RUN)
    Train(train::TrainArgs),
    /// Train one model per value of a hyperparameter (and per seed); tables and figures
    #[command(
        subcommand,
        after_help = "Any other flag that takes a value also takes a comma-separated list \
                      (--lr 0.01,0.05 --batch-size 64,128 --dropout 0,0.3): one configuration per combination."
    )]
    Sweep(sweep::SweepCommand),
    /// Run both sweeps of the report and compare every cell of its tables
    Reproduce(reproduce::ReproduceArgs),
    /// Evaluate a trained model on the test set
    Eval(eval::EvalArgs),
    /// A trained model's weights as pictures: hidden-unit tiles or filters, and the output layer
    Inspect(inspect::InspectArgs),
    /// Time to accuracy: train the fast-cnn or fast-mlp preset once per seed, report wall time and test accuracy
    Speedrun(speedrun::SpeedrunArgs),
    /// Write a trained model as an ONNX graph
    Export(export::ExportArgs),
    /// Most likely classes of PNG/JPEG digit images
    Predict(predict::PredictArgs),
    /// A local web page: draw a digit, see inside the model, its mistakes, live training curves
    Serve(serve::ServeArgs),
    /// Training throughput per model, with the machine's matrix-multiply speed for scale
    Bench(bench::BenchArgs),
    /// Compare back-propagated gradients with finite differences
    #[command(subcommand)]
    Gradcheck(gradcheck::GradcheckCommand),
}

/// Which data and where it is: shared by every command that reads data.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset [default: mnist; for eval, the model's]
    #[arg(long = "dataset", value_enum, value_name = "DATASET")]
    pub chosen: Option<Dataset>,
    /// Folder holding the dataset's four IDX files (default: $SCRATCHNET_DATA_DIR/<dataset>, else the user cache)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Download the data first if it is missing
    #[arg(long)]
    pub download: bool,
    /// Accept files whose content differs from the official checksums
    #[arg(long)]
    pub skip_checksum: bool,
    /// Download mirror URL prefix, tried in order (repeatable; default: the dataset's official mirrors)
    #[arg(long = "mirror", value_name = "URL", env = MIRRORS_ENV, value_delimiter = ',')]
    pub mirrors: Vec<String>,
}

impl DataArgs {
    /// The dataset: `--dataset`, else MNIST.
    pub fn dataset(&self) -> Dataset {
        self.chosen.unwrap_or(Dataset::Mnist)
    }

    pub fn dir(&self) -> PathBuf {
        self.dataset().resolve_dir(self.data_dir.as_deref())
    }

    pub fn verify(&self) -> Verify {
        if self.skip_checksum {
            Verify::Skip
        } else {
            Verify::Checksum
        }
    }

    pub fn mirrors(&self) -> Vec<String> {
        if self.mirrors.is_empty() {
            self.dataset().mirrors().iter().map(|s| s.to_string()).collect()
        } else {
            self.mirrors.clone()
        }
    }
}

/// The checkpoint of a run folder (its model.safetensors) or a .safetensors file.
pub fn load_model(run_or_model: &std::path::Path) -> Result<(PathBuf, scratchnet::checkpoint::Checkpoint)> {
    let path = if run_or_model.is_dir() {
        run_or_model.join(scratchnet::run::MODEL_FILE)
    } else {
        run_or_model.to_path_buf()
    };
    if !path.exists() {
        anyhow::bail!("{}: no such model file or run folder", path.display());
    }
    let ckpt = scratchnet::checkpoint::load(&path)?;
    Ok((path, ckpt))
}

/// Sizes the global thread pool; 0 means one thread per core. More than
/// four threads per core is capped there, with a warning.
pub fn set_threads(threads: usize) -> Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = (4 * cores).max(8);
    let threads = if threads > cap {
        eprintln!(
            "warning: --threads {threads} is more than this machine's {cores} cores can use; using {cap}"
        );
        cap
    } else {
        threads
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| anyhow::anyhow!("cannot start the thread pool: {e}"))?;
    Ok(rayon::current_num_threads())
}

/// The command line as typed, for `config.json` (arguments that are not
/// UTF-8 are shown with replacement characters).
pub fn command_line() -> String {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A usage error (exit 2) with `message`.
pub fn usage(message: String) -> anyhow::Error {
    Exit {
        code: 2,
        message: format!("error: {message}"),
    }
    .into()
}

/// An error that ends the program with a specific exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// The kernels that `SCRATCHNET_KERNELS` chooses on this CPU; a usage error
/// (exit 2) for a value that is not a choice or a level this CPU lacks.
pub fn kernels() -> Result<Resolved> {
    Choice::Auto.resolve().map_err(|message| {
        Exit {
            code: 2,
            message: format!("error: {message}"),
        }
        .into()
    })
}

pub fn run(cli: Cli) -> Result<()> {
    // Refuse a bad kernel choice before any work.
    kernels()?;
    match cli.command {
        Command::Download(a) => download::run(a),
        Command::Data(a) => data::run(a),
        Command::Train(c) => train::run(c),
        Command::Sweep(c) => sweep::run(c),
        Command::Reproduce(a) => reproduce::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Gradcheck(c) => gradcheck::run(c),
        Command::Bench(a) => bench::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Export(a) => export::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Speedrun(a) => speedrun::run(a),
    }
}
