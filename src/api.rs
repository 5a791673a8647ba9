//! The library in a few types: a [`Model`] built from its spec, trained by a
//! [`Trainer`], saved and loaded in one call, asked for probabilities.
//!
//! ```
//! use scratchnet::prelude::*;
//!
//! // Four samples of 784 features, labels 0–9: your own data, or MNIST
//! // through `load_mnist`.
//! let x: Vec<f32> = (0..4 * 784).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
//! let data = Samples { x, y: vec![0, 1, 2, 3], dim: 784 };
//!
//! let mut model = Model::new(ModelSpec::mlp(16), 0)?;
//! let history = Trainer::new(Settings::default().epochs(2).batch_size(2)).fit(&mut model, &data, None)?;
//! assert_eq!(history.len(), 2);
//!
//! let p = model.predict(data.row(0));
//! assert_eq!(p.probabilities.len(), 10);
//! assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
//!
//! let dir = tempfile::tempdir()?;
//! model.save(&dir.path().join("model.safetensors"))?;
//! let back = Model::load(&dir.path().join("model.safetensors"))?;
//! assert_eq!(back.params, model.params);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::Path;

use anyhow::{Result, anyhow};

use crate::checkpoint::{self, Checkpoint};
use crate::data::batches::{Normalize, Samples};
use crate::data::mnist::{Dataset, Split, Verify, load_split};
use crate::init::Init;
use crate::kernels::Choice;
use crate::layers::softmax_ce::{argmax, softmax};
use crate::metrics::Evaluation;
use crate::models::{Activation, Mlp, ModelSpec, Net};
use crate::train::{EpochRecord, Runner, Settings, train};

/// A network, its parameters and how its inputs are normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub spec: ModelSpec,
    /// Flat parameters in `spec.layout()` order (PyTorch's names and shapes).
    pub params: Vec<f32>,
    /// How pixels 0–255 become inputs; used by [`Model::predict_pixels`]
    /// and recorded in saved files.
    pub normalize: Normalize,
    /// The dataset it is trained on, recorded in saved files.
    pub dataset: Dataset,
}

/// One sample's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The most likely class.
    pub class: usize,
    /// softmax of the logits.
    pub probabilities: Vec<f32>,
}

impl Model {
    /// A freshly initialised model (seeded): He for ReLU layers and the CNN,
    /// Xavier for sigmoid and tanh hidden layers. Inputs are taken as
    /// normalised [`Normalize::Standard`] unless set otherwise.
    pub fn new(spec: ModelSpec, seed: u64) -> Result<Model> {
        spec.validate().map_err(|e| anyhow!(e))?;
        let runner = Runner::new(net(&spec), Choice::Auto).map_err(|e| anyhow!(e))?;
        Ok(Model {
            spec,
            params: runner.init_params(seed),
            normalize: Normalize::Standard,
            dataset: Dataset::Mnist,
        })
    }

    /// Reads a model written by [`Model::save`] or by `scratchnet train`.
    pub fn load(path: &Path) -> Result<Model> {
        let c = checkpoint::load(path)?;
        Ok(Model {
            spec: c.spec,
            params: c.params,
            normalize: c.normalize,
            dataset: c.dataset,
        })
    }

    /// Writes the model as safetensors (atomically), loadable by
    /// [`Model::load`], `scratchnet eval|predict|export` and PyTorch.
    pub fn save(&self, path: &Path) -> Result<()> {
        checkpoint::save(
            path,
            &Checkpoint {
                spec: self.spec,
                params: self.params.clone(),
                dataset: self.dataset,
                normalize: self.normalize,
                config: None,
                metrics: None,
                resume: None,
                extra: Vec::new(),
            },
        )
    }

    fn runner(&self) -> Runner {
        Runner::of(&self.spec, Choice::Auto).expect("the automatic kernel choice always resolves")
    }

    /// Logits `[n, classes]` of `n` normalised inputs, row-major.
    pub fn logits(&self, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(
            x.len(),
            n * self.spec.input_len(),
            "x must hold n inputs of the model's size"
        );
        self.runner().logits(&self.params, x, n)
    }

    /// Class probabilities `[n, classes]` of `n` normalised inputs.
    pub fn probabilities(&self, x: &[f32], n: usize) -> Vec<f32> {
        let logits = self.logits(x, n);
        let mut p = vec![0.0; logits.len()];
        softmax(&logits, self.spec.classes(), &mut p);
        p
    }

    /// The answer for one normalised input.
    pub fn predict(&self, x: &[f32]) -> Prediction {
        let probabilities = self.probabilities(x, 1);
        Prediction {
            class: argmax(&probabilities),
            probabilities,
        }
    }

    /// The answer for one image of pixels 0–255 (already 28×28 and centred
    /// as MNIST's are; `scratchnet::prepare` prepares a photo).
    pub fn predict_pixels(&self, pixels: &[u8]) -> Prediction {
        let table = self.normalize.table();
        let x: Vec<f32> = pixels.iter().map(|&p| table[p as usize]).collect();
        self.predict(&x)
    }

    /// Confusion matrix and mean loss on `data`.
    pub fn evaluate(&self, data: &Samples) -> Evaluation {
        self.runner().evaluate(&self.params, data, 256)
    }
}

/// The network of a spec with the initialisation [`Model::new`] uses.
fn net(spec: &ModelSpec) -> Net {
    match spec.build() {
        Net::Mlp(m) => Net::Mlp(Mlp {
            init: match m.activation {
                Activation::Relu => Init::He,
                Activation::Sigmoid | Activation::Tanh => Init::Xavier,
            },
            ..m
        }),
        cnn => cnn,
    }
}

/// Trains a [`Model`] with [`Settings`] (which have defaults and a builder).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Trainer {
    pub settings: Settings,
}

impl Trainer {
    pub fn new(settings: Settings) -> Trainer {
        Trainer { settings }
    }

    /// Trains `model` on `train` for the settings' epochs; with `test`, each
    /// epoch's record has its test accuracy and loss (NaN and none without).
    /// The result is the same for the same seed on the same machine and
    /// thread count (see the crate's reproducibility contract).
    pub fn fit(
        &self,
        model: &mut Model,
        train_set: &Samples,
        test: Option<&Samples>,
    ) -> Result<Vec<EpochRecord>> {
        self.settings.validate().map_err(|e| anyhow!(e))?;
        let input = model.spec.input_len();
        for (what, s) in [("training", Some(train_set)), ("test", test)] {
            if let Some(s) = s
                && (s.dim != input || s.x.len() != s.len() * s.dim)
            {
                anyhow::bail!(
                    "the {what} samples have {} features; the model takes {input}",
                    s.dim
                );
            }
        }
        let side = train_set.dim.isqrt();
        if self.settings.shift > 0 && side * side != train_set.dim {
            anyhow::bail!(
                "random shifts need square images; the training samples have {} features",
                train_set.dim
            );
        }
        if train_set.len() < self.settings.batch_size {
            anyhow::bail!(
                "batch size {} is larger than the {} training samples",
                self.settings.batch_size,
                train_set.len()
            );
        }
        let runner = Runner::new(net(&model.spec), Choice::Auto).map_err(|e| anyhow!(e))?;
        train(
            &runner,
            &mut model.params,
            train_set,
            test,
            &self.settings,
            &mut |_| {},
        )
        .map_err(|e| anyhow!("{e}"))
    }
}

/// MNIST's training and test sets from `dir` (the folder holding the four
/// files, gzipped or not), checksums verified, normalised by `normalize`.
pub fn load_mnist(dir: &Path, normalize: Normalize) -> Result<(Samples, Samples)> {
    let load = |split| -> Result<Samples> {
        let raw = load_split(dir, Dataset::Mnist, split, Verify::Checksum)?;
        Ok(Samples::from_raw(&raw, normalize))
    };
    Ok((load(Split::Train)?, load(Split::Test)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::synthetic;

    fn model(input: usize) -> Model {
        let spec = ModelSpec::Mlp {
            input,
            hidden: 8,
            classes: 10,
            activation: crate::models::Activation::Relu,
        };
        Model::new(spec, 1).unwrap()
    }

    #[test]
    fn random_shifts_change_training_and_need_square_images() {
        let settings = Settings::default().epochs(1).batch_size(8).lr(0.05);
        let data = synthetic(32, 36, 2);
        let (mut plain, mut shifted) = (model(36), model(36));
        Trainer::new(settings).fit(&mut plain, &data, None).unwrap();
        Trainer::new(settings.shift(2))
            .fit(&mut shifted, &data, None)
            .unwrap();
        assert_ne!(plain.params, shifted.params);

        let mut flat = model(35);
        let err = Trainer::new(settings.shift(1))
            .fit(&mut flat, &synthetic(32, 35, 2), None)
            .unwrap_err();
        assert!(err.to_string().contains("square images"), "{err}");
        let err = Trainer::new(settings.shift(9))
            .fit(&mut flat, &data, None)
            .unwrap_err();
        assert!(err.to_string().contains("--shift 9"), "{err}");
    }
}
