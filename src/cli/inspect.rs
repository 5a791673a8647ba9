//! `scratchnet inspect MODEL --out DIR`: a trained model's weights as
//! pictures (PNG and SVG): the hidden units' input weights as 28×28 tiles and
//! the output layer, or the filters and the output weights per class.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;
use scratchnet::pictures::weight_tiles;
use scratchnet::plot::save_picture;

use super::output::say;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A run folder (holding model.safetensors) or a .safetensors file
    #[arg(value_name = "RUN_OR_MODEL")]
    model: PathBuf,
    /// Folder to write the pictures into (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let (path, ckpt) = super::load_model(&a.model)?;
    std::fs::create_dir_all(&a.out).map_err(|e| anyhow!("--out {}: {e}", a.out.display()))?;
    say!("model: {} ({})", ckpt.spec.describe(), path.display());
    for (stem, tiles) in weight_tiles(&ckpt.spec, &ckpt.params) {
        save_picture(&a.out, stem, &tiles).map_err(|e| anyhow!("--out {}: {e:#}", a.out.display()))?;
        say!("Wrote {} and .svg", a.out.join(format!("{stem}.png")).display());
    }
    Ok(())
}
