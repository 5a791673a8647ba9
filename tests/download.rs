//! `scratchnet download` against a small HTTP server started by the test on
//! 127.0.0.1, serving good, corrupt, truncated, HTML, missing and slow files.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use scratchnet::data::download::{DownloadOptions, Outcome, download_dataset};
use scratchnet::data::mnist::{Dataset, FileKind};

/// Starts the server; returns its base URL. Routes: `/good/`, `/corrupt/`
/// (valid gzip, one pixel changed), `/truncated/` (first half of the gzip),
/// `/html/` (an error page with status 200), `/missing/` (404), `/slow/`
/// (answers after 5 s). The server thread lives until the test process ends.
fn serve(mnist: &Path) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let mnist = mnist.to_path_buf();
    std::thread::spawn(move || {
        for rq in server.incoming_requests() {
            let mnist = mnist.clone();
            std::thread::spawn(move || {
                let url = rq.url().to_string();
                let (route, name) = url.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
                let good = std::fs::read(mnist.join(name)).ok();
                let response = match (route, good) {
                    ("missing", _) | (_, None) => {
                        tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404)
                    }
                    ("good", Some(g)) => tiny_http::Response::from_data(g),
                    ("corrupt", Some(g)) => tiny_http::Response::from_data(corrupt(&g)),
                    ("truncated", Some(g)) => tiny_http::Response::from_data(g[..g.len() / 2].to_vec()),
                    ("html", _) => tiny_http::Response::from_data(
                        b"<!DOCTYPE html><html><body>Service unavailable</body></html>".to_vec(),
                    ),
                    ("slow", Some(g)) => {
                        std::thread::sleep(Duration::from_secs(5));
                        tiny_http::Response::from_data(g)
                    }
                    _ => tiny_http::Response::from_data(Vec::new()).with_status_code(500),
                };
                let _ = rq.respond(response);
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// A server on 127.0.0.1 that answers every request at once with headers
/// for a 1 MB body, then sends two bytes every 50 ms: never silent long
/// enough for a per-read time-out, far too slow to finish. Each connection
/// ends after 10 s. Returns its base URL.
fn serve_drip() -> String {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16).flatten() {
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut stream = stream;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
                for _ in 0..200 {
                    if stream.write_all(&[0x1f, 0x8b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}/drip")
}

/// The same file with the last data byte changed, re-compressed.
fn corrupt(gz: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x55;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&raw).unwrap();
    enc.finish().unwrap()
}

fn options(base: &str, routes: &[&str]) -> DownloadOptions {
    DownloadOptions {
        mirrors: routes.iter().map(|r| format!("{base}/{r}/")).collect(),
        timeout: Duration::from_secs(1),
        deadline: Duration::from_secs(20),
        force: false,
        progress: false,
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn bad_mirrors_are_skipped_and_nothing_partial_is_left() {
    let Some(mnist) = common::mnist_dir("bad_mirrors_are_skipped_and_nothing_partial_is_left") else {
        return;
    };
    let base = serve(&mnist);
    let target = tempfile::tempdir().unwrap();
    let opts = options(
        &base,
        &["missing", "corrupt", "truncated", "html", "slow", "good"],
    );
    let mut log = Vec::new();
    let outcomes =
        download_dataset(Dataset::Mnist, target.path(), &opts, |l| log.push(l.to_string())).unwrap();
    let log = log.join("\n");
    assert!(log.contains("404"), "{log}");
    assert!(log.contains("checksum mismatch"), "{log}");
    assert!(
        log.contains("gzip stream is corrupt") || log.contains("truncated"),
        "{log}"
    );
    assert!(log.contains("HTML page"), "{log}");
    assert!(
        log.to_lowercase().contains("timeout") || log.to_lowercase().contains("timed out"),
        "{log}"
    );
    for o in &outcomes {
        assert!(
            matches!(o, Outcome::Downloaded { url, .. } if url.contains("/good/")),
            "{o:?}"
        );
    }
    let mut files = leftovers(target.path());
    files.sort();
    let mut want: Vec<String> = FileKind::ALL.iter().map(|k| k.gz_name()).collect();
    want.sort();
    assert_eq!(files, want, "only the four verified files remain");

    // A second run finds them valid; --force fetches them again.
    let again = download_dataset(Dataset::Mnist, target.path(), &options(&base, &["good"]), |_| {}).unwrap();
    assert!(again.iter().all(|o| matches!(o, Outcome::AlreadyValid(_))));
    let forced = DownloadOptions {
        force: true,
        ..options(&base, &["good"])
    };
    let again = download_dataset(Dataset::Mnist, target.path(), &forced, |_| {}).unwrap();
    assert!(again.iter().all(|o| matches!(o, Outcome::Downloaded { .. })));
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn when_every_mirror_fails_no_file_is_written() {
    let Some(mnist) = common::mnist_dir("when_every_mirror_fails_no_file_is_written") else {
        return;
    };
    let base = serve(&mnist);
    let target = tempfile::tempdir().unwrap();
    let opts = options(&base, &["corrupt", "truncated", "missing"]);
    let err = download_dataset(Dataset::Mnist, target.path(), &opts, |_| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("could not download") && msg.contains("train-images-idx3-ubyte.gz"),
        "{msg}"
    );
    assert!(msg.contains("/corrupt/") && msg.contains("/missing/"), "{msg}");
    assert!(
        leftovers(target.path()).is_empty(),
        "{:?}",
        leftovers(target.path())
    );
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn an_invalid_existing_file_is_replaced() {
    let Some(mnist) = common::mnist_dir("an_invalid_existing_file_is_replaced") else {
        return;
    };
    let base = serve(&mnist);
    let target = tempfile::tempdir().unwrap();
    std::fs::write(
        target.path().join("t10k-labels-idx1-ubyte.gz"),
        b"<html>oops</html>",
    )
    .unwrap();
    let mut log = Vec::new();
    download_dataset(Dataset::Mnist, target.path(), &options(&base, &["good"]), |l| {
        log.push(l.to_string())
    })
    .unwrap();
    let log = log.join("\n");
    assert!(
        log.contains("t10k-labels-idx1-ubyte.gz") && log.contains("not gzip"),
        "{log}"
    );
    let fixed = std::fs::read(target.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(
        fixed,
        std::fs::read(mnist.join("t10k-labels-idx1-ubyte.gz")).unwrap()
    );
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn cli_downloads_with_mirror_flags_and_environment() {
    let Some(mnist) = common::mnist_dir("cli_downloads_with_mirror_flags_and_environment") else {
        return;
    };
    let base = serve(&mnist);
    let target = tempfile::tempdir().unwrap();
    let dir = target.path().to_str().unwrap();
    let missing = format!("{base}/missing/");
    let good = format!("{base}/good/");
    let o = common::scratchnet(&[
        "download",
        "--data-dir",
        dir,
        "--mirror",
        &missing,
        "--mirror",
        &good,
        "--timeout",
        "2",
    ]);
    assert!(o.status.success(), "{}{}", common::stdout(&o), common::stderr(&o));
    let out = common::stdout(&o);
    assert!(
        out.contains("4 files ready") && out.contains("4 downloaded"),
        "{out}"
    );

    // The environment variable names the mirrors when no flag does.
    let target2 = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args([
            "download",
            "--data-dir",
            target2.path().to_str().unwrap(),
            "--timeout",
            "2",
        ])
        .env("SCRATCHNET_MIRRORS", format!("{missing},{good}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stdout(&o).contains("4 downloaded"));

    // Every mirror failing: exit code 1 and a message naming the file.
    let target3 = tempfile::tempdir().unwrap();
    let o = common::scratchnet(&[
        "download",
        "--data-dir",
        target3.path().to_str().unwrap(),
        "--mirror",
        &missing,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("could not download"),
        "{}",
        common::stderr(&o)
    );
}

/// A mirror that drips is given up at the deadline; downloaded files are
/// readable by everyone (0644); stale temporary files of killed downloads
/// are removed by a later success.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn deadlines_permissions_and_stale_parts() {
    use std::os::unix::fs::PermissionsExt;
    let Some(mnist) = common::mnist_dir("deadlines_permissions_and_stale_parts") else {
        return;
    };
    let base = serve(&mnist);
    let target = tempfile::tempdir().unwrap();
    let stale = target.path().join(".download-killed.part");
    let f = std::fs::File::create(&stale).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(f);
    let drip = serve_drip();
    let opts = DownloadOptions {
        deadline: Duration::from_secs(2),
        mirrors: vec![format!("{drip}/"), format!("{base}/good/")],
        ..options(&base, &[])
    };
    let started = std::time::Instant::now();
    let mut log = Vec::new();
    download_dataset(Dataset::Mnist, target.path(), &opts, |l| log.push(l.to_string())).unwrap();
    let log = log.join("\n");
    assert!(log.contains("/drip/"), "{log}");
    assert!(
        log.to_lowercase().contains("timeout") || log.contains("deadline"),
        "{log}"
    );
    // Four files, each given up on the drip after about 2 s.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    assert!(!stale.exists(), "the stale temporary file is removed");
    for kind in FileKind::ALL {
        let mode = std::fs::metadata(target.path().join(kind.gz_name()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{}", kind.gz_name());
    }
}

/// Offline: every mirror refuses. The failures are printed once (in the
/// error, not also on stdout) and the error says what to do without internet.
#[test]
fn offline_downloads_say_what_to_do() {
    // A port that was free a moment ago: connections to it are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = tempfile::tempdir().unwrap();
    let dir = target.path().join("mnist");
    let o = common::scratchnet(&[
        "train",
        "mlp",
        "--download",
        "--data-dir",
        dir.to_str().unwrap(),
        "--mirror",
        &format!("http://127.0.0.1:{port}/a/"),
        "--mirror",
        &format!("http://127.0.0.1:{port}/b/"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = (common::stdout(&o), common::stderr(&o));
    assert!(!out.contains("127.0.0.1"), "failures repeated on stdout:\n{out}");
    assert_eq!(err.matches(&format!("127.0.0.1:{port}/a/")).count(), 1, "{err}");
    for want in [
        "Without internet access",
        "--mirror URL",
        "t10k-labels-idx1-ubyte.gz",
        "--data-dir",
    ] {
        assert!(err.contains(want), "{want} missing in:\n{err}");
    }
    assert!(err.contains(&format!("into {}", dir.display())), "{err}");
}
