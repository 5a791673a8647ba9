//! Hostile input: impossible checkpoints, files that are not what they
//! claim, sizes past every limit, shared run folders, closed pipes. None of it
//! may panic (exit 101), abort (134), hang, or give a silent wrong answer.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{scratchnet, stderr, stdout};
use safetensors::{Dtype, tensor::TensorView};

/// A tensor's name, shape and values.
type Tensor = (&'static str, Vec<usize>, Vec<f32>);

/// A safetensors file with scratchnet's metadata around `model` (a JSON
/// spec, trusted as given) and the tensors `(name, shape, values)`.
fn checkpoint_bytes(model: &str, tensors: &[Tensor]) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            (
                name.to_string(),
                TensorView::new(Dtype::F32, shape.clone(), b).unwrap(),
            )
        })
        .collect();
    let meta = HashMap::from(
        [
            ("format", "scratchnet"),
            ("format_version", "1"),
            ("model", model),
            ("dataset", "mnist"),
            ("normalize", "standard"),
            ("normalize_mean", "0.1307"),
            ("normalize_std", "0.3081"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// The tensors of an MLP input→hidden→classes, filled with `value`.
fn mlp_tensors(input: usize, hidden: usize, classes: usize, value: f32) -> Vec<Tensor> {
    vec![
        ("hidden.weight", vec![hidden, input], vec![value; hidden * input]),
        ("hidden.bias", vec![hidden], vec![0.0; hidden]),
        (
            "output.weight",
            vec![classes, hidden],
            vec![value; classes * hidden],
        ),
        ("output.bias", vec![classes], vec![0.0; classes]),
    ]
}

fn mlp_json(input: usize, hidden: u64, classes: usize) -> String {
    format!(
        r#"{{"kind":"mlp","input":{input},"hidden":{hidden},"classes":{classes},"activation":"sigmoid"}}"#
    )
}

fn cnn_json(side: usize, kernel: usize, filters: usize, pool: bool, pool_size: usize) -> String {
    format!(
        r#"{{"kind":"cnn","side":{side},"kernel":{kernel},"filters":{filters},"conv_bias":false,"classes":10,"pool":{pool},"pool_size":{pool_size}}}"#
    )
}

fn cnn_tensors(filters: usize, kernel: usize, features: usize) -> Vec<Tensor> {
    vec![
        (
            "conv.weight",
            vec![filters, 1, kernel, kernel],
            vec![0.1; filters * kernel * kernel],
        ),
        ("fc.weight", vec![10, features], vec![0.1; 10 * features]),
        ("fc.bias", vec![10], vec![0.0; 10]),
    ]
}

fn load_error(bytes: &[u8]) -> String {
    let err = scratchnet::checkpoint::from_bytes(bytes).expect_err("refused");
    format!("{err:#}")
}

/// Specs whose tensors agree with them but which describe impossible models
/// are refused by the loader, naming the field.
#[test]
fn impossible_specs_in_checkpoints_are_refused_naming_the_field() {
    let cases: Vec<(String, Vec<Tensor>, &str)> = vec![
        (mlp_json(4, 3, 0), mlp_tensors(4, 3, 0, 0.1), "classes 0"),
        (mlp_json(4, 3, 1), mlp_tensors(4, 3, 1, 0.1), "classes 1"),
        (mlp_json(4, 0, 10), mlp_tensors(4, 0, 10, 0.1), "hidden 0"),
        (mlp_json(0, 3, 10), mlp_tensors(0, 3, 10, 0.1), "input 0"),
        (cnn_json(28, 7, 0, false, 2), cnn_tensors(0, 7, 0), "filters 0"),
        (cnn_json(28, 29, 1, false, 2), cnn_tensors(1, 29, 0), "kernel 29"),
        (cnn_json(28, 7, 1, true, 0), cnn_tensors(1, 7, 0), "pool-size 0"),
        (
            mlp_json(4, 1 << 62, 10),
            mlp_tensors(4, 1, 10, 0.1),
            "hidden 4611686018427387904",
        ),
    ];
    for (model, tensors, field) in cases {
        let err = load_error(&checkpoint_bytes(&model, &tensors));
        assert!(err.contains(field), "{model}: {err}");
    }
}

/// A small file whose metadata claims a huge model is refused before any
/// memory is asked for it; so is a CNN whose features per sample would make
/// evaluation ask for gigabytes.
#[test]
fn a_small_file_claiming_a_huge_model_is_refused_before_allocating() {
    let err = load_error(&checkpoint_bytes(
        &mlp_json(784, 100_000_000, 10),
        &mlp_tensors(784, 4, 10, 0.1),
    ));
    assert!(err.contains("hidden 100000000"), "{err}");
    let err = load_error(&checkpoint_bytes(
        &mlp_json(784, 1_000_000, 10),
        &mlp_tensors(784, 4, 10, 0.1),
    ));
    assert!(err.contains("parameters"), "{err}");
    let err = load_error(&checkpoint_bytes(
        &mlp_json(784, 100_000, 10),
        &mlp_tensors(784, 4, 10, 0.1),
    ));
    assert!(err.contains("holds only"), "{err}");
    let err = load_error(&checkpoint_bytes(
        &cnn_json(28, 7, 20_000, true, 22),
        &cnn_tensors(20_000, 7, 20_000),
    ));
    assert!(err.contains("features per sample"), "{err}");
}

/// Non-finite parameters are an error naming the tensor.
#[test]
fn non_finite_parameters_are_refused_naming_the_tensor() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut tensors = mlp_tensors(784, 3, 10, 0.1);
        tensors[2].2[5] = bad;
        let err = load_error(&checkpoint_bytes(&mlp_json(784, 3, 10), &tensors));
        assert!(
            err.contains("output.weight") && err.contains("non-finite"),
            "{err}"
        );
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Through the binary: an impossible checkpoint, a NaN model and a model
/// that does not fit 28×28 digits are errors (exit 1) naming the problem.
#[test]
fn predict_and_eval_refuse_bad_models_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("digit.png");
    image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([if (10..18).contains(&x) && y > 4 { 255 } else { 0 }])
    })
    .save(&png)
    .unwrap();
    let mut nan = mlp_tensors(784, 3, 10, 0.1);
    nan[0].2[0] = f32::NAN;
    let cases = [
        (
            checkpoint_bytes(&mlp_json(784, 3, 1000), &mlp_tensors(784, 3, 1000, 0.1)),
            "1000 classes",
        ),
        (checkpoint_bytes(&mlp_json(784, 3, 10), &nan), "non-finite"),
        (
            checkpoint_bytes(&mlp_json(4, 3, 10), &mlp_tensors(4, 3, 10, 0.1)),
            "reads 4 values",
        ),
        (
            checkpoint_bytes(&cnn_json(10, 3, 2, false, 2), &cnn_tensors(2, 3, 2 * 64)),
            "10×10 images",
        ),
        (
            checkpoint_bytes(&cnn_json(28, 7, 1, true, 0), &cnn_tensors(1, 7, 0)),
            "pool-size 0",
        ),
    ];
    for (i, (bytes, want)) in cases.iter().enumerate() {
        let model = write(dir.path(), &format!("m{i}.safetensors"), bytes);
        let o = scratchnet(&["predict", model.to_str().unwrap(), png.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{want}: {err}");
        assert!(err.contains(want), "{want}: {err}");
    }
}

/// Files that are not regular files, or far too large, are refused at once
/// (no hang on a FIFO, no reading /dev/zero until memory runs out).
#[test]
fn fifos_devices_and_huge_files_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "m.safetensors",
        &checkpoint_bytes(&mlp_json(784, 3, 10), &mlp_tensors(784, 3, 10, 0.1)),
    );
    let started = Instant::now();
    let o = scratchnet(&["predict", model.to_str().unwrap(), "/dev/zero"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));

    let fifo = dir.path().join("fifo.safetensors");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let o = scratchnet(&["eval", fifo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));

    // A sparse 3 GB "IDX file": refused by its size, not read.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        let f = std::fs::File::create(data.join(name)).unwrap();
        f.set_len(3 << 30).unwrap();
    }
    let o = scratchnet(&["data", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("larger than"), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Sizes past every limit are usage errors (exit 2) naming the limit, before any work.
#[test]
fn absurd_sizes_from_flags_are_refused_before_any_work() {
    let cases: [&[&str]; 9] = [
        &["train", "mlp", "--hidden", "10000000"],
        &["train", "mlp", "--hidden", "18446744073709551615"],
        &["train", "cnn", "--filters", "100000"],
        &["train", "mlp", "--epochs", "1000000000"],
        &["eval", "x", "--batch-size", "18446744073709551615"],
        &["download", "--timeout", "inf"],
        &["download", "--timeout", "1e20"],
        &["download", "--timeout", "nan"],
        &["download", "--timeout", "0"],
    ];
    for args in cases {
        let o = scratchnet(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("between") || err.contains("above 0"),
            "{args:?}: {err}"
        );
    }
    // A model within each flag's range but too large as a whole: also refused before any work.
    let o = scratchnet(&[
        "train",
        "mlp",
        "--hidden",
        "1000000",
        "--data-dir",
        "/nonexistent",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("parameters"), "{}", stderr(&o));
    // Too many threads are capped with a warning.
    let o = scratchnet(&["eval", "/nonexistent/model", "--threads", "10000"]);
    assert!(stderr(&o).contains("using"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// `train --out` on an unfinished run (one with a resume checkpoint) is refused
/// unless --overwrite, pointing at `train --resume`.
#[test]
fn an_unfinished_run_is_not_replaced_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("resume.safetensors"), b"checkpoint").unwrap();
    let o = scratchnet(&[
        "train",
        "mlp",
        "--out",
        run.to_str().unwrap(),
        "--data-dir",
        "/nonexistent",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("train --resume"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(run.join("resume.safetensors")).unwrap(),
        b"checkpoint"
    );
}

fn mnist(test: &str) -> Option<String> {
    common::mnist_dir(test).map(|d| d.to_str().unwrap().to_string())
}

fn train_args<'a>(data: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "mlp",
        "--hidden",
        "16",
        "--epochs",
        epochs,
        "--data-dir",
        data,
        "--threads",
        "1",
        "--out",
        out,
    ]
}

/// Two `train` processes on one folder: one of them is refused, and the
/// folder holds one run's files, consistent with each other.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_run_folder_has_one_writer() {
    let Some(data) = mnist("a_run_folder_has_one_writer") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let spawn = |seed: &str| {
        let mut args = train_args(&data, out_s, "3");
        args.extend(["--seed", seed]);
        Command::new(env!("CARGO_BIN_EXE_scratchnet"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("1"), spawn("2"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one run succeeds:\n{}\n{}", stderr(&a), stderr(&b));
    let refused = if a.status.success() { &b } else { &a };
    let err = stderr(refused);
    assert!(err.contains("in use") || err.contains("already holds"), "{err}");
    // The config and the model are of the same run.
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    let model = scratchnet::checkpoint::load(&out.join("model.safetensors")).unwrap();
    let saved: serde_json::Value = serde_json::from_str(model.config.as_deref().unwrap()).unwrap();
    let on_disk: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(saved["settings"]["seed"], on_disk["settings"]["seed"]);
}

/// A failed write of the run's files stops training at once with advice;
/// nothing is left half-written.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_failed_write_stops_training_at_the_first_epoch() {
    let Some(data) = mnist("a_failed_write_stops_training_at_the_first_epoch") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir_all(out.join("history.csv")).unwrap();
    let o = scratchnet(&train_args(&data, out.to_str().unwrap(), "20"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("training stopped after epoch 1") && err.contains("Free space"),
        "{err}"
    );
    assert_eq!(stdout(&o).matches("Epoch ").count(), 1, "{}", stdout(&o));
    assert!(!out.join("model.safetensors").exists());
}

/// A closed standard output is the end of the output, not of the run.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_closed_stdout_does_not_stop_training() {
    let Some(data) = mnist("a_closed_stdout_does_not_stop_training") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args(train_args(&data, out.to_str().unwrap(), "3"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe's reader is gone.
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
    assert!(out.join("model.safetensors").is_file());
}

/// Paths that are not UTF-8 work end to end.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_non_utf8_output_path_works() {
    use std::os::unix::ffi::OsStrExt;
    let Some(data) = mnist("a_non_utf8_output_path_works") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(std::ffi::OsStr::from_bytes(b"run-\xff"));
    let o = Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args([
            "train",
            "mlp",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--data-dir",
            &data,
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("model.safetensors").is_file());
}

/// Runs `train` until it is interrupted after its first epoch; returns the run folder.
fn interrupted_run(data: &str, root: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = root.join(name);
    let mut args = train_args(data, out.to_str().unwrap(), "4");
    args.extend(extra);
    let child = Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("resume.safetensors").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    assert!(out.join("resume.safetensors").exists(), "{}", stderr(&o));
    out
}

/// A hand-edited config.json or resume state is checked exactly as the command line is.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_tampered_run_folder_is_refused_on_resume() {
    let Some(data) = mnist("a_tampered_run_folder_is_refused_on_resume") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = interrupted_run(&data, dir.path(), "run", &[]);
    let config_path = run.join("config.json");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let edits: [(&str, &str, &str); 7] = [
        ("\"batch_size\": 128", "\"batch_size\": 0", "--batch-size 0"),
        ("\"epochs\": 4", "\"epochs\": 0", "--epochs 0"),
        ("\"lr\": 0.01", "\"lr\": -1.0", "--lr -1"),
        ("\"dropout\": 0.0", "\"dropout\": 2.0", "--dropout 2"),
        ("\"shift\": 0", "\"shift\": 99", "--shift 99"),
        ("\"step_size\": 30", "\"step_size\": 0", "--step-size 0"),
        (
            "\"normalize\": \"symmetric\"",
            "\"normalize\": \"unit\"",
            "normalised",
        ),
    ];
    for (from, to, want) in edits {
        assert!(original.contains(from), "{from} in {original}");
        std::fs::write(&config_path, original.replacen(from, to, 1)).unwrap();
        let o = scratchnet(&["train", "--resume", run.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{to}: {err}");
        assert!(err.contains(want), "{to}: {err}");
    }
    // The epochs reduced below the position: the position is past the run's last epoch.
    std::fs::write(
        &config_path,
        original.replacen("\"epochs\": 4", "\"epochs\": 1", 1),
    )
    .unwrap();
    let o = scratchnet(&["train", "--resume", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("epoch"), "{}", stderr(&o));
    // Restored, it resumes and finishes.
    std::fs::write(&config_path, &original).unwrap();
    let o = scratchnet(&["train", "--resume", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A run trained with --skip-checksum on modified data can be resumed with it.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_run_on_modified_data_resumes_with_skip_checksum() {
    let Some(data) = mnist("a_run_on_modified_data_resumes_with_skip_checksum") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("data");
    std::fs::create_dir(&copy).unwrap();
    // A copy of the four files with one pixel of the training images changed
    // (written decompressed, as `train-images-idx3-ubyte`).
    for e in std::fs::read_dir(&data).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.contains("ubyte") {
            continue;
        }
        let mut bytes = std::fs::read(e.path()).unwrap();
        if name.starts_with("train-images") {
            if name.ends_with(".gz") {
                let mut raw = Vec::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut raw)
                    .unwrap();
                bytes = raw;
            }
            bytes[1000] ^= 1;
            std::fs::write(copy.join("train-images-idx3-ubyte"), bytes).unwrap();
        } else {
            std::fs::write(copy.join(&name), bytes).unwrap();
        }
    }
    let copy = copy.to_str().unwrap().to_string();
    let run = interrupted_run(&copy, dir.path(), "run", &["--skip-checksum"]);
    let o = scratchnet(&["train", "--resume", run.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "without the flag the checksum is checked"
    );
    let o = scratchnet(&["train", "--resume", run.to_str().unwrap(), "--skip-checksum"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A sweep killed during a run continues that run from its checkpoint, and
/// repeated seeds or values run once.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn sweeps_resume_killed_runs_and_run_repeated_values_once() {
    let Some(data) = mnist("sweeps_resume_killed_runs_and_run_repeated_values_once") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let args = [
        "sweep",
        "mlp",
        "--hidden",
        "16,16",
        "--seeds",
        "0,0",
        "--epochs",
        "4",
        "--threads",
        "1",
        "--data-dir",
        &data,
        "--out",
        out.to_str().unwrap(),
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = out.join("h16-s0");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !run.join("resume.safetensors").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait_with_output();
    let before = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let first = before.lines().nth(1).unwrap().to_string();
    let o = scratchnet(&args);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("--hidden lists 16 more than once") && err.contains("--seeds lists 0"),
        "{err}"
    );
    assert!(stdout(&o).contains("sweep of 1 runs"), "{}", stdout(&o));
    // The first epoch's line, its seconds included, is the killed run's: it was resumed, not retrained.
    let after = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(after.lines().nth(1).unwrap(), first);
    assert_eq!(after.lines().count(), 5);
}

/// Sizes at and past every edge, for the generated inputs below.
const EDGES: [&str; 16] = [
    "0",
    "1",
    "2",
    "3",
    "7",
    "10",
    "28",
    "29",
    "40",
    "1000",
    "65537",
    "1048577",
    "4294967296",
    "4611686018427387904",
    "18446744073709551615",
    "18446744073709551616",
];

/// A small deterministic generator for the generated inputs.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next() % xs.len()]
    }
}

/// The loader on structurally valid safetensors files with generated specs:
/// tensors that match the spec when it is small, others when it is not. It
/// answers Ok or an error, never a panic or an abort.
#[test]
fn the_loader_never_panics_on_generated_specs() {
    let mut g = Lcg(7);
    for _ in 0..400 {
        let n = |g: &mut Lcg| EDGES[g.next() % 11].parse::<usize>().unwrap();
        let (model, tensors) = if g.next().is_multiple_of(2) {
            let (i, h, c) = (n(&mut g), n(&mut g), n(&mut g));
            let small = i * h + c * h < 1 << 20;
            let hidden = if g.next().is_multiple_of(4) {
                EDGES[g.next() % EDGES.len()].to_string()
            } else {
                h.to_string()
            };
            let json = format!(
                r#"{{"kind":"mlp","input":{i},"hidden":{hidden},"classes":{c},"activation":"relu"}}"#
            );
            (
                json,
                if small {
                    mlp_tensors(i, h, c, 0.5)
                } else {
                    mlp_tensors(3, 2, 10, 0.5)
                },
            )
        } else {
            let (side, k, f, p) = (n(&mut g), n(&mut g), n(&mut g) % 70, n(&mut g));
            let pool = g.next().is_multiple_of(2);
            let json = cnn_json(side, k, f, pool, p);
            let os = (side + 1).saturating_sub(k);
            let feat = if pool && p > 0 {
                f * (os / p) * (os / p)
            } else {
                f * os * os
            };
            let small = f * k * k + 10 * feat < 1 << 20;
            (
                json,
                if small {
                    cnn_tensors(f, k, feat)
                } else {
                    cnn_tensors(1, 3, 4)
                },
            )
        };
        let bytes = checkpoint_bytes(&model, &tensors);
        let r =
            std::panic::catch_unwind(|| scratchnet::checkpoint::from_bytes(&bytes).map(|c| c.params.len()));
        assert!(r.is_ok(), "{model}: the loader panicked");
    }
}

/// The command line with generated values for every sizing flag: each run
/// ends with exit 0, 1 or 2, never a panic (101) or an abort (134).
#[test]
fn the_command_line_never_panics_on_generated_values() {
    let flags = [
        ("mlp", "--hidden"),
        ("mlp", "--epochs"),
        ("mlp", "--batch-size"),
        ("mlp", "--lr"),
        ("mlp", "--dropout"),
        ("cnn", "--shift"),
        ("mlp", "--validation"),
        ("mlp", "--threads"),
        ("mlp", "--init-std"),
        ("cnn", "--kernel"),
        ("cnn", "--filters"),
        ("cnn", "--pool-size"),
        ("cnn", "--step-size"),
        ("cnn", "--warmup-epochs"),
    ];
    let extra = ["-1", "nan", "inf", "-inf", "1e40", "0.5", "", "x"];
    let mut g = Lcg(11);
    for _ in 0..120 {
        let (model, flag) = flags[g.next() % flags.len()];
        let value = if g.next().is_multiple_of(3) {
            g.pick(&extra)
        } else {
            g.pick(&EDGES)
        };
        let mut args = vec![
            "train",
            model,
            flag,
            value,
            "--data-dir",
            "/nonexistent",
            "--out",
            "/nonexistent/run",
        ];
        if model == "cnn" {
            args.push("--pool");
        }
        let o = scratchnet(&args);
        let code = o.status.code();
        assert!(matches!(code, Some(0..=2)), "{args:?}: {code:?}\n{}", stderr(&o));
    }
    for value in EDGES.iter().chain(&extra) {
        for args in [
            vec!["eval", "/nonexistent", "--batch-size", value],
            vec![
                "download",
                "--timeout",
                value,
                "--data-dir",
                "/nonexistent/d",
                "--mirror",
                "http://127.0.0.1:9/",
            ],
            vec!["gradcheck", "cnn", "--side", value],
            vec!["gradcheck", "mlp", "--hidden", value],
        ] {
            let o = scratchnet(&args);
            let code = o.status.code();
            assert!(matches!(code, Some(0..=2)), "{args:?}: {code:?}\n{}", stderr(&o));
        }
    }
}

/// Resuming from generated edits of config.json and of the resume state
/// ends with exit 0, 1 or 2, never a panic or an abort.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn resuming_never_panics_on_generated_run_folders() {
    let Some(data) = mnist("resuming_never_panics_on_generated_run_folders") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pristine = interrupted_run(&data, dir.path(), "pristine", &[]);
    let config = std::fs::read_to_string(pristine.join("config.json")).unwrap();
    let resume = scratchnet::checkpoint::load(&pristine.join("resume.safetensors")).unwrap();
    let state = resume.resume.clone().unwrap();
    // Every number in a JSON text, by byte range.
    let numbers = |s: &str| -> Vec<(usize, usize)> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'e' || b[i] == b'-') {
                    i += 1;
                }
                out.push((start, i));
            }
            i += 1;
        }
        out
    };
    let replacements = [
        "0",
        "1",
        "-1",
        "1e300",
        "18446744073709551615",
        "99999999999",
        "0.5",
        "null",
        "\"x\"",
    ];
    let mut g = Lcg(5);
    for round in 0..30 {
        let run = dir.path().join(format!("r{round}"));
        std::fs::create_dir(&run).unwrap();
        let (mut cfg, mut st) = (config.clone(), state.clone());
        let target = if g.next().is_multiple_of(2) {
            &mut cfg
        } else {
            &mut st
        };
        let spots = numbers(target);
        let (a, b) = spots[g.next() % spots.len()];
        target.replace_range(a..b, g.pick(&replacements));
        std::fs::write(run.join("config.json"), &cfg).unwrap();
        std::fs::copy(pristine.join("history.csv"), run.join("history.csv")).unwrap();
        let ckpt = scratchnet::checkpoint::Checkpoint {
            resume: Some(st.clone()),
            ..resume.clone()
        };
        scratchnet::checkpoint::save(&run.join("resume.safetensors"), &ckpt).unwrap();
        let o = scratchnet(&["train", "--resume", run.to_str().unwrap()]);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "round {round}: {code:?}\n{cfg}\n{st}\n{}",
            stderr(&o)
        );
    }
}
