//! `scratchnet predict MODEL IMAGE...`: the most likely classes of images,
//! each prepared the way the model's dataset was (`scratchnet::prepare`).

use std::path::{Path, PathBuf};

use super::output::say;
use anyhow::{Result, anyhow};
use clap::Args;
use scratchnet::data::batches::Normalize;
use scratchnet::data::mnist::{CLASSES, PIXELS, SIDE};
use scratchnet::kernels::Choice;
use scratchnet::layers::softmax_ce::softmax;
use scratchnet::prepare::{Invert, NoDigit, Prepared, Style, load_image, prepare};
use scratchnet::train::Runner;

/// `--top`: 1 to 10 classes.
fn top(s: &str) -> Result<usize, String> {
    super::validate::bounded(s, 1, CLASSES)
}

/// A top probability under this is called unsure.
const UNSURE: f32 = 0.5;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct PredictArgs {
    /// A run folder (holding model.safetensors) or a .safetensors file
    #[arg(value_name = "RUN_OR_MODEL")]
    model: PathBuf,
    /// PNG or JPEG images, each of one digit (or one item for a Fashion-MNIST
    /// model), any size, dark on light or light on dark, photos included
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show per image
    #[arg(long, default_value_t = 3, value_parser = top)]
    top: usize,
    /// Invert brightness first (auto: when the paper is lighter than the ink)
    #[arg(long, value_enum, default_value_t = Invert::Auto)]
    invert: Invert,
    /// Write the 28×28 image the model saw for each input as DIR/NAME.prepared.png
    #[arg(long, value_name = "DIR")]
    save_prepared: Option<PathBuf>,
}

pub fn run(a: PredictArgs) -> Result<()> {
    let (_, ckpt) = super::load_model(&a.model)?;
    let names = ckpt.dataset.class_names();
    let table = Normalize::table(ckpt.normalize);
    let style = Style::of(ckpt.dataset);
    ckpt.spec
        .fits("a prepared 28×28 image", PIXELS, SIDE, CLASSES)
        .map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let runner = Runner::of(&ckpt.spec, Choice::Auto).map_err(anyhow::Error::msg)?;
    if let Some(dir) = &a.save_prepared {
        std::fs::create_dir_all(dir).map_err(|e| anyhow!("--save-prepared {}: {e}", dir.display()))?;
    }
    let mut failed = 0;
    for image in &a.images {
        let prepared = match load_image(image).map(|g| prepare(&g, a.invert, style)) {
            Ok(Ok(p)) => p,
            Ok(Err(NoDigit(why))) => {
                say!("{}: no digit found ({why})", image.display());
                continue;
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                continue;
            }
        };
        if let Some(dir) = &a.save_prepared
            && let Err(e) = save(dir, image, &prepared)
        {
            eprintln!("error: {e:#}");
            failed += 1;
        }
        let x: Vec<f32> = prepared.pixels.iter().map(|&p| table[p as usize]).collect();
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
        let unsure = if probs[order[0]] < UNSURE {
            "  — unsure: no class reaches 50 %"
        } else {
            ""
        };
        say!("{}: {}{unsure}", image.display(), shown.join(", "));
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} images could not be read or saved (see above)",
            a.images.len()
        );
    }
    Ok(())
}

/// Writes `prepared` as `dir/<stem>.prepared.png`, atomically.
fn save(dir: &Path, image: &Path, prepared: &Prepared) -> Result<()> {
    let stem = image.file_stem().map_or("image".into(), |s| s.to_string_lossy());
    let path = dir.join(format!("{stem}.prepared.png"));
    let mut bytes = std::io::Cursor::new(Vec::new());
    prepared.image().write_to(&mut bytes, image::ImageFormat::Png)?;
    scratchnet::atomic::write_atomic(&path, bytes.get_ref())
        .map_err(|e| anyhow!("--save-prepared {}: {e:#}", path.display()))
}
