//! `scratchnet predict MODEL IMAGE...`: the most likely classes of digit images.

use std::path::PathBuf;

use super::output::say;
use anyhow::Result;
use clap::Args;
use scratchnet::data::batches::Normalize;
use scratchnet::data::mnist::{CLASSES, PIXELS, SIDE};
use scratchnet::kernels::Choice;
use scratchnet::layers::softmax_ce::softmax;
use scratchnet::predict::{Invert, load_digit};
use scratchnet::train::Runner;

/// `--top`: 1 to 10 classes.
fn top(s: &str) -> Result<usize, String> {
    super::validate::bounded(s, 1, CLASSES)
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct PredictArgs {
    /// A run folder (holding model.safetensors) or a .safetensors file
    #[arg(value_name = "RUN_OR_MODEL")]
    model: PathBuf,
    /// PNG or JPEG images of single digits (any size; prepared like MNIST's digits)
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show per image
    #[arg(long, default_value_t = 3, value_parser = top)]
    top: usize,
    /// Invert brightness first (auto: when the background is light)
    #[arg(long, value_enum, default_value_t = Invert::Auto)]
    invert: Invert,
}

pub fn run(a: PredictArgs) -> Result<()> {
    let (_, ckpt) = super::load_model(&a.model)?;
    let names = ckpt.dataset.class_names();
    let table = Normalize::table(ckpt.normalize);
    ckpt.spec
        .fits("a prepared 28×28 digit", PIXELS, SIDE, CLASSES)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.model.display()))?;
    let runner = Runner::of(&ckpt.spec, Choice::Auto).map_err(anyhow::Error::msg)?;
    for image in &a.images {
        let pixels = load_digit(image, a.invert)?;
        let x: Vec<f32> = pixels.iter().map(|&p| table[p as usize]).collect();
        let logits = runner.logits(&ckpt.params, &x, 1);
        let mut probs = vec![0.0f32; logits.len()];
        softmax(&logits, logits.len(), &mut probs);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&i, &j| probs[j].total_cmp(&probs[i]).then(i.cmp(&j)));
        let shown: Vec<String> = order
            .iter()
            .take(a.top)
            .map(|&c| format!("{} ({:.3})", names[c], probs[c]))
            .collect();
        say!("{}: {}", image.display(), shown.join(", "));
    }
    Ok(())
}
