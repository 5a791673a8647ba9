//! `scratchnet train mlp|cnn`: train one model, print the report's lines, write a run folder.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use clap::{Args, Subcommand};
use scratchnet::run::{
    Data, ExecuteOptions, InitFrom, Resume, RunDir, RunEnd, RunSpec, execute_from, extend, open_unfinished,
};
use scratchnet::train::Progress;

use super::DataArgs;
use super::args::{CnnHyper, CommonArgs, MlpHyper};
use super::dataset::DataCache;
use super::output::say;
use super::output::{epoch_line, print_header, progress_bar, warn_if_debug};
use super::validate::{hidden, kernel_size};

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
    /// With --resume: accept data files whose content differs from the official checksums
    #[arg(long, requires = "resume")]
    skip_checksum: bool,
    /// With --resume: train to this many epochs in all, also continuing a finished run
    #[arg(long, value_name = "N", requires = "resume", value_parser = super::validate::epochs)]
    epochs: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    /// The report's MLP: 784 → hidden (sigmoid) → 10 (softmax)
    Mlp(MlpArgs),
    /// The report's CNN: conv (F filters K×K) → ReLU → flatten → 10 (softmax)
    Cnn(CnnArgs),
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct MlpArgs {
    /// Hidden units H
    #[arg(long, default_value_t = 256, value_parser = hidden)]
    hidden: usize,
    #[command(flatten)]
    pub hyper: MlpHyper,
    /// Seed of initialisation and shuffling
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start from this model's parameters (a run folder or .safetensors of the same architecture)
    #[arg(long, value_name = "RUN_OR_MODEL")]
    init_from: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The MLP's training settings (report defaults).
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct CnnArgs {
    /// Kernel side K (the convolution is valid, stride 1: output (29−K)×(29−K))
    #[arg(long, default_value_t = 7, value_parser = kernel_size)]
    kernel: usize,
    #[command(flatten)]
    pub hyper: CnnHyper,
    /// Seed of initialisation and shuffling
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start from this model's parameters (a run folder or .safetensors of the same architecture)
    #[arg(long, value_name = "RUN_OR_MODEL")]
    init_from: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl TrainCommand {
    /// The run these flags describe, and its default folder name.
    pub fn spec(&self) -> (RunSpec, &CommonArgs) {
        match self {
            TrainCommand::Mlp(a) => (a.hyper.spec(a.hidden, a.common.batch_size, a.seed), &a.common),
            TrainCommand::Cnn(a) => (a.hyper.spec(a.kernel, a.common.batch_size, a.seed), &a.common),
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
    let (spec, common, name, init_from) = match (a.model, a.resume) {
        (_, Some(run)) => return resume(&run, a.data_dir, a.skip_checksum, a.epochs),
        (Some(TrainCommand::Mlp(a)), None) => (
            a.hyper.spec(a.hidden, a.common.batch_size, a.seed),
            a.common,
            format!("mlp-h{}", a.hidden),
            a.init_from,
        ),
        (Some(TrainCommand::Cnn(a)), None) => (
            a.hyper.spec(a.kernel, a.common.batch_size, a.seed),
            a.common,
            format!("cnn-k{}-f{}", a.kernel, a.hyper.filters),
            a.init_from,
        ),
        (None, None) => unreachable!("clap requires a model or --resume"),
    };
    spec.validate().map_err(super::usage)?;
    let init_from = init_from.map(|p| starting_point(&p, &spec)).transpose()?;
    warn_if_debug();
    let threads = super::set_threads(common.threads)?;
    let out = common.out_dir(&name);
    let run_dir = RunDir::create(&out, common.overwrite)?;
    let data = DataCache::new(&common.data)?.get(spec.normalize)?;
    print_header(&spec, threads, super::kernels()?.name(), &data, &out);
    let held = spec.settings.validation.min(data.train.len());
    say!("The number of training data: {}", data.train.len() - held);
    if held > 0 {
        say!(
            "The number of validation data: {held} (held out of the {} training images)",
            data.train.len()
        );
    }
    say!("The number of testing data: {}", data.test.len());
    if let Some(i) = &init_from {
        say!("Starting from the parameters of {}", i.path.display());
    }
    run_to_end(
        &spec,
        &data,
        &run_dir,
        common.checkpoint_every,
        None,
        init_from.as_ref(),
    )
}

/// `--init-from`: the parameters of a model of the same architecture and
/// normalisation as `spec`, or an error naming what differs.
fn starting_point(path: &std::path::Path, spec: &RunSpec) -> Result<InitFrom> {
    let (file, ckpt) = super::load_model(path).map_err(|e| anyhow::anyhow!("--init-from: {e:#}"))?;
    if ckpt.spec != spec.model {
        return Err(super::usage(format!(
            "--init-from {}: the model is {}, but this run trains {}",
            file.display(),
            ckpt.spec.describe(),
            spec.model.describe()
        )));
    }
    if ckpt.normalize != spec.normalize {
        return Err(super::usage(format!(
            "--init-from {}: the model was trained on inputs normalised `{}`, this run normalises `{}`; pass --normalize {}",
            file.display(),
            ckpt.normalize.name(),
            spec.normalize.name(),
            ckpt.normalize.name()
        )));
    }
    Ok(InitFrom {
        path: std::path::absolute(&file).unwrap_or(file),
        params: ckpt.params,
    })
}

/// `train --resume RUN`: the run's configuration and thread count, its resume
/// checkpoint, and on to the last epoch.
fn resume(
    run: &std::path::Path,
    data_dir: Option<PathBuf>,
    skip_checksum: bool,
    epochs: Option<usize>,
) -> Result<()> {
    warn_if_debug();
    let run_dir = RunDir::open(run)?;
    if let Some(n) = epochs {
        extend(&run_dir, n, &super::command_line())?;
    }
    let (config, resume) = open_unfinished(&run_dir)?;
    let state = &resume.state;
    let threads = super::set_threads(state.threads)?;
    let spec = config.spec;
    let args = DataArgs {
        chosen: Some(config.dataset),
        data_dir: Some(data_dir.unwrap_or(config.data_dir.clone())),
        download: false,
        skip_checksum,
        mirrors: Vec::new(),
    };
    let data = DataCache::new(&args)?.get(spec.normalize)?;
    print_header(&spec, threads, super::kernels()?.name(), &data, run);
    let p = state.position;
    say!(
        "Resuming at epoch {}/{}, batch {} ({} epochs in the history)",
        p.epoch,
        spec.settings.epochs,
        p.batch,
        state.history.len()
    );
    for r in &state.history {
        say!("{}", epoch_line(r, spec.settings.epochs, ""));
    }
    run_to_end(
        &spec,
        &data,
        &run_dir,
        config.checkpoint_every,
        Some(resume),
        None,
    )
}
/// Trains with progress output and interruption handling; prints the final lines.
fn run_to_end(
    spec: &RunSpec,
    data: &Data,
    run_dir: &RunDir,
    checkpoint_every: usize,
    resume: Option<Resume>,
    init_from: Option<&InitFrom>,
) -> Result<()> {
    install_stop_handler()?;
    let epochs = spec.settings.epochs;
    let bar = progress_bar((epochs * data.train.len().div_ceil(spec.settings.batch_size)) as u64);
    if let Some(r) = &resume {
        let p = r.state.position;
        let per_epoch = data.train.len().div_ceil(spec.settings.batch_size);
        bar.set_position(((p.epoch.max(1) - 1) * per_epoch + p.batch) as u64);
    }
    let command = super::command_line();
    let options = ExecuteOptions {
        command: &command,
        stop: Some(&STOP),
        checkpoint_every,
        init_from,
    };
    let end = execute_from(spec, data, run_dir, options, resume, &mut |p| match p {
        Progress::Batch { epoch, .. } => {
            bar.set_message(format!("epoch {epoch}/{epochs}"));
            bar.inc(1);
        }
        Progress::Epoch(r, _, _) => bar.suspend(|| say!("{}", epoch_line(r, epochs, ""))),
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
    say!("Test Accuracy: {:.4}", last.test_accuracy);
    let total: f64 = history.iter().map(|r| r.seconds).sum();
    say!(
        "Training took {total:.1} s ({:.2} s per epoch). Saved {} (config.json, history.csv, model.safetensors, curves.png/.svg)",
        total / history.len() as f64,
        run_dir.path.display()
    );
    Ok(())
}
