//! What a saved model holds: its architecture, tensors and metadata.
//!
//! cargo run --release --example inspect_checkpoint -- runs/mlp256/model.safetensors

use scratchnet::checkpoint;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: inspect_checkpoint MODEL.safetensors"))?;
    let ckpt = checkpoint::load(path.as_ref())?;
    println!("{}: {}", path, ckpt.spec.describe());
    println!(
        "trained on {}, inputs normalised `{}`",
        ckpt.dataset.display_name(),
        ckpt.normalize.name()
    );
    for (tensor, range) in ckpt.spec.layout().ranges() {
        let values = &ckpt.params[range];
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        println!(
            "  {:<14} {:?}: mean {mean:+.4}, max |w| {max:.4}",
            tensor.name, tensor.shape
        );
    }
    if let Some(metrics) = &ckpt.metrics {
        println!("metrics: {metrics}");
    }
    Ok(())
}
