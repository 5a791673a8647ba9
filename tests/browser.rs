//! The page of `scratchnet serve` in a real headless browser (Debian's
//! Chromium driven by playwright-core, `tests/browser/e2e.mjs`): digits drawn
//! with mouse strokes on `#pad` and read back from `#prediction` for an MLP
//! and a CNN, the Inside view, a confusion-matrix cell clicked and its
//! gallery shown, a curve growing while a run trains into the served folder,
//! and no console error. Runs when `SCRATCHNET_CHROMIUM` names the browser
//! and `npm install` has run in `tests/browser` (`.ci/run` does both);
//! `SCRATCHNET_SCREENSHOTS=DIR` keeps a screenshot of each view.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
#[cfg_attr(
    not(all(browser, mnist_data)),
    ignore = "needs MNIST, SCRATCHNET_CHROMIUM and `npm install` in tests/browser (see .ci/run)"
)]
fn the_page_draws_classifies_explains_and_follows_training_in_chromium() {
    let Some(_) = common::mnist_dir("the_page_draws_classifies_explains_and_follows_training_in_chromium")
    else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let train = |args: &[&str]| {
        let out = common::scratchnet(args);
        assert!(out.status.success(), "{}", common::stderr(&out));
    };
    let mlp = dir.join("mlp");
    let cnn = dir.join("cnn");
    train(&["train", "mlp", "--epochs", "3", "--out", mlp.to_str().unwrap()]);
    train(&[
        "train",
        "cnn",
        "--filters",
        "8",
        "--pool",
        "--epochs",
        "2",
        "--out",
        cnn.to_str().unwrap(),
    ]);

    let mut serve = Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .arg("serve")
        .arg(dir)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("Open ") {
            break rest.split(' ').next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let out = Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/e2e.mjs"))
        .arg(&url)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
        .env("SCRATCHNET_BIN", env!("CARGO_BIN_EXE_scratchnet"))
        .env("LIVE_RUN_DIR", dir.join("live"))
        .env("MODELS", "mlp,cnn")
        .env("EXPECT_CORRECT", "3")
        .env(
            "CHROMIUM",
            std::env::var_os("SCRATCHNET_CHROMIUM").unwrap_or_default(),
        )
        .env(
            "SCREENSHOTS",
            std::env::var_os("SCRATCHNET_SCREENSHOTS").unwrap_or_default(),
        )
        .output()
        .expect("node runs");
    let _ = serve.kill();
    let _ = serve.wait();
    let report = format!("{}{}", common::stdout(&out), common::stderr(&out));
    println!("{report}");
    assert!(out.status.success(), "the browser checks failed:\n{report}");
    assert!(report.contains("all browser checks passed"));
}
