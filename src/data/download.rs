//! Downloading a dataset's four files from a list of mirrors.
//!
//! Each file is streamed into a temporary file in the target folder, its
//! decompressed content is checked against the official SHA-256, and only then
//! is it renamed to its final name. A failed, partial or corrupt download never
//! appears under the final name; the next mirror is tried instead.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::idx::parse_idx;
use super::mnist::{Dataset, FileKind, Verify, locate, read_checked};

/// Environment variable with comma-separated mirror URLs (overrides the defaults).
pub const MIRRORS_ENV: &str = "SCRATCHNET_MIRRORS";
/// Largest response accepted for one file (the largest gzip file is 26 MB).
const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// How to download.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// URL prefixes tried in order; the file name is appended.
    pub mirrors: Vec<String>,
    /// Limit for connecting and for each read.
    pub timeout: Duration,
    /// Limit for the whole download of one file from one mirror (a mirror
    /// that sends a trickle is given up after it).
    pub deadline: Duration,
    /// Download even when a valid file is present.
    pub force: bool,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    AlreadyValid(PathBuf),
    Downloaded { path: PathBuf, url: String },
}

/// Makes sure `dir` holds valid copies of all four files of `dataset`,
/// downloading what is missing or invalid. `log` receives one line per event.
pub fn download_dataset(
    dataset: Dataset,
    dir: &Path,
    opts: &DownloadOptions,
    mut log: impl FnMut(&str),
) -> Result<Vec<Outcome>> {
    if opts.mirrors.is_empty() {
        bail!("no mirror to download from (the --mirror list is empty)");
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the data folder", dir.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(opts.timeout))
        .timeout_recv_response(Some(opts.timeout))
        .timeout_per_read(Some(opts.timeout))
        .timeout_global(Some(opts.deadline))
        .build()
        .into();
    let mut outcomes = Vec::new();
    for kind in FileKind::ALL {
        if !opts.force
            && let Some(existing) = locate(dir, kind)
        {
            match read_checked(&existing, dataset, kind, Verify::Checksum) {
                Ok(_) => {
                    log(&format!("{}: present and valid", existing.display()));
                    outcomes.push(Outcome::AlreadyValid(existing));
                    continue;
                }
                Err(e) => log(&format!("{e}\n  downloading it again")),
            }
        }
        let (path, url) = download_file(&agent, dataset, kind, dir, opts, &mut log)?;
        outcomes.push(Outcome::Downloaded { path, url });
    }
    Ok(outcomes)
}

/// Tries each mirror in turn for one file; returns the final path and the URL used.
fn download_file(
    agent: &ureq::Agent,
    dataset: Dataset,
    kind: FileKind,
    dir: &Path,
    opts: &DownloadOptions,
    log: &mut impl FnMut(&str),
) -> Result<(PathBuf, String)> {
    let name = kind.gz_name();
    let target = dir.join(&name);
    let mut failures: Vec<String> = Vec::new();
    for mirror in &opts.mirrors {
        let url = join_url(mirror, &name);
        match fetch_verified(agent, &url, dataset, kind, dir, opts) {
            Ok(tmp) => {
                crate::atomic::readable_by_all(tmp.as_file()).with_context(|| {
                    format!("{}: cannot set the download's permissions", target.display())
                })?;
                tmp.persist(&target).map_err(|e| e.error).with_context(|| {
                    format!("{}: cannot rename the download into place", target.display())
                })?;
                remove_stale_parts(dir);
                for f in &failures {
                    log(&format!("{} (skipped: failed)", f.trim_start()));
                }
                log(&format!(
                    "{}: downloaded from {url}, checksum OK",
                    target.display()
                ));
                return Ok((target, url));
            }
            Err(e) => failures.push(format!("  {url}: {e:#}")),
        }
    }
    let names: Vec<String> = FileKind::ALL.iter().map(|k| k.gz_name()).collect();
    bail!(
        "could not download {} {} ({name}) from any mirror:\n{}\n\
         Nothing was written under {}.\n\
         Without internet access, either:\n\
         \x20 - pass --mirror URL for a server that has the files (repeatable),\n\
         \x20 - copy the four files ({}; gzipped or not) into {}, or\n\
         \x20 - point --data-dir at a folder that already holds them.",
        dataset.display_name(),
        kind.describe(),
        failures.join("\n"),
        target.display(),
        names.join(", "),
        dir.display()
    )
}

/// Prefix and suffix of the temporary files downloads are written to.
const PART_PREFIX: &str = ".download-";
const PART_SUFFIX: &str = ".part";

/// Removes the temporary files of downloads that were killed part-way (not
/// touched for ten minutes, so that a download in progress elsewhere keeps its own).
fn remove_stale_parts(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        if name.starts_with(PART_PREFIX) && name.ends_with(PART_SUFFIX) && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn join_url(mirror: &str, name: &str) -> String {
    if mirror.ends_with('/') {
        format!("{mirror}{name}")
    } else {
        format!("{mirror}/{name}")
    }
}

/// Downloads `url` into a temporary file in `dir` and verifies it. The
/// temporary file is deleted when dropped, so an error leaves nothing behind.
fn fetch_verified(
    agent: &ureq::Agent,
    url: &str,
    dataset: Dataset,
    kind: FileKind,
    dir: &Path,
    opts: &DownloadOptions,
) -> Result<tempfile::NamedTempFile> {
    let started = std::time::Instant::now();
    let mut response = agent.get(url).call()?;
    let length = response.body().content_length();
    let bar = if opts.progress {
        let bar = indicatif::ProgressBar::with_draw_target(length, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(kind.gz_name());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(PART_PREFIX)
        .suffix(PART_SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .reader();
    let mut buf = vec![0u8; 64 << 10];
    let mut bytes = Vec::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("download failed after {} bytes", bytes.len()))
                );
            }
        };
        if started.elapsed() > opts.deadline {
            bail!(
                "gave up after {} s with {} bytes (the --deadline for one file)",
                opts.deadline.as_secs(),
                bytes.len()
            );
        }
        tmp.write_all(&buf[..n])
            .context("cannot write the temporary file")?;
        bytes.extend_from_slice(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    let array =
        parse_idx(&bytes, true).map_err(|p| anyhow::anyhow!("the downloaded file is unusable: {p}"))?;
    let expected = dataset.sha256(kind);
    if array.sha256 != expected {
        bail!(
            "checksum mismatch: the decompressed download has SHA-256 {}, the official {} {} have {expected}",
            array.sha256,
            dataset.display_name(),
            kind.describe()
        );
    }
    tmp.as_file()
        .sync_all()
        .context("cannot flush the temporary file")?;
    Ok(tmp)
}
