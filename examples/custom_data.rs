//! Train on your own arrays: any number of features and classes. Here two
//! noisy clusters per class in 8 dimensions, learnt by a small MLP.
//!
//! cargo run --release --example custom_data

use scratchnet::prelude::*;

fn main() -> anyhow::Result<()> {
    let (classes, dim, per_class) = (3usize, 8usize, 200usize);
    // A small deterministic generator, so the example needs no other crate.
    let mut state = 42u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..classes * per_class {
        let class = i % classes;
        for d in 0..dim {
            let centre = if d % classes == class { 2.0 } else { 0.0 };
            x.push(centre + noise());
        }
        y.push(class as u8);
    }
    let n = y.len();
    let split = n * 4 / 5;
    let train = Samples {
        x: x[..split * dim].to_vec(),
        y: y[..split].to_vec(),
        dim,
    };
    let test = Samples {
        x: x[split * dim..].to_vec(),
        y: y[split..].to_vec(),
        dim,
    };

    let spec = ModelSpec::Mlp {
        input: dim,
        hidden: 16,
        classes,
        activation: Activation::Tanh,
    };
    let mut model = Model::new(spec, 1)?;
    Trainer::new(Settings::default().epochs(20).batch_size(16)).fit(&mut model, &train, None)?;
    println!("test accuracy {:.1} %", 100.0 * model.evaluate(&test).accuracy());
    let p = model.predict(test.row(0));
    println!(
        "first test sample: class {} (probabilities {:?})",
        p.class, p.probabilities
    );
    Ok(())
}
