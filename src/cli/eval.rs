//! `scratchnet eval RUN_OR_MODEL`: test accuracy, per-class accuracy, confusion matrix.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use scratchnet::data::batches::Samples;
use scratchnet::data::mnist::{CLASSES, FileKind, PIXELS, SIDE, Split, load_split};
use scratchnet::kernels::Choice;
use scratchnet::metrics::{thousands, wilson_interval};
use scratchnet::train::{Answers, Runner, check_memory};

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
    /// Also write pictures into DIR (PNG and SVG): the confusion-matrix heatmap,
    /// per-class accuracy bars and the most confident mistakes
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
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
    if let Some(dir) = &a.plots {
        write_plots(dir, &runner, &ckpt, &raw, &what)?;
    }
    Ok(())
}

/// How many of the most confident mistakes the gallery shows.
const GALLERY: usize = 40;

/// `--plots DIR`: the confusion heatmap, the per-class bars and the gallery
/// of the most confident mistakes, from the answers on every test image.
fn write_plots(
    dir: &std::path::Path,
    runner: &Runner,
    ckpt: &scratchnet::checkpoint::Checkpoint,
    raw: &scratchnet::data::mnist::RawSplit,
    what: &str,
) -> Result<()> {
    use scratchnet::pictures::{ClassAccuracy, ConfusionHeatmap, Gallery};
    use scratchnet::plot::save_picture;
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("--plots {}: {e}", dir.display()))?;
    let answers = Answers::of(runner, &ckpt.params, ckpt.normalize, raw);
    let names = ckpt.dataset.class_names();
    let model = ckpt.spec.describe();
    let accuracy = answers.confusion.accuracy();
    let mistakes = answers.mistakes();
    let gallery = Gallery {
        images: mistakes
            .iter()
            .take(GALLERY)
            .map(|&i| {
                let (y, k) = (answers.labels[i] as usize, answers.predicted[i] as usize);
                let p = answers.probabilities_of(i)[k];
                (
                    raw.pixels[i * PIXELS..(i + 1) * PIXELS].to_vec(),
                    format!("{} → {} ({p:.2})", names[y], names[k]),
                )
            })
            .collect(),
        columns: 10,
        title: format!(
            "{model}\nthe {} most confident of {} mistakes on {what}: true → predicted (probability)",
            mistakes.len().min(GALLERY),
            mistakes.len()
        ),
    };
    let heatmap = ConfusionHeatmap {
        counts: answers.confusion.counts,
        names,
        title: format!(
            "{model}\nconfusion matrix on {what}, accuracy {:.2} %",
            100.0 * accuracy
        ),
    };
    let bars = ClassAccuracy {
        accuracy: answers.confusion.per_class_accuracy(),
        names,
        title: format!("{model}\naccuracy per class on {what}"),
    };
    let written = |stem: &str, r: Result<()>| {
        r.map_err(|e| anyhow::anyhow!("--plots {}: {e:#}", dir.display()))?;
        say!("Wrote {} and .svg", dir.join(format!("{stem}.png")).display());
        Ok::<(), anyhow::Error>(())
    };
    written("confusion", save_picture(dir, "confusion", &heatmap))?;
    written("class-accuracy", save_picture(dir, "class-accuracy", &bars))?;
    written("mistakes", save_picture(dir, "mistakes", &gallery))?;
    Ok(())
}
