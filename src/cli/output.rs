//! What the commands print: the run header, the report's epoch line, the
//! progress bar, the debug-build warning.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use scratchnet::init::Init;
use scratchnet::run::{Data, RunSpec};
use scratchnet::train::EpochRecord;

/// The report's epoch line, then the test loss and accuracy, and in
/// brackets seconds, validation accuracy (if any) and any extra note.
pub fn epoch_line(r: &EpochRecord, epochs: usize, extra: &str) -> String {
    let validation = r
        .validation_accuracy
        .map(|v| format!(", validation {v:.4}"))
        .unwrap_or_default();
    let test_loss = r
        .test_loss
        .map(|l| format!("Test Loss: {l:.4} "))
        .unwrap_or_default();
    format!(
        "Epoch {}/{}, Train Loss: {:.4} Train Accuracy: {:.4} {test_loss}Test Accuracy: {:.4} ({:.2} s{validation}{extra})",
        r.epoch, epochs, r.train_loss, r.train_accuracy, r.test_accuracy, r.seconds
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

/// The resolved configuration of a run, one aspect per line.
pub fn print_header(spec: &RunSpec, threads: usize, kernels: &str, data: &Data, out: &std::path::Path) {
    let s = &spec.settings;
    let init = match spec.init {
        Init::Normal => format!("normal(σ={})", spec.init_std),
        other => other.name().to_string(),
    };
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let params = scratchnet::metrics::thousands(spec.model.param_count());
    line(format_args!(
        "model:     {} — {params} parameters",
        spec.model.describe()
    ));
    line(format_args!(
        "training:  {}, batch {}, lr {}, loss {}, seed {}",
        plural(s.epochs, "epoch"),
        s.batch_size,
        s.lr,
        s.reduction.name(),
        s.seed
    ));
    line(format_args!(
        "optimiser: {}; schedule {}; dropout {}{}",
        s.optimizer.describe(),
        s.schedule.describe(),
        s.dropout,
        if s.shift > 0 {
            format!("; random shifts up to {} px", s.shift)
        } else {
            String::new()
        }
    ));
    let stop = if s.patience > 0 {
        format!(
            "; stop after {} without a better validation accuracy",
            plural(s.patience, "epoch")
        )
    } else {
        String::new()
    };
    line(format_args!(
        "init:      {init}; normalize {}; validation {}{stop}",
        spec.normalize.name(),
        if s.validation > 0 {
            format!("{} held out", s.validation)
        } else {
            "none".to_string()
        }
    ));
    line(format_args!(
        "machine:   {}, kernels {kernels}",
        plural(threads, "thread")
    ));
    line(format_args!(
        "data:      {} ({})",
        data.dir.display(),
        data.dataset.display_name()
    ));
    line(format_args!("run:       {}", out.display()));
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
