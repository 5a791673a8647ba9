//! Sweeps and the reproduction, end to end on real MNIST (with few epochs).

mod common;

use common::{scratchnet, stderr, stdout};

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn reproduce_quick_writes_the_report_folder() {
    let Some(mnist) = common::mnist_dir("reproduce_quick_writes_the_report_folder") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("rep");
    let o = scratchnet(&[
        "reproduce",
        "--quick",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for want in [
        "| 32 | 95.69 % |",
        "| 512 | 96.40 % |",
        "| 3 × 3 | 91.16 % |",
        "| 11 × 11 | 92.52 % |",
        "machine:",
        "total time:",
        "Quick smoke test",
        "mlp/curves.png",
    ] {
        assert!(report.contains(want), "missing {want:?} in\n{report}");
    }
    // Every cell has a number of ours and a difference.
    assert_eq!(report.matches(" pp |").count(), 10, "{report}");
    for sweep in ["mlp", "cnn"] {
        for f in ["results.md", "results.csv", "curves.png", "curves.svg"] {
            assert!(dir.join(sweep).join(f).is_file(), "{sweep}/{f}");
        }
        let csv = std::fs::read_to_string(dir.join(sweep).join("results.csv")).unwrap();
        assert_eq!(csv.lines().count(), 6, "{csv}");
        let svg = std::fs::read_to_string(dir.join(sweep).join("curves.svg")).unwrap();
        let labels: &[&str] = if sweep == "mlp" {
            &["H=32", "H=64", "H=128", "H=256", "H=512"]
        } else {
            &["K=3", "K=5", "K=7", "K=9", "K=11"]
        };
        for l in labels {
            assert!(svg.contains(l), "{sweep} figure lacks {l}");
        }
    }
    for run in ["mlp/h256-s0", "cnn/k7-s0"] {
        for f in [
            "config.json",
            "history.csv",
            "model.safetensors",
            "curves.png",
            "curves.svg",
        ] {
            assert!(dir.join(run).join(f).is_file(), "{run}/{f}");
        }
    }
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn an_interrupted_sweep_continues_where_it_stopped() {
    let Some(mnist) = common::mnist_dir("an_interrupted_sweep_continues_where_it_stopped") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sweep");
    let args = [
        "sweep",
        "mlp",
        "--hidden",
        "8,16",
        "--seeds",
        "0,1",
        "--epochs",
        "1",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ];
    let o = scratchnet(&args);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let first = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(first.lines().count(), 3, "{first}");
    assert!(first.lines().nth(1).unwrap().starts_with("H=8,8,2,"), "{first}");
    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    assert!(md.contains(" ± "), "{md}");

    // Simulate an interruption inside the last run: its model was never written.
    std::fs::remove_file(dir.join("h16-s1/model.safetensors")).unwrap();
    let o = scratchnet(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("finished earlier").count(), 3, "{out}");
    assert_eq!(out.matches("Epoch 1/1").count(), 1, "{out}");
    // Same seeds and thread count: reused and retrained runs give the same results
    // (timings aside: the first columns up to the final training accuracy).
    let again = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let results = |s: &str, row: usize| {
        s.lines()
            .nth(row)
            .unwrap()
            .split(',')
            .take(7)
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(results(&again, 1), results(&first, 1));
    assert_eq!(results(&again, 2), results(&first, 2));
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn a_later_list_flag_replaces_the_presets_list() {
    let Some(mnist) = common::mnist_dir("a_later_list_flag_replaces_the_presets_list") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sweep");
    // best-mlp names --hidden 1024; the sweep must run H=8 only, once (the last --seeds wins).
    let o = scratchnet(&[
        "sweep",
        "mlp",
        "--preset",
        "best-mlp",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--seeds",
        "0,1",
        "--seeds",
        "2",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let runs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs, ["h8-s2"], "{}", stdout(&o));
}

/// The tensors of a safetensors file (the bytes after its header; the header's
/// metadata records times and the configuration, which may differ).
fn tensor_bytes(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + n..].to_vec()
}

/// `history.csv` without its seconds column.
fn history_values(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let seconds = text
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "seconds")
        .unwrap();
    text.lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(seconds);
            f.join(",")
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn mlp_runs_side_by_side_give_the_same_results_as_one_after_another() {
    let Some(mnist) = common::mnist_dir("mlp_runs_side_by_side_give_the_same_results_as_one_after_another")
    else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let run = |jobs: &str| {
        let dir = out.path().join(format!("jobs{jobs}"));
        let o = scratchnet(&[
            "reproduce",
            "--quick",
            "--threads",
            "2",
            "--jobs",
            jobs,
            "--data-dir",
            mnist.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        (dir, stdout(&o))
    };
    let (side, side_out) = run("2");
    let (serial, serial_out) = run("1");
    // Side by side only where the MLP's bits do not depend on the thread
    // count (the engine's levels; not SCRATCHNET_KERNELS=reference).
    let independent = scratchnet::train::Runner::of(
        &scratchnet::models::ModelSpec::mlp(32),
        scratchnet::kernels::Choice::Auto,
    )
    .unwrap()
    .thread_independent();
    // Side by side, each MLP run has one thread and its lines name it.
    assert_eq!(
        side_out.contains("[mlp H=512 seed 0] Epoch 2/2"),
        independent,
        "{side_out}"
    );
    assert!(!serial_out.contains("[mlp H="), "{serial_out}");
    for h in [32, 64, 128, 256, 512] {
        let r = format!("mlp/h{h}-s0");
        let config = std::fs::read_to_string(side.join(&r).join("config.json")).unwrap();
        let threads = if independent { 1 } else { 2 };
        assert!(config.contains(&format!("\"threads\": {threads}")), "{config}");
        assert_eq!(
            tensor_bytes(&side.join(&r).join("model.safetensors")),
            tensor_bytes(&serial.join(&r).join("model.safetensors")),
            "{r}"
        );
        assert_eq!(
            history_values(&side.join(&r).join("history.csv")),
            history_values(&serial.join(&r).join("history.csv")),
            "{r}"
        );
    }
    // The CNN's runs use both threads either way.
    let config = std::fs::read_to_string(side.join("cnn/k7-s0/config.json")).unwrap();
    assert!(config.contains("\"threads\": 2"), "{config}");
    assert_eq!(
        tensor_bytes(&side.join("cnn/k7-s0/model.safetensors")),
        tensor_bytes(&serial.join("cnn/k7-s0/model.safetensors"))
    );
}

/// `--lr 0.01,0.02 --dropout 0,0.2` runs one configuration per combination,
/// each in its own folder and row; the figure shows test accuracy with its
/// spread over two seeds and the validation curve; a refused value in a
/// list is a usage error before any training.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn list_valued_flags_sweep_every_combination() {
    let Some(mnist) = common::mnist_dir("list_valued_flags_sweep_every_combination") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("grid");
    let o = scratchnet(&[
        "sweep",
        "mlp",
        "--hidden",
        "16",
        "--lr",
        "0.01,0.02",
        "--dropout",
        "0,0.2",
        "--seeds",
        "0,1",
        "--epochs",
        "1",
        "--validation",
        "1000",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    for label in [
        "H=16 lr=0.01 dropout=0 |",
        "H=16 lr=0.01 dropout=0.2 |",
        "H=16 lr=0.02 dropout=0 |",
        "H=16 lr=0.02 dropout=0.2 |",
    ] {
        assert!(md.contains(label), "{label} missing in\n{md}");
    }
    for run in ["h16-lr0.01-dropout0-s0", "h16-lr0.02-dropout0.2-s1"] {
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(run).join("config.json")).unwrap())
                .unwrap();
        let want_lr = if run.contains("lr0.02") { 0.02 } else { 0.01 };
        assert!(
            (config["settings"]["lr"].as_f64().unwrap() - want_lr).abs() < 1e-6,
            "{run}: {config}"
        );
    }
    let svg = std::fs::read_to_string(dir.join("curves.svg")).unwrap();
    for want in ["test ± std", "validation", "(mean of 2)", "Loss", "Accuracy"] {
        assert!(svg.contains(want), "the figure lacks {want:?}");
    }
    // The second value of a list is checked like the first.
    let o = scratchnet(&[
        "sweep",
        "mlp",
        "--lr",
        "0.01,-1",
        "--data-dir",
        mnist.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("must be a positive finite number, got -1"),
        "{}",
        stderr(&o)
    );
}

/// The runs a sweep's output says it started training (`== [i/n] … →`).
fn trained_here(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("== [") && l.contains(" → "))
        .map(|l| {
            l.split("] ")
                .nth(1)
                .unwrap()
                .split(" → ")
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// `--shard I/N`: two shards started together on one folder train disjoint
/// halves of the plan; the same shard started twice at once trains every
/// run once; a shard killed and restarted continues its run; the sweep
/// without `--shard` then reuses every run and writes the tables.
#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn shards_share_a_sweep_without_training_a_run_twice() {
    let Some(mnist) = common::mnist_dir("shards_share_a_sweep_without_training_a_run_twice") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sharded");
    let data = mnist.to_str().unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "sweep",
            "mlp",
            "--hidden",
            "8,16,24,32",
            "--seeds",
            "0,1",
            "--epochs",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(["--data-dir", data, "--out", dir.to_str().unwrap()].map(String::from));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let spawn = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_scratchnet"))
            .args(args(extra))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Shards 1/2 and 2/2, and shard 1/2 a second time, all at once.
    let children = [
        spawn(&["--shard", "1/2"]),
        spawn(&["--shard", "2/2"]),
        spawn(&["--shard", "1/2"]),
    ];
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
            stdout(&o)
        })
        .collect();
    let mut all: Vec<String> = outputs.iter().flat_map(|o| trained_here(o)).collect();
    let first: Vec<String> = trained_here(&outputs[0])
        .into_iter()
        .chain(trained_here(&outputs[2]))
        .collect();
    let second = trained_here(&outputs[1]);
    assert!(
        first.iter().all(|r| !second.contains(r)),
        "shards overlap: {first:?} {second:?}"
    );
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a run trained twice: {outputs:#?}");
    assert_eq!(all.len(), 8, "{outputs:#?}");
    assert!(
        outputs[0].contains("shard 1/2: 4 of the plan's 8 runs"),
        "{}",
        outputs[0]
    );

    // A longer sweep's shard killed mid-run and started again continues it.
    let long = out.path().join("long");
    let long_args = |shard: &str| -> Vec<String> {
        [
            "sweep",
            "mlp",
            "--hidden",
            "128",
            "--seeds",
            "0,1",
            "--epochs",
            "15",
            "--data-dir",
            data,
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([long.display().to_string(), "--shard".into(), shard.into()])
        .collect()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args(long_args("1/2"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = 0;
    while std::time::Instant::now() < deadline {
        let runs = ["h128-s0", "h128-s1"].map(|r| {
            std::fs::read_to_string(long.join(r).join("history.csv"))
                .map(|t| t.lines().count())
                .unwrap_or(0)
        });
        seen = runs.into_iter().max().unwrap();
        if seen >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(seen >= 3, "no progress in {}", long.display());
    child.kill().unwrap();
    child.wait().unwrap();
    let o = scratchnet(&long_args("1/2").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("1 runs finished here or earlier"),
        "{}",
        stdout(&o)
    );
    let o = scratchnet(&long_args("2/2").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));

    // Without --shard: every run reused, the tables written.
    for (d, n) in [(&dir, 8), (&long, 2)] {
        let a: Vec<String> = if n == 8 {
            args(&[])
        } else {
            let mut a = long_args("1/1");
            a.truncate(a.len() - 2); // without --shard
            a
        };
        let o = scratchnet(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).matches(", reused").count(), n, "{}", stdout(&o));
        let md = std::fs::read_to_string(d.join("results.md")).unwrap();
        assert!(md.contains("(seeds 0, 1)"), "{md}");
    }
}
