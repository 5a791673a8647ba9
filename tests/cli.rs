//! The command line as a user meets it: help, usage errors, missing data,
//! gradient check, and training → run folder → eval on real MNIST.

mod common;

use common::{scratchnet, stderr, stdout, test_accuracy};

#[test]
fn help_shows_the_report_defaults() {
    let o = scratchnet(&["train", "mlp", "--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for want in [
        "[default: 256]",
        "[default: 100]",
        "[default: 0.01]",
        "[default: 128]",
        "[default: sum]",
        "[default: symmetric]",
    ] {
        assert!(help.contains(want), "missing {want} in:\n{help}");
    }
}

/// What a newcomer reads in the help and the errors: `--preset` is listed,
/// `download` offers no `--download`, a negative value reaches the validator
/// (which names the range), and `--top 0` is refused.
#[test]
fn help_and_errors_say_what_is_accepted() {
    for args in [
        &["train", "mlp", "--help"][..],
        &["train", "cnn", "--help"],
        &["sweep", "mlp", "--help"],
    ] {
        let help = stdout(&scratchnet(args));
        assert!(
            help.contains("--preset <NAME>") && help.contains("best-mlp"),
            "{args:?}:\n{help}"
        );
    }
    let help = stdout(&scratchnet(&["download", "--help"]));
    assert!(!help.contains("--download"), "{help}");
    for (args, want) in [
        (
            &["train", "mlp", "--lr", "-1"][..],
            "must be a positive finite number, got -1",
        ),
        (&["download", "--timeout", "-5"], "above 0"),
        (&["predict", "m", "i.png", "--top", "0"], "between 1 and 10"),
    ] {
        let o = scratchnet(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn bad_values_are_usage_errors_before_any_work() {
    for args in [
        &["train", "mlp", "--hidden", "0"][..],
        &["train", "mlp", "--lr", "-1"],
        &["train", "mlp", "--lr", "inf"],
        &["train", "mlp", "--batch-size", "0"],
        &["train", "mlp", "--epochs", "0"],
        &["train", "mlp", "--normalize", "fancy"],
        &["train", "nonsense"],
        &["train", "cnn", "--kernel", "29"],
        &["train", "cnn", "--kernel", "0"],
        &["train", "cnn", "--filters", "0"],
        &["train", "cnn", "--lr", "nan"],
    ] {
        let o = scratchnet(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error"), "{args:?}");
    }
}

#[test]
fn a_pooling_window_larger_than_the_feature_map_is_refused_before_any_work() {
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    for args in [
        &["train", "cnn", "--kernel", "7", "--pool", "--pool-size", "23"][..],
        &["sweep", "cnn", "--kernel", "3,11", "--pool", "--pool-size", "19"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--out", run.to_str().unwrap()]);
        let o = scratchnet(&args);
        // A usage error: the flags together describe a model that cannot exist.
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("does not fit the"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!run.exists(), "{args:?}");
    }
}

#[test]
fn missing_data_says_how_to_get_it() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = scratchnet(&[
        "train",
        "mlp",
        "--data-dir",
        empty.path().to_str().unwrap(),
        "--out",
        out.path().join("run").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("not found") && err.contains("scratchnet download") && err.contains("--data-dir"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn gradcheck_passes() {
    for (args, tensors) in [
        (
            &["gradcheck", "mlp"][..],
            &["hidden.weight", "hidden.bias", "output.weight", "output.bias"][..],
        ),
        (
            &["gradcheck", "cnn", "--conv-bias"],
            &["conv.weight", "conv.bias", "fc.weight", "fc.bias"],
        ),
        (
            &["gradcheck", "mlp", "--activation", "relu", "--dropout", "0.5"],
            &["hidden.weight", "dropout 0.5", "relu hidden layer"],
        ),
        (
            &[
                "gradcheck",
                "cnn",
                "--conv-bias",
                "--pool",
                "--pool-size",
                "3",
                "--dropout",
                "0.3",
            ],
            &["conv.bias", "max-pool 3×3", "dropout 0.3"],
        ),
    ] {
        let o = scratchnet(args);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        for t in tensors {
            assert!(out.contains(t), "{out}");
        }
        assert!(out.contains("all gradients match"));
    }
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn cnn_trains_to_88_percent_in_one_epoch_and_eval_reproduces_it() {
    let Some(mnist) = common::mnist_dir("cnn_trains_to_88_percent_in_one_epoch_and_eval_reproduces_it")
    else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("cnn");
    let (run_s, data) = (run.to_str().unwrap(), mnist.to_str().unwrap());
    let o = scratchnet(&[
        "train",
        "cnn",
        "--kernel",
        "7",
        "--filters",
        "1",
        "--epochs",
        "1",
        "--data-dir",
        data,
        "--out",
        run_s,
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Epoch 1/1, Train Loss: "), "{out}");
    // The header is the resolved configuration; the epoch line carries the
    // test loss and accuracy after the report's fields.
    for want in [
        "model:     cnn 1×7×7 conv",
        "— 4,899 parameters",
        "training:  1 epoch, batch 128, lr 0.04, loss mean, seed 0",
        "optimiser: sgd, weight decay 0; schedule constant; dropout 0",
        "validation none",
        "machine:   ",
    ] {
        assert!(out.contains(want), "{want:?} missing in:\n{out}");
    }
    let epoch = out.lines().find(|l| l.starts_with("Epoch 1/1")).unwrap();
    // The run's figure is titled with its settings and result, and shows the test loss.
    let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
    for want in [
        "lr 0.04, batch 128, sgd",
        "test accuracy",
        "after 1 epoch",
        "Loss",
    ] {
        assert!(svg.contains(want), "curves.svg lacks {want:?}");
    }
    let trained = test_accuracy(&o);
    assert!(
        epoch.contains(&format!("Test Accuracy: {trained:.4} (")),
        "{epoch}"
    );
    assert!(epoch.contains("Test Loss: 0."), "{epoch}");
    assert!(trained >= 0.88, "test accuracy {trained}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["settings"]["reduction"], "mean");
    assert_eq!(config["model"]["kind"], "cnn");
    let ckpt = scratchnet::checkpoint::load(&run.join("model.safetensors")).unwrap();
    assert_eq!(ckpt.params.len(), 49 + 10 * 22 * 22 + 10);
    let o = scratchnet(&[
        "eval",
        run.join("model.safetensors").to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(test_accuracy(&o), trained);
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn mlp_trains_to_95_percent_in_two_epochs_and_eval_reproduces_it() {
    let Some(mnist) = common::mnist_dir("mlp_trains_to_95_percent_in_two_epochs_and_eval_reproduces_it")
    else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("mlp");
    let run_s = run.to_str().unwrap();
    let data = mnist.to_str().unwrap();
    // Standardised inputs: the report's preset (unit inputs, N(0, 0.01²)) starts on a
    // plateau and needs a third epoch to pass 95 %.
    let args = [
        "train",
        "mlp",
        "--hidden",
        "256",
        "--epochs",
        "2",
        "--normalize",
        "standard",
        "--data-dir",
        data,
        "--out",
        run_s,
    ];
    let o = scratchnet(&args);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("The number of training data: 60000"), "{out}");
    assert!(out.contains("The number of testing data: 10000"), "{out}");
    assert!(out.contains("Epoch 1/2, Train Loss: "), "{out}");
    assert!(out.contains("Epoch 2/2, Train Loss: "), "{out}");
    let trained = test_accuracy(&o);
    assert!(trained >= 0.95, "test accuracy {trained}");

    // The run folder.
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");
    assert!(history.starts_with("epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds"));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["normalize"], "standard");
    assert_eq!(config["checkpoint_every"], 1, "kept for --resume");
    assert_eq!(config["settings"]["reduction"], "sum");
    assert_eq!(config["model"]["hidden"], 256);
    let ckpt = scratchnet::checkpoint::load(&run.join("model.safetensors")).unwrap();
    assert_eq!(ckpt.params.len(), 256 * 784 + 256 + 10 * 256 + 10);

    // Save → load → eval gives exactly the accuracy printed at the end of training.
    let o = scratchnet(&["eval", run_s, "--data-dir", data]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(test_accuracy(&o), trained);
    let out = stdout(&o);
    assert!(
        out.contains("per-class accuracy") && out.contains("confusion matrix"),
        "{out}"
    );
    // The count and its 95 % Wilson interval, which holds the accuracy.
    let k = (trained * 10_000.0).round() as usize;
    let count = format!(
        "{},{:03} / 10,000 correct; 95 % interval (Wilson score) ",
        k / 1000,
        k % 1000
    );
    let line = out
        .lines()
        .find(|l| l.starts_with(&count))
        .unwrap_or_else(|| panic!("{count} in {out}"));
    let bounds: Vec<f64> = line[count.len()..]
        .trim_end_matches(" %")
        .split('–')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        bounds[0] < 100.0 * trained && 100.0 * trained < bounds[1],
        "{line}"
    );
    assert!(bounds[1] - bounds[0] < 1.2, "{line}");

    // predict on a PNG of the first test image agrees with the model's own
    // argmax on the prepared image it saves.
    let test = scratchnet::data::mnist::load_split(
        &mnist,
        scratchnet::data::mnist::Dataset::Mnist,
        scratchnet::data::mnist::Split::Test,
        scratchnet::data::mnist::Verify::Skip,
    )
    .unwrap();
    let png = runs.path().join("digit.png");
    image::GrayImage::from_raw(28, 28, test.pixels[..784].to_vec())
        .unwrap()
        .save(&png)
        .unwrap();
    let prepared_dir = runs.path().join("prepared");
    let o = scratchnet(&[
        "predict",
        run_s,
        png.to_str().unwrap(),
        "--top",
        "2",
        "--save-prepared",
        prepared_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let prepared = image::open(prepared_dir.join("digit.prepared.png"))
        .unwrap()
        .to_luma8();
    assert_eq!(prepared.dimensions(), (28, 28));
    let table = scratchnet::data::batches::Normalize::Standard.table();
    let x: Vec<f32> = prepared.as_raw().iter().map(|&p| table[p as usize]).collect();
    let net = match ckpt.spec.build() {
        scratchnet::models::Net::Mlp(n) => n,
        other => panic!("{other:?}"),
    };
    use scratchnet::models::Network;
    let logits = net.forward(&ckpt.params, &x, 1, &mut net.workspace(1)).to_vec();
    let want = scratchnet::layers::softmax_ce::argmax(&logits);
    let line = stdout(&o);
    assert!(
        line.starts_with(&format!("{}: {want} (", png.display())),
        "{line} (expected {want})"
    );
    assert_eq!(line.matches('(').count(), 2, "{line}");
    // A blank image has no digit; a file that cannot be read is reported
    // and the others are still answered, with exit 1 at the end.
    let blank = runs.path().join("blank.png");
    image::GrayImage::from_pixel(64, 64, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let missing = runs.path().join("missing.png");
    let o = scratchnet(&[
        "predict",
        run_s,
        missing.to_str().unwrap(),
        blank.to_str().unwrap(),
        png.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("missing.png") && stderr(&o).contains("1 of 3 images"),
        "{}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert!(
        out.contains(&format!("{}: no digit found", blank.display())),
        "{out}"
    );
    assert!(out.contains(&format!("{}: {want} (", png.display())), "{out}");
    let bogus = runs.path().join("bogus.png");
    std::fs::write(&bogus, b"<html>").unwrap();
    let o = scratchnet(&["predict", run_s, bogus.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("bogus.png") && stderr(&o).contains("not a readable"),
        "{}",
        stderr(&o)
    );

    // A finished run is not overwritten by accident.
    let o = scratchnet(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--overwrite"), "{}", stderr(&o));
}

#[test]
fn eval_of_a_missing_or_broken_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = scratchnet(&["eval", dir.path().join("nope.safetensors").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope.safetensors"), "{}", stderr(&o));
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}").unwrap();
    let o = scratchnet(&["eval", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.safetensors"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn validation_split_keeps_the_best_model_and_stops_early() {
    let Some(mnist) = common::mnist_dir("validation_split_keeps_the_best_model_and_stops_early") else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("val");
    let o = scratchnet(&[
        "train",
        "mlp",
        "--hidden",
        "64",
        "--epochs",
        "12",
        "--validation",
        "5000",
        "--patience",
        "1",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--loss-reduction",
        "mean",
        "--threads",
        "2",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(", validation 0."), "{}", stdout(&o));
    // The header counts the samples that train, not the whole training set.
    assert!(
        !stdout(&o).contains("The number of training data: 60000"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("The number of validation data: "),
        "{}",
        stdout(&o)
    );
    let history = scratchnet::run::read_history(&run.join("history.csv")).unwrap();
    let vals: Vec<f64> = history.iter().map(|r| r.validation_accuracy.unwrap()).collect();
    let best = vals.iter().cloned().fold(f64::MIN, f64::max);
    let best_epoch = vals.iter().position(|&v| v == best).unwrap() + 1;
    // Either all epochs ran, or the run stopped one epoch (the patience) after its best.
    assert!(history.len() == 12 || history.len() == best_epoch + 1, "{vals:?}");
    assert!(
        history.len() < 12,
        "with patience 1 this run stops early: {vals:?}"
    );
    // model_best.safetensors holds the parameters of the best validation epoch.
    let best_ckpt = scratchnet::checkpoint::load(&run.join("model_best.safetensors")).unwrap();
    let metrics: serde_json::Value = serde_json::from_str(best_ckpt.metrics.as_deref().unwrap()).unwrap();
    assert_eq!(metrics["epochs"], best_epoch);
    assert!(run.join("model.safetensors").is_file());
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["settings"]["validation"], 5000);
    assert_eq!(config["settings"]["optimizer"]["rule"], "adam");
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_batch_larger_than_the_training_set_is_refused() {
    let Some(mnist) = common::mnist_dir("a_batch_larger_than_the_training_set_is_refused") else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let o = scratchnet(&[
        "train",
        "mlp",
        "--batch-size",
        "60001",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        runs.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--batch-size 60001 is larger than the 60000 training images"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn presets_load_and_train_for_one_epoch() {
    let Some(mnist) = common::mnist_dir("presets_load_and_train_for_one_epoch") else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    // (model, preset, [(config.json pointer, expected value)])
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, serde_json::Value)]);
    let cases: [Case; 5] = [
        ("mlp", "report", &[("/model/hidden", serde_json::json!(256))]),
        (
            "mlp",
            "best-mlp",
            &[("/model/activation", serde_json::json!("relu"))],
        ),
        (
            "cnn",
            "best-cnn",
            &[
                ("/model/pool_size", serde_json::json!(3)),
                ("/settings/dropout", serde_json::json!(0.5)),
                ("/settings/batch_size", serde_json::json!(64)),
            ],
        ),
        (
            "mlp",
            "fast-mlp",
            &[
                ("/model/hidden", serde_json::json!(512)),
                ("/settings/shift", serde_json::json!(1)),
            ],
        ),
        (
            "cnn",
            "fast-cnn",
            &[
                ("/model/filters", serde_json::json!(32)),
                ("/model/pool_size", serde_json::json!(2)),
                ("/settings/shift", serde_json::json!(1)),
            ],
        ),
    ];
    for (model, preset, checks) in cases {
        let out = runs.path().join(preset);
        let o = scratchnet(&[
            "train",
            model,
            "--preset",
            preset,
            "--epochs",
            "1",
            "--data-dir",
            mnist.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{preset}: {}{}", stdout(&o), stderr(&o));
        assert!(test_accuracy(&o) > 0.9, "{preset}");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
        for (key, want) in checks {
            assert_eq!(config.pointer(key), Some(want), "{preset}: {config}");
        }
        assert_eq!(
            config["settings"]["epochs"], 1,
            "a later flag overrides the preset"
        );
    }
    let o = scratchnet(&["train", "mlp", "--preset", "best-cnn"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no preset `best-cnn` for mlp"),
        "{}",
        stderr(&o)
    );
}

/// The data folder given one level off is answered with "did you mean";
/// a dataset asked for but not the model's is named as ignored; another
/// dataset's valid file is not called corrupt.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn data_folders_one_level_off_get_did_you_mean() {
    let Some(mnist) = common::mnist_dir("data_folders_one_level_off_get_did_you_mean") else {
        return;
    };
    let root = mnist.parent().unwrap();
    // --data-dir at the parent of mnist/.
    let o = scratchnet(&["data", "--data-dir", root.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!("Did you mean {}?", mnist.display());
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("--data-dir {}", mnist.display())),
        "{}",
        stderr(&o)
    );
    // SCRATCHNET_DATA_DIR at mnist/ itself (it names the folder above).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .arg("data")
        .env("SCRATCHNET_DATA_DIR", &mnist)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("SCRATCHNET_DATA_DIR={}", root.display())),
        "{}",
        stderr(&o)
    );
    // MNIST's files read as Fashion-MNIST: a valid copy of MNIST, not to be deleted.
    let o = scratchnet(&[
        "data",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        mnist.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("valid copy of the MNIST") && !e.contains("Delete"),
        "{e}"
    );
    // eval --dataset other than the model's: a note says which is used.
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("r");
    let o = scratchnet(&[
        "train",
        "mlp",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = scratchnet(&[
        "eval",
        run.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        mnist.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--dataset fashion-mnist ignored")
            && stderr(&o).contains("evaluated on the MNIST test set"),
        "{}",
        stderr(&o)
    );
}

/// Tensor bytes of a model file, by name.
fn tensors(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect();
    out.sort();
    out
}

/// `train --resume RUN --epochs N` continues a finished run: at a constant
/// learning rate it ends with the bits of a run trained for N epochs from
/// the start. `--init-from` starts from another model's parameters and
/// refuses a model of another architecture.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn finished_runs_continue_and_runs_start_from_a_model() {
    let Some(mnist) = common::mnist_dir("finished_runs_continue_and_runs_start_from_a_model") else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let data = mnist.to_str().unwrap();
    let path = |n: &str| runs.path().join(n);
    let train = |out: &str, extra: &[&str]| {
        let o = path(out);
        let mut args = vec![
            "train",
            "mlp",
            "--hidden",
            "16",
            "--data-dir",
            data,
            "--out",
            o.to_str().unwrap(),
        ];
        args.extend(extra);
        scratchnet(&args)
    };
    assert!(train("short", &["--epochs", "2"]).status.success());
    assert!(path("short").join("state.safetensors").is_file());
    assert!(train("long", &["--epochs", "4"]).status.success());
    let o = scratchnet(&[
        "train",
        "--resume",
        path("short").to_str().unwrap(),
        "--epochs",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Epoch 4/4"), "{}", stdout(&o));
    assert_eq!(
        tensors(&path("short").join("model.safetensors")),
        tensors(&path("long").join("model.safetensors"))
    );
    let history = scratchnet::run::read_history(&path("short").join("history.csv")).unwrap();
    assert_eq!(history.len(), 4);
    let config = std::fs::read_to_string(path("short").join("config.json")).unwrap();
    assert!(
        config.contains("\"epochs\": 4") && config.contains("then: "),
        "{config}"
    );
    // Not fewer epochs than it has.
    let o = scratchnet(&[
        "train",
        "--resume",
        path("short").to_str().unwrap(),
        "--epochs",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("has finished 4 epochs; ask for at least 5"),
        "{}",
        stderr(&o)
    );

    // --init-from: the first epoch starts where the model ended.
    let model = path("long").join("model.safetensors");
    let o = train(
        "tuned",
        &["--epochs", "1", "--init-from", model.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Starting from the parameters of"),
        "{}",
        stdout(&o)
    );
    let fresh = train("fresh", &["--epochs", "1"]);
    assert!(
        test_accuracy(&o) > test_accuracy(&fresh),
        "{} vs {}",
        test_accuracy(&o),
        test_accuracy(&fresh)
    );
    let config = std::fs::read_to_string(path("tuned").join("config.json")).unwrap();
    assert!(config.contains("\"init_from\""), "{config}");
    let o = scratchnet(&[
        "train",
        "mlp",
        "--hidden",
        "32",
        "--epochs",
        "1",
        "--data-dir",
        data,
        "--init-from",
        model.to_str().unwrap(),
        "--out",
        path("wrong").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the model is mlp 784-16-10"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn speedrun_reports_each_seed_and_their_mean() {
    let Some(mnist) = common::mnist_dir("speedrun_reports_each_seed_and_their_mean") else {
        return;
    };
    let dir = mnist.to_str().unwrap();
    let o = scratchnet(&[
        "speedrun",
        "mlp",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--json",
        "--data-dir",
        dir,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    assert_eq!(report["preset"], "fast-mlp");
    assert_eq!(report["epochs"], 1);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let mut accuracies = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r["seed"], i as u64);
        assert!(r["seconds"].as_f64().unwrap() > 0.0);
        let a = r["test_accuracy"].as_f64().unwrap();
        assert!(a > 0.95, "one epoch of fast-mlp: {a}");
        accuracies.push(a);
    }
    let mean = report["test_accuracy"]["mean"].as_f64().unwrap();
    assert!((mean - (accuracies[0] + accuracies[1]) / 2.0).abs() < 1e-12);
    assert_ne!(accuracies[0], accuracies[1], "two seeds, two different runs");
    // The table form, and a bad --seeds.
    let o = scratchnet(&[
        "speedrun",
        "cnn",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--data-dir",
        dir,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o) + &stderr(&o);
    assert!(
        text.contains("preset fast-cnn") && text.contains("mean over 1 runs"),
        "{text}"
    );
    let o = scratchnet(&["speedrun", "mlp", "--seeds", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--seeds"), "{}", stderr(&o));
}
