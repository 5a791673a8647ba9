//! `scratchnet serve PATH`: the local web page of a model, a run or a folder
//! of runs (`scratchnet::serve`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use clap::Args;
use scratchnet::data::mnist::Verify;
use scratchnet::serve::{DataSource, Root, Server, State};

use super::output::say;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A model file, a run folder, or a folder of runs (a sweep, a reproduction, runs/)
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Port to listen on (0: any free port)
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Address to listen on; anything but 127.0.0.1 or localhost lets other machines in
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Folder holding the test set's IDX files for the Mistakes view (default: $SCRATCHNET_DATA_DIR/<dataset>, else the user cache)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Accept test files whose content differs from the official checksums
    #[arg(long)]
    skip_checksum: bool,
    /// Threads answering requests
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
}

static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(a: ServeArgs) -> Result<()> {
    let root = Root::new(&a.path)?;
    let local = matches!(a.host.as_str(), "127.0.0.1" | "localhost" | "::1");
    if !local {
        eprintln!(
            "warning: --host {}: the page and its API will answer other machines too (it has no password)",
            a.host
        );
    }
    let verify = if a.skip_checksum {
        Verify::Skip
    } else {
        Verify::Checksum
    };
    let state = State::new(
        root,
        DataSource {
            dir: a.data_dir,
            verify,
        },
    );
    let runs = state.root.scan();
    let models = runs.iter().filter(|e| e.model.is_some()).count();
    let server = Server::bind(&a.host, a.port, state)?;
    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst))
        .map_err(|e| anyhow::anyhow!("cannot install the interrupt handler: {e}"))?;
    say!(
        "Serving {} ({} run{}, {} with a model)",
        a.path.display(),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        models
    );
    say!("Open {} (Ctrl-C stops)", server.url());
    server.run(a.workers as usize, &STOP);
    say!("stopped");
    Ok(())
}
