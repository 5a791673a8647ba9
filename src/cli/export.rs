//! `scratchnet export MODEL --format onnx --out FILE.onnx`: a trained model
//! as an ONNX graph (`scratchnet::export`).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use scratchnet::export::{OnnxOptions, output_name, write_onnx};

use super::output::say;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX, opset 13: runs in onnxruntime, OpenCV, ONNX.js, and converts to most frameworks
    Onnx,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A run folder (holding model.safetensors) or a .safetensors file
    #[arg(value_name = "RUN_OR_MODEL")]
    model: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Onnx)]
    format: Format,
    /// The file to write
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Append a softmax: the output is `probabilities` instead of `logits`
    #[arg(long)]
    softmax: bool,
    /// Take pixels 0–255 as input: the graph normalises them as the model was trained
    #[arg(long)]
    raw_pixels: bool,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let (path, ckpt) = super::load_model(&a.model)?;
    let options = OnnxOptions {
        softmax: a.softmax,
        raw_pixels: a.raw_pixels,
    };
    match a.format {
        Format::Onnx => write_onnx(&ckpt, options, &a.out)
            .map_err(|e| anyhow!("{}: cannot export to {}: {e:#}", path.display(), a.out.display()))?,
    }
    let input = match ckpt.spec {
        scratchnet::models::ModelSpec::Mlp { input, .. } => format!("[N, {input}]"),
        scratchnet::models::ModelSpec::Cnn { side, .. } => format!("[N, 1, {side}, {side}]"),
    };
    say!(
        "Wrote {} ({}): input `input` {input} {}, output `{}` [N, {}]",
        a.out.display(),
        ckpt.spec.describe(),
        if a.raw_pixels {
            "of pixels 0–255".to_string()
        } else {
            format!("normalised `{}`", ckpt.normalize.name())
        },
        output_name(options),
        ckpt.spec.classes()
    );
    Ok(())
}
