//! Interrupted, diverging and killed runs; bad output folders.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{scratchnet, stderr, stdout};

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (bounded) until `history.csv` in `run` has at least `epochs` lines of epochs.
fn wait_for_epochs(run: &Path, epochs: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let lines = std::fs::read_to_string(run.join("history.csv"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines > epochs {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no progress in {}", run.display());
}

fn params(path: &Path) -> Vec<f32> {
    scratchnet::checkpoint::load(path).unwrap().params
}

/// The history without the seconds column.
fn history(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn interrupted_runs_resume_bit_identically() {
    let Some(mnist) = common::mnist_dir("interrupted_runs_resume_bit_identically") else {
        return;
    };
    let data = mnist.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| dir.path().join(name);
    // SIGINT with the report's SGD; SIGTERM with Adam, a cosine schedule,
    // dropout and random shifts, whose moments, step count, masks and moves
    // must survive the interruption too.
    let cases: [(&str, &[&str]); 2] = [
        ("-INT", &[]),
        (
            "-TERM",
            &[
                "--optimizer",
                "adam",
                "--lr",
                "0.001",
                "--schedule",
                "cosine",
                "--dropout",
                "0.3",
                "--shift",
                "1",
            ],
        ),
    ];
    for (sig, extra) in cases {
        let args = |out: &Path| {
            [
                "train",
                "mlp",
                "--hidden",
                "48",
                "--epochs",
                "8",
                "--data-dir",
                data,
                "--threads",
                "2",
            ]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .chain(["--out".to_string(), out.to_str().unwrap().to_string()])
            .collect::<Vec<_>>()
        };
        let reference = run(&format!("reference{sig}"));
        let a = args(&reference);
        let o = scratchnet(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));

        let out = run(sig.trim_start_matches('-'));
        let a = args(&out);
        let child = spawn(&a.iter().map(String::as_str).collect::<Vec<_>>());
        wait_for_epochs(&out, 2);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(130), "{sig}: {err}");
        assert!(err.contains("scratchnet train --resume"), "{err}");
        assert!(out.join("resume.safetensors").is_file());
        assert!(!out.join("model.safetensors").exists());

        let o = scratchnet(&["train", "--resume", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("Resuming at epoch"), "{}", stdout(&o));
        assert!(!out.join("resume.safetensors").exists());
        assert_eq!(
            params(&out.join("model.safetensors")),
            params(&reference.join("model.safetensors")),
            "{sig}"
        );
        assert_eq!(history(&out), history(&reference), "{sig}");
    }
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_diverging_run_stops_with_advice_and_keeps_its_files() {
    let Some(mnist) = common::mnist_dir("a_diverging_run_stops_with_advice_and_keeps_its_files") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = scratchnet(&[
        "train",
        "mlp",
        "--lr",
        "3e38",
        "--epochs",
        "2",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("diverged") && err.contains("epoch 1, batch") && err.contains("try --lr 3e37"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.join("config.json").is_file());
    assert!(!out.join("model.safetensors").exists());
}

#[test]
fn an_output_folder_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("run");
    let o = scratchnet(&["train", "mlp", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot create the run folder") && err.contains("a-file"),
        "{err}"
    );
}

#[test]
fn resume_of_a_folder_without_a_run_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = scratchnet(&["train", "--resume", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
    let o = scratchnet(&["train"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Killing a run at arbitrary moments (SIGKILL: no chance to clean up) never
/// leaves a half-written file under a final name.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn killed_writers_leave_only_complete_files() {
    let Some(mnist) = common::mnist_dir("killed_writers_leave_only_complete_files") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, delay_ms) in [700u64, 900, 1100, 1300, 1500].iter().enumerate() {
        let out = dir.path().join(format!("run{i}"));
        let child = spawn(&[
            "train",
            "cnn",
            "--filters",
            "16",
            "--epochs",
            "20",
            "--data-dir",
            mnist.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        std::thread::sleep(Duration::from_millis(*delay_ms));
        signal(&child, "-KILL");
        child.wait_with_output().unwrap();
        if let Ok(text) = std::fs::read_to_string(out.join("config.json")) {
            serde_json::from_str::<serde_json::Value>(&text).expect("config.json complete");
        }
        if out.join("history.csv").exists() {
            scratchnet::run::read_history(&out.join("history.csv")).expect("history.csv complete");
        }
        if out.join("resume.safetensors").exists() {
            scratchnet::checkpoint::load(&out.join("resume.safetensors"))
                .expect("resume checkpoint complete");
        }
    }
}

/// A learning rate so large that the loss explodes without becoming infinite
/// stops the run with the same advice as a NaN.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn an_exploding_loss_stops_the_run_with_advice() {
    let Some(mnist) = common::mnist_dir("an_exploding_loss_stops_the_run_with_advice") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = scratchnet(&[
        "train",
        "mlp",
        "--hidden",
        "32",
        "--epochs",
        "3",
        "--lr",
        "100",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("diverged") && err.contains("try --lr 1e1"), "{err}");
    assert!(!out.join("model.safetensors").exists());
}
