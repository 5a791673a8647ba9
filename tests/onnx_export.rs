//! `scratchnet export --format onnx`, checked by onnxruntime: for an MLP of
//! each activation and a CNN with bias and pooling, onnxruntime's logits on
//! the whole MNIST test set match scratchnet's to 1e-5 and give exactly its
//! test accuracy; `onnx.checker` accepts every file. Where PyTorch is
//! installed beside onnxruntime, the checkpoint loaded with
//! `load_state_dict` (docs/guide.md) is checked the same way.
//!
//! Needs MNIST and `SCRATCHNET_ONNX_PYTHON`, a Python with onnx and
//! onnxruntime (`.ci/run` makes one in `.ci/venv`).

mod common;

use std::path::Path;

use common::{scratchnet, stderr, stdout};
use scratchnet::data::batches::Samples;
use scratchnet::data::mnist::{Dataset, Split, Verify, load_split};
use scratchnet::kernels::Choice;
use scratchnet::train::Runner;

fn write_f32(path: &Path, v: &[f32]) {
    std::fs::write(path, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

/// Trains `args`, exports it with `export_flags`, runs check.py; returns its JSON.
fn check(mnist: &Path, dir: &Path, name: &str, args: &[&str], export_flags: &[&str]) -> serde_json::Value {
    let run = dir.join(name);
    if !run.join("model.safetensors").exists() {
        let mut train = vec!["train"];
        train.extend(args);
        train.extend([
            "--epochs",
            "1",
            "--data-dir",
            mnist.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ]);
        let o = scratchnet(&train);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    }
    let onnx = dir.join(format!("{name}{}.onnx", export_flags.join("")));
    let mut export = vec![
        "export",
        run.to_str().unwrap(),
        "--format",
        "onnx",
        "--out",
        onnx.to_str().unwrap(),
    ];
    export.extend(export_flags);
    let o = scratchnet(&export);
    assert!(o.status.success(), "{}", stderr(&o));

    let ckpt = scratchnet::checkpoint::load(&run.join("model.safetensors")).unwrap();
    let raw = load_split(mnist, Dataset::Mnist, Split::Test, Verify::Skip).unwrap();
    let test = Samples::from_raw(&raw, ckpt.normalize);
    let n = test.len();
    let runner = Runner::of(&ckpt.spec, Choice::Auto).unwrap();
    let logits = runner.logits(&ckpt.params, &test.x, n);
    let raw_pixels = export_flags.contains(&"--raw-pixels");
    let inputs: Vec<f32> = if raw_pixels {
        raw.pixels.iter().map(|&p| p as f32).collect()
    } else {
        test.x.clone()
    };
    write_f32(&dir.join("inputs.f32"), &inputs);
    let want: Vec<f32> = if export_flags.contains(&"--softmax") {
        let mut p = vec![0.0; logits.len()];
        scratchnet::layers::softmax_ce::softmax(&logits, 10, &mut p);
        p
    } else {
        logits
    };
    write_f32(&dir.join("logits.f32"), &want);
    std::fs::write(dir.join("labels.u8"), &test.y).unwrap();
    let spec = dir.join("spec.json");
    std::fs::write(&spec, serde_json::to_string(&ckpt.spec).unwrap()).unwrap();
    let shape = match ckpt.spec {
        scratchnet::models::ModelSpec::Mlp { .. } => "784",
        scratchnet::models::ModelSpec::Cnn { .. } => "1,28,28",
    };
    let python = std::env::var_os("SCRATCHNET_ONNX_PYTHON").expect("SCRATCHNET_ONNX_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/check.py");
    let o = std::process::Command::new(python)
        .arg(script)
        .arg(&onnx)
        .arg(dir.join("inputs.f32"))
        .arg(n.to_string())
        .arg(shape)
        .arg(dir.join("logits.f32"))
        .arg(dir.join("labels.u8"))
        // PyTorch's load_state_dict path takes normalised inputs and gives logits.
        .args(
            export_flags
                .is_empty()
                .then(|| [run.join("model.safetensors"), spec.clone()])
                .into_iter()
                .flatten(),
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "check.py failed:\n{}", stderr(&o));
    let result: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    eprintln!(
        "{name} {export_flags:?}: onnxruntime's largest difference {:.2e}, {} correct",
        result["max_difference"].as_f64().unwrap_or(f64::NAN),
        result["correct"]
    );
    // Exactly scratchnet's test accuracy, and the logits to 1e-5.
    let o = scratchnet(&[
        "eval",
        run.to_str().unwrap(),
        "--data-dir",
        mnist.to_str().unwrap(),
    ]);
    let accuracy = common::test_accuracy(&o);
    let correct = result["correct"].as_u64().unwrap() as f64;
    assert_eq!(
        format!("{:.4}", correct / n as f64),
        format!("{accuracy:.4}"),
        "{name}: {result}"
    );
    assert!(
        result["max_difference"].as_f64().unwrap() <= 1e-5,
        "{name}: {result}"
    );
    assert_eq!(result["opset"], 13, "{result}");
    let expected_output = if export_flags.contains(&"--softmax") {
        "probabilities"
    } else {
        "logits"
    };
    assert_eq!(
        (result["input"].as_str(), result["output"].as_str()),
        (Some("input"), Some(expected_output))
    );
    if export_flags.is_empty() && result["torch"]["available"] == true {
        eprintln!(
            "{name}: PyTorch's largest difference {}",
            result["torch"]["max_difference"]
        );
        assert!(
            result["torch"]["max_difference"].as_f64().unwrap() <= 1e-5,
            "{name} (torch): {result}"
        );
        assert_eq!(
            result["torch"]["correct"], result["correct"],
            "{name} (torch): {result}"
        );
    } else if export_flags.is_empty() {
        eprintln!("{name}: PyTorch not installed beside onnxruntime, its load_state_dict check skipped");
    }
    result
}

#[test]
#[cfg_attr(
    not(all(mnist_data, onnx_python)),
    ignore = "needs MNIST and SCRATCHNET_ONNX_PYTHON (a Python with onnx and onnxruntime; .ci/run makes one)"
)]
fn onnxruntime_reproduces_every_exported_model() {
    let Some(mnist) = common::mnist_dir("onnxruntime_reproduces_every_exported_model") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (activation, init) in [("sigmoid", "xavier"), ("relu", "he"), ("tanh", "xavier")] {
        let mlp = [
            "mlp",
            "--hidden",
            "32",
            "--activation",
            activation,
            "--init",
            init,
            "--normalize",
            "standard",
            "--loss-reduction",
            "mean",
            "--lr",
            "0.1",
        ];
        let result = check(&mnist, dir.path(), &format!("mlp-{activation}"), &mlp, &[]);
        let meta = &result["metadata"];
        assert_eq!(meta["normalize"], "standard", "{result}");
        assert!(
            meta["metrics"].as_str().unwrap().contains("test_accuracy"),
            "{result}"
        );
        assert!(meta["model"].as_str().unwrap().contains(activation), "{result}");
    }
    let cnn = [
        "cnn",
        "--kernel",
        "5",
        "--filters",
        "4",
        "--conv-bias",
        "--pool",
        "--pool-size",
        "2",
    ];
    check(&mnist, dir.path(), "cnn", &cnn, &[]);
    // The normalisation folded into the graph, and a softmax at its end.
    check(&mnist, dir.path(), "cnn", &cnn, &["--raw-pixels"]);
    check(
        &mnist,
        dir.path(),
        "mlp-relu",
        &[],
        &["--raw-pixels", "--softmax"],
    );
}

/// Exporting something that is not a model is a clear error, and nothing is written.
#[test]
fn malformed_models_are_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.safetensors");
    std::fs::write(&bogus, b"not a checkpoint").unwrap();
    let out = dir.path().join("out.onnx");
    let o = scratchnet(&["export", bogus.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bogus.safetensors"), "{}", stderr(&o));
    assert!(!out.exists());
    let o = scratchnet(&[
        "export",
        bogus.to_str().unwrap(),
        "--format",
        "tflite",
        "--out",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
