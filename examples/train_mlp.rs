//! Load MNIST, train a one-hidden-layer network, evaluate it, save it.
//!
//! cargo run --release --example train_mlp -- [MNIST_DIR] [OUT.safetensors]
//! MNIST_DIR holds the four files (default: ~/.cache/scratchnet/mnist, where
//! `scratchnet download` puts them).

use scratchnet::data::mnist::Dataset;
use scratchnet::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map_or_else(|| Dataset::Mnist.resolve_dir(None), Into::into);
    let out = args.next().unwrap_or_else(|| "mlp.safetensors".into());

    let (train, test) = load_mnist(&dir, Normalize::Standard)?;
    let spec = ModelSpec::Mlp {
        input: 784,
        hidden: 256,
        classes: 10,
        activation: Activation::Relu,
    };
    let mut model = Model::new(spec, 0)?;
    let settings = Settings::default().epochs(5).lr(0.1).batch_size(128);
    for epoch in Trainer::new(settings).fit(&mut model, &train, Some(&test))? {
        println!(
            "epoch {}: train loss {:.4}, test accuracy {:.4}",
            epoch.epoch, epoch.train_loss, epoch.test_accuracy
        );
    }
    let result = model.evaluate(&test);
    println!(
        "test accuracy {:.2} %, loss {:.4}",
        100.0 * result.accuracy(),
        result.loss
    );
    model.save(out.as_ref())?;
    println!("saved {out}");
    Ok(())
}
