//! Sets `cfg(mnist_data)` when real MNIST is where the command line looks for
//! it (`$SCRATCHNET_DATA_DIR/mnist`, else the user cache's `scratchnet/mnist`),
//! or when `SCRATCHNET_REQUIRE_DATA=1` asks for it: the tests that need the
//! data are otherwise marked ignored, so that the test summary counts them.
//! Sets `cfg(onnx_python)` when `SCRATCHNET_ONNX_PYTHON` names a Python with
//! onnx and onnxruntime, for the export tests. Sets `cfg(browser)` when
//! `SCRATCHNET_CHROMIUM` names a browser and `tests/browser/node_modules`
//! holds playwright-core (`.ci/run` installs both), for the page's tests.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mnist_data)");
    println!("cargo::rustc-check-cfg=cfg(onnx_python)");
    println!("cargo::rustc-check-cfg=cfg(browser)");
    println!("cargo::rerun-if-env-changed=SCRATCHNET_CHROMIUM");
    println!("cargo::rerun-if-changed=tests/browser/node_modules");
    if std::env::var_os("SCRATCHNET_CHROMIUM").is_some_and(|p| Path::new(&p).is_file())
        && Path::new("tests/browser/node_modules/playwright-core/package.json").is_file()
    {
        println!("cargo::rustc-cfg=browser");
    }
    println!("cargo::rerun-if-env-changed=SCRATCHNET_ONNX_PYTHON");
    // A Python with onnx and onnxruntime for the export tests (`.ci/run` makes one).
    if std::env::var_os("SCRATCHNET_ONNX_PYTHON").is_some_and(|p| Path::new(&p).is_file()) {
        println!("cargo::rustc-cfg=onnx_python");
    }
    println!("cargo::rerun-if-env-changed=SCRATCHNET_DATA_DIR");
    println!("cargo::rerun-if-env-changed=SCRATCHNET_REQUIRE_DATA");
    println!("cargo::rerun-if-changed=build.rs");
    let root = match std::env::var_os("SCRATCHNET_DATA_DIR") {
        Some(r) if !r.is_empty() => PathBuf::from(r),
        _ => dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("scratchnet"),
    };
    let dir = root.join("mnist");
    // Rerun when the folder (or, while it is missing, its nearest parent) changes.
    let watched = dir.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    println!("cargo::rerun-if-changed={}", watched.display());
    let required = std::env::var("SCRATCHNET_REQUIRE_DATA").is_ok_and(|v| v == "1");
    if required || has_mnist(&dir) {
        println!("cargo::rustc-cfg=mnist_data");
    }
}

/// Whether `dir` holds a file for each of the four MNIST stems.
fn has_mnist(dir: &Path) -> bool {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ["train-images", "train-labels", "t10k-images", "t10k-labels"]
        .iter()
        .all(|stem| names.iter().any(|n| n.starts_with(stem)))
}
