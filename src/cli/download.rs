//! `scratchnet download`: fetch and verify a dataset.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use scratchnet::data::download::{DownloadOptions, Outcome, download_dataset};

use super::DataArgs;
use super::output::say;
use super::validate::seconds;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true, mut_arg("download", |a| a.hide(true)))]
pub struct DownloadArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Seconds allowed for connecting and for each read before a mirror is given up
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS", value_parser = seconds)]
    timeout: f64,
    /// Seconds allowed for the whole download of one file from one mirror
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS", value_parser = seconds)]
    deadline: f64,
    /// Download again even when valid files are present
    #[arg(long)]
    force: bool,
}

pub fn run(a: DownloadArgs) -> Result<()> {
    fetch(
        &a.data,
        Duration::from_secs_f64(a.timeout),
        Duration::from_secs_f64(a.deadline),
        a.force,
    )
}

/// Downloads `data`'s dataset into its folder (used by `--download` too).
pub fn fetch(data: &DataArgs, timeout: Duration, deadline: Duration, force: bool) -> Result<()> {
    let dir = data.dir();
    let opts = DownloadOptions {
        mirrors: data.mirrors(),
        timeout,
        deadline,
        force,
        progress: std::io::stderr().is_terminal(),
    };
    say!("{} into {}", data.dataset().display_name(), dir.display());
    let outcomes = download_dataset(data.dataset(), &dir, &opts, |line| say!("{line}"))?;
    let fetched = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Downloaded { .. }))
        .count();
    say!(
        "{} files ready in {} ({fetched} downloaded, {} already valid)",
        outcomes.len(),
        dir.display(),
        outcomes.len() - fetched
    );
    Ok(())
}
