//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The folder holding real MNIST, found where the command line finds it
/// (`$SCRATCHNET_DATA_DIR/mnist`, else the user cache's `scratchnet/mnist`),
/// or `None` after saying the test is skipped. Such tests are also marked
/// ignored when the build found no data (`build.rs`), so that the summary
/// counts them. With `SCRATCHNET_REQUIRE_DATA=1` (as in CI) missing data
/// fails the test instead.
pub fn mnist_dir(test: &str) -> Option<PathBuf> {
    let dir = scratchnet::data::mnist::Dataset::Mnist.resolve_dir(None);
    let present = ["train-images", "train-labels", "t10k-images", "t10k-labels"]
        .iter()
        .all(|stem| {
            std::fs::read_dir(&dir)
                .map(|mut it| it.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with(stem))))
                .unwrap_or(false)
        });
    if present {
        return Some(dir);
    }
    let why = format!(
        "{test}: real MNIST not found in {} (set SCRATCHNET_DATA_DIR to a folder whose mnist/ holds the four \
         IDX files, or run `scratchnet download`)",
        dir.display()
    );
    if std::env::var("SCRATCHNET_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{why}, and SCRATCHNET_REQUIRE_DATA=1 requires it");
    }
    eprintln!("SKIPPED {why}");
    None
}

/// Runs the scratchnet binary with `args`.
pub fn scratchnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args(args)
        .output()
        .expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The value printed after `Test Accuracy: `.
pub fn test_accuracy(o: &Output) -> f64 {
    let out = stdout(o);
    let line = out
        .lines()
        .find(|l| l.starts_with("Test Accuracy: "))
        .unwrap_or_else(|| panic!("no Test Accuracy line in:\n{out}\n{}", stderr(o)));
    line["Test Accuracy: ".len()..].trim().parse().unwrap()
}
