//! `scratchnet gradcheck mlp`: back-propagation against finite differences (f64).

use super::output::say;
use super::validate::{gradcheck_size, unit_interval};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use scratchnet::gradcheck::{TOLERANCE, check_network_with_dropout};
use scratchnet::init::Init;
use scratchnet::layers::softmax_ce::Reduction;
use scratchnet::models::{Activation, Cnn, Mlp, Network};

#[derive(Subcommand, Debug)]
pub enum GradcheckCommand {
    /// Check the MLP on small random shapes
    Mlp(MlpCheck),
    /// Check the CNN on small random shapes
    Cnn(CnnCheck),
}

#[derive(Args, Debug)]
pub struct CnnCheck {
    /// Image side
    #[arg(long, default_value_t = 8, value_parser = gradcheck_size)]
    side: usize,
    /// Kernel side
    #[arg(long, default_value_t = 3, value_parser = gradcheck_size)]
    kernel: usize,
    /// Filters
    #[arg(long, default_value_t = 2, value_parser = gradcheck_size)]
    filters: usize,
    /// Give the convolution a bias
    #[arg(long)]
    conv_bias: bool,
    /// Max-pooling after the ReLU
    #[arg(long)]
    pool: bool,
    /// Window and stride P of --pool
    #[arg(long, default_value_t = 2, value_parser = gradcheck_size)]
    pool_size: usize,
    /// Batch size
    #[arg(long, default_value_t = 4, value_parser = gradcheck_size)]
    batch: usize,
    /// Dropout rate on the output layer's input (masks fixed by the seed)
    #[arg(long, default_value_t = 0.0, value_parser = unit_interval)]
    dropout: f32,
    /// Seed of the random point
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Debug)]
pub struct MlpCheck {
    /// Input features
    #[arg(long, default_value_t = 12, value_parser = gradcheck_size)]
    input: usize,
    /// Hidden units
    #[arg(long, default_value_t = 7, value_parser = gradcheck_size)]
    hidden: usize,
    /// Batch size
    #[arg(long, default_value_t = 5, value_parser = gradcheck_size)]
    batch: usize,
    /// Hidden activation
    #[arg(long, value_enum, default_value_t = Activation::Sigmoid)]
    activation: Activation,
    /// Dropout rate on the output layer's input (masks fixed by the seed)
    #[arg(long, default_value_t = 0.0, value_parser = unit_interval)]
    dropout: f32,
    /// Seed of the random point
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(c: GradcheckCommand) -> Result<()> {
    match c {
        GradcheckCommand::Mlp(a) => {
            if a.input == 0 || a.hidden == 0 || a.batch == 0 {
                bail!("--input, --hidden and --batch must be at least 1");
            }
            let net = Mlp {
                input: a.input,
                hidden: a.hidden,
                classes: 10,
                activation: a.activation,
                init: Init::Xavier,
                init_std: 0.0,
            };
            say!(
                "MLP {}-{}-10 ({} hidden layer), batch {}, dropout {}",
                a.input,
                a.hidden,
                a.activation.name(),
                a.batch,
                a.dropout
            );
            report(&net, a.batch, a.seed, a.dropout)
        }
        GradcheckCommand::Cnn(a) => {
            if a.kernel == 0 || a.kernel > a.side || a.filters == 0 || a.batch == 0 {
                bail!("need 1 ≤ --kernel ≤ --side, and --filters, --batch at least 1");
            }
            let net = Cnn::new(a.side, a.kernel, a.filters, a.conv_bias, 10)
                .with_pool(a.pool.then_some(a.pool_size));
            if a.pool && a.pool_size > a.side + 1 - a.kernel {
                bail!(
                    "--pool-size {} is larger than the {}×{} feature map",
                    a.pool_size,
                    a.side + 1 - a.kernel,
                    a.side + 1 - a.kernel
                );
            }
            say!(
                "CNN {}×{} input, {} filters {}×{}{}{}, batch {}, dropout {}",
                a.side,
                a.side,
                a.filters,
                a.kernel,
                a.kernel,
                if a.conv_bias { " with bias" } else { "" },
                if a.pool {
                    format!(", max-pool {}×{}", a.pool_size, a.pool_size)
                } else {
                    String::new()
                },
                a.batch,
                a.dropout
            );
            report(&net, a.batch, a.seed, a.dropout)
        }
    }
}

/// Prints the max relative error per tensor for both reductions; fails if any is too large.
fn report<N: Network<f64>>(net: &N, batch: usize, seed: u64, dropout: f32) -> Result<()> {
    say!("f64, central differences; pass if max relative error < {TOLERANCE:e}");
    let mut failed = false;
    for reduction in [Reduction::Sum, Reduction::Mean] {
        say!("loss reduction {}:", reduction.name());
        for (name, err) in check_network_with_dropout(net, batch, reduction, seed, dropout) {
            let ok = err < TOLERANCE;
            failed |= !ok;
            say!(
                "  {name:<14} max relative error {err:.3e}  {}",
                if ok { "ok" } else { "FAIL" }
            );
        }
    }
    if failed {
        bail!("gradient check failed");
    }
    say!("all gradients match");
    Ok(())
}
