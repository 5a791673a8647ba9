//! What the commands print: the run header, the report's epoch line, the
//! progress bar, the debug-build warning.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use scratchnet::init::Init;
use scratchnet::run::{Data, RunSpec};
use scratchnet::train::EpochRecord;

/// The report's epoch line, then seconds, validation accuracy (if any) and any extra note.
pub fn epoch_line(r: &EpochRecord, epochs: usize, extra: &str) -> String {
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

pub fn print_header(spec: &RunSpec, threads: usize, kernels: &str, data: &Data, out: &std::path::Path) {
    let s = &spec.settings;
    let init = match spec.init {
        Init::Normal => format!("normal(σ={})", spec.init_std),
        other => other.name().to_string(),
    };
    line(format_args!(
        "{}: epochs {}, lr {}, batch {}, loss {}, init {init}, normalize {}, seed {}, threads {threads}, kernels {kernels}",
        spec.model.describe(),
        s.epochs,
        s.lr,
        s.batch_size,
        s.reduction.name(),
        spec.normalize.name(),
        s.seed,
    ));
    line(format_args!(
        "data: {}   run folder: {}",
        data.dir.display(),
        out.display()
    ));
}

/// Set once standard output is closed (a reader such as `head` went away).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to standard output. A closed pipe ends the output, not
/// the program: later lines are dropped, and training goes on.
pub fn line(args: std::fmt::Arguments) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{args}").and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `println!` that survives a closed standard output ([`line`]).
macro_rules! say {
    () => {
        $crate::cli::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}
pub(crate) use say;
