//! A finished run read back: its history and figures, and whether a folder
//! holds a given run, finished.

use std::path::Path;

use anyhow::{Context, Result, anyhow};

use super::{CONFIG_FILE, HISTORY_FILE, MODEL_FILE, RunConfig, RunSpec};
use crate::checkpoint;
use crate::data::mnist::Dataset;
use crate::plot::{Panel, Series, save_figure};
use crate::train::EpochRecord;

/// `curves.png`/`.svg` of one run: training and test loss; training, test
/// and validation accuracy.
pub fn save_run_curves(dir: &Path, title: &str, history: &[EpochRecord]) -> Result<()> {
    let pts = |f: fn(&EpochRecord) -> f64| history.iter().map(|r| (r.epoch as f64, f(r))).collect::<Vec<_>>();
    let some = |f: fn(&EpochRecord) -> Option<f64>| {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect::<Vec<_>>()
    };
    let (test_loss, validation) = (some(|r| r.test_loss), some(|r| r.validation_accuracy));
    let loss = Panel {
        title: "Loss".into(),
        y_label: "cross-entropy (log scale)".into(),
        log_y: true,
        series: std::iter::once(Series::line("train", pts(|r| r.train_loss), false))
            .chain((!test_loss.is_empty()).then(|| Series::line("test", test_loss, true)))
            .collect(),
    };
    let acc = Panel {
        title: "Accuracy".into(),
        y_label: "accuracy".into(),
        log_y: false,
        series: [
            Series::line("train", pts(|r| r.train_accuracy), false),
            Series::line("test", pts(|r| r.test_accuracy), true),
        ]
        .into_iter()
        .chain((!validation.is_empty()).then(|| Series {
            dashed: true,
            ..Series::line("validation", validation, true)
        }))
        .collect(),
    };
    save_figure(dir, "curves", title, &[loss, acc])
}

/// A run's figure title: the model, then its settings and its result.
pub fn run_title(spec: &RunSpec, history: &[EpochRecord]) -> String {
    let s = &spec.settings;
    let result = history
        .last()
        .map(|r| {
            format!(
                " · test accuracy {:.2} % after {} epoch{}",
                100.0 * r.test_accuracy,
                r.epoch,
                if r.epoch == 1 { "" } else { "s" }
            )
        })
        .unwrap_or_default();
    format!(
        "{}\nlr {}, batch {}, {}, schedule {}, dropout {}, seed {}{result}",
        spec.model.describe(),
        s.lr,
        s.batch_size,
        s.optimizer.describe(),
        s.schedule.describe(),
        s.dropout,
        s.seed
    )
}

/// Parses a `history.csv` by its header's column names, so that files
/// written before `test_loss` was recorded still read.
pub fn read_history(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').map(str::trim).collect();
    let column = |name: &str| header.iter().position(|&h| h == name);
    let required = |name: &str| {
        column(name).ok_or_else(|| anyhow!("{}: the header has no {name} column", path.display()))
    };
    let (epoch, train_loss, train_accuracy, test_accuracy, seconds) = (
        required("epoch")?,
        required("train_loss")?,
        required("train_accuracy")?,
        required("test_accuracy")?,
        required("seconds")?,
    );
    let (test_loss, validation) = (column("test_loss"), column("validation_accuracy"));
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |j: usize| -> Result<f64> {
                f.get(j)
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| anyhow!("{}: line {} is malformed: {line:?}", path.display(), i + 2))
            };
            // Optional columns; empty when not measured.
            let optional = |j: Option<usize>| j.and_then(|j| f.get(j)).and_then(|v| v.trim().parse().ok());
            Ok(EpochRecord {
                epoch: num(epoch)? as usize,
                train_loss: num(train_loss)?,
                train_accuracy: num(train_accuracy)?,
                test_accuracy: num(test_accuracy)?,
                test_loss: optional(test_loss),
                seconds: num(seconds)?,
                validation_accuracy: optional(validation),
            })
        })
        .collect()
}

/// The history of a run folder that already holds this exact run, finished:
/// same configuration, a checkpoint of the same model that loads, and every epoch.
pub fn finished_run(dir: &Path, spec: &RunSpec, dataset: Dataset) -> Option<Vec<EpochRecord>> {
    let config: RunConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join(CONFIG_FILE)).ok()?).ok()?;
    if config.spec != *spec || config.dataset != dataset {
        return None;
    }
    // The model's own record: written by this very configuration, at the
    // end of the run, after as many epochs as the history holds.
    let ckpt = checkpoint::load(&dir.join(MODEL_FILE)).ok()?;
    let own: RunConfig = serde_json::from_str(ckpt.config.as_deref()?).ok()?;
    let metrics: serde_json::Value = serde_json::from_str(ckpt.metrics.as_deref()?).ok()?;
    if ckpt.spec != spec.model || own.spec != *spec || own.dataset != dataset {
        return None;
    }
    let history = read_history(&dir.join(HISTORY_FILE)).ok()?;
    let epochs = metrics.get("epochs")?.as_u64()? as usize;
    let complete = match metrics.get("finished")?.as_str()? {
        "all epochs" => epochs == spec.settings.epochs && history.len() == epochs,
        "early stop" => spec.settings.patience > 0 && history.len() == epochs,
        _ => false,
    };
    complete.then_some(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_round_trips_through_csv() {
        let dir = tempfile::tempdir().unwrap();
        let h = vec![
            EpochRecord {
                epoch: 1,
                train_loss: 0.5,
                train_accuracy: 0.8,
                test_accuracy: 0.85,
                test_loss: Some(0.4),
                seconds: 1.5,
                validation_accuracy: None,
            },
            EpochRecord {
                epoch: 2,
                train_loss: 0.25,
                train_accuracy: 0.9,
                test_accuracy: 0.875,
                test_loss: None,
                seconds: 1.25,
                validation_accuracy: None,
            },
        ];
        let p = dir.path().join("history.csv");
        std::fs::write(&p, crate::run::history_csv(&h)).unwrap();
        assert_eq!(read_history(&p).unwrap(), h);
        // A file of the earlier layout (no test_loss) still reads.
        std::fs::write(
            &p,
            "epoch,train_loss,train_accuracy,test_accuracy,seconds\n1,0.5,0.8,0.85,1.5\n",
        )
        .unwrap();
        let old = read_history(&p).unwrap();
        assert_eq!((old[0].test_accuracy, old[0].test_loss), (0.85, None));
        std::fs::write(&p, "epoch,train_loss,train_accuracy,test_accuracy,seconds\n1,x\n").unwrap();
        assert!(format!("{:#}", read_history(&p).unwrap_err()).contains("line 2"));
        std::fs::write(&p, "epoch,a\n1,x\n").unwrap();
        assert!(format!("{:#}", read_history(&p).unwrap_err()).contains("no train_loss column"));
    }

    /// A folder counts as holding a finished run only when its model's own
    /// record says so: a model left by a run with other settings (a sweep with
    /// `--patience` killed while retraining) is not reused.
    #[test]
    fn a_model_of_other_settings_is_not_a_finished_run() {
        use crate::checkpoint::{Checkpoint, save};
        use crate::data::batches::Normalize;
        use crate::models::ModelSpec;
        use crate::run::{RunConfig, RunDir};
        use crate::train::Settings;
        let dir = tempfile::tempdir().unwrap();
        let model = ModelSpec::mlp(4);
        let spec = |lr: f32| RunSpec {
            model,
            init: crate::init::Init::Normal,
            init_std: 0.01,
            normalize: Normalize::Unit,
            settings: Settings {
                patience: 2,
                validation: 100,
                ..Settings::sgd(5, lr, 32, crate::layers::softmax_ce::Reduction::Mean, 0)
            },
        };
        let config = |s: RunSpec| RunConfig {
            scratchnet_version: "test".into(),
            spec: s,
            kernels: "portable".into(),
            dataset: Dataset::Mnist,
            data_dir: dir.path().into(),
            threads: 1,
            command: String::new(),
            checkpoint_every: 1,
            init_from: None,
        };
        let record = EpochRecord {
            epoch: 1,
            train_loss: 0.5,
            train_accuracy: 0.8,
            test_accuracy: 0.85,
            test_loss: Some(0.4),
            seconds: 1.5,
            validation_accuracy: Some(0.8),
        };
        let run = RunDir::create(dir.path(), true).unwrap();
        let save_model = |s: RunSpec, finished: &str, epochs: usize| {
            let metrics = serde_json::json!({"finished": finished, "epochs": epochs});
            let ckpt = Checkpoint {
                spec: model,
                params: vec![0.0; model.layout().len()],
                dataset: Dataset::Mnist,
                normalize: Normalize::Unit,
                config: Some(serde_json::to_string(&config(s)).unwrap()),
                metrics: Some(metrics.to_string()),
                resume: None,
                extra: Vec::new(),
            };
            save(&run.model_path(), &ckpt).unwrap();
        };
        // The folder's config and history say this run (lr 0.1), one epoch in;
        // its model is an early-stopped run with lr 0.2.
        run.write_config(&config(spec(0.1))).unwrap();
        run.write_history(std::slice::from_ref(&record)).unwrap();
        save_model(spec(0.2), "early stop", 1);
        assert_eq!(finished_run(dir.path(), &spec(0.1), Dataset::Mnist), None);
        // The model of this very run, stopped early after that epoch: finished.
        save_model(spec(0.1), "early stop", 1);
        assert_eq!(
            finished_run(dir.path(), &spec(0.1), Dataset::Mnist),
            Some(vec![record.clone()])
        );
        // A best-so-far model (no end recorded) is not a finished run.
        save_model(spec(0.1), "", 1);
        assert_eq!(finished_run(dir.path(), &spec(0.1), Dataset::Mnist), None);
    }
}
