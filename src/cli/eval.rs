//! `scratchnet eval RUN_OR_MODEL`: test accuracy, per-class accuracy, confusion matrix.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use scratchnet::data::batches::Samples;
use scratchnet::data::mnist::{CLASSES, FileKind, SIDE, Split, load_split};
use scratchnet::kernels::Choice;
use scratchnet::metrics::{thousands, wilson_interval};
use scratchnet::train::{Runner, check_memory};

use super::DataArgs;
use super::output::say;
use super::validate::batch_size;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// A run folder (holding model.safetensors) or a .safetensors file
    #[arg(value_name = "RUN_OR_MODEL")]
    model: PathBuf,
    /// Evaluation batch size
    #[arg(long, default_value_t = 128, value_parser = batch_size)]
    batch_size: usize,
    /// Worker threads (0: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(mut a: EvalArgs) -> Result<()> {
    let threads = super::set_threads(a.threads)?;
    let (path, ckpt) = super::load_model(&a.model)?;
    if let Some(asked) = a.data.chosen.filter(|&d| d != ckpt.dataset) {
        eprintln!(
            "note: --dataset {} ignored: {} was trained on {}, so it is evaluated on the {} test set",
            asked.dir_name(),
            path.display(),
            ckpt.dataset.display_name(),
            ckpt.dataset.display_name()
        );
    }
    a.data.chosen = Some(ckpt.dataset);
    // Evaluation needs only the test files.
    let test_files = [FileKind::TestImages, FileKind::TestLabels];
    super::dataset::ensure_files(&a.data, &test_files)?;
    let raw = load_split(&a.data.dir(), ckpt.dataset, Split::Test, a.data.verify())?;
    let test = Samples::from_raw(&raw, ckpt.normalize);
    let what = format!("the {} test set", ckpt.dataset.display_name());
    ckpt.spec
        .fits(&what, test.dim, SIDE, CLASSES)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let bs = a.batch_size;
    check_memory(&ckpt.spec, bs, threads, false).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let runner = Runner::of(&ckpt.spec, Choice::Auto).map_err(anyhow::Error::msg)?;
    let evaluation = runner.evaluate(&ckpt.params, &test, bs);
    let confusion = &evaluation.confusion;
    say!("model: {} ({})", ckpt.spec.describe(), path.display());
    say!(
        "data: {} test set, {} images, normalize {}",
        ckpt.dataset.display_name(),
        test.len(),
        ckpt.normalize.name()
    );
    say!("Test Accuracy: {:.4}", confusion.accuracy());
    say!("Test Loss: {:.4}", evaluation.loss);
    let (k, n) = (confusion.correct(), confusion.total());
    let (lo, hi) = wilson_interval(k, n);
    say!(
        "{} / {} correct; 95 % interval (Wilson score) {:.2}–{:.2} %",
        thousands(k),
        thousands(n),
        100.0 * lo,
        100.0 * hi
    );
    let names = ckpt.dataset.class_names();
    say!("\nper-class accuracy:");
    for (i, acc) in confusion.per_class_accuracy().iter().enumerate() {
        say!("  {:>11} {:.4}", names[i], acc);
    }
    say!("\nconfusion matrix:\n{}", confusion.table(&names));
    Ok(())
}
