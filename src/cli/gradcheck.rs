//! `scratchnet gradcheck mlp`: back-propagation against finite differences (f64).

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use scratchnet::gradcheck::{TOLERANCE, check_network};
use scratchnet::init::Init;
use scratchnet::layers::softmax_ce::Reduction;
use scratchnet::models::Mlp;

#[derive(Subcommand, Debug)]
pub enum GradcheckCommand {
    /// Check the MLP on small random shapes
    Mlp(MlpCheck),
}

#[derive(Args, Debug)]
pub struct MlpCheck {
    /// Input features
    #[arg(long, default_value_t = 12)]
    input: usize,
    /// Hidden units
    #[arg(long, default_value_t = 7)]
    hidden: usize,
    /// Batch size
    #[arg(long, default_value_t = 5)]
    batch: usize,
    /// Seed of the random point
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(c: GradcheckCommand) -> Result<()> {
    let GradcheckCommand::Mlp(a) = c;
    if a.input == 0 || a.hidden == 0 || a.batch == 0 {
        bail!("--input, --hidden and --batch must be at least 1");
    }
    let net = Mlp {
        input: a.input,
        hidden: a.hidden,
        classes: 10,
        init: Init::Xavier,
        init_std: 0.0,
    };
    println!(
        "MLP {}-{}-10, batch {}, f64, central differences; pass if max relative error < {TOLERANCE:e}",
        a.input, a.hidden, a.batch
    );
    let mut failed = false;
    for reduction in [Reduction::Sum, Reduction::Mean] {
        println!("loss reduction {}:", reduction.name());
        for (name, err) in check_network(&net, a.batch, reduction, a.seed) {
            let ok = err < TOLERANCE;
            failed |= !ok;
            println!(
                "  {name:<14} max relative error {err:.3e}  {}",
                if ok { "ok" } else { "FAIL" }
            );
        }
    }
    if failed {
        bail!("gradient check failed");
    }
    println!("all gradients match");
    Ok(())
}
