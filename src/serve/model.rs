//! A served model: its checkpoint, its answers for a prepared image, what
//! happens inside it, and its answers on the test set.
//!
//! The answers come from the same code as `scratchnet predict` (the
//! [`Runner`] the kernel choice picks); the activations shown on the page are
//! recomputed from the textbook layers (`layers::dense`, the activations,
//! `layers::conv2d`'s direct loops, `layers::maxpool`), one image at a time.

use std::path::Path;

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use crate::checkpoint::{self, Checkpoint};
use crate::data::batches::Normalize;
use crate::data::mnist::{CLASSES, PIXELS, RawSplit, SIDE};
use crate::kernels::Choice;
use crate::layers::softmax_ce::softmax;
use crate::layers::{conv2d, dense, relu, sigmoid, tanh};
use crate::models::{Activation, Net};
use crate::params::split;
use crate::train::{Answers, Runner};

/// A checkpoint ready to answer.
pub struct Loaded {
    pub ckpt: Checkpoint,
    runner: Runner,
}

/// A 2-D array of weights or activations sent compactly: each row scaled by
/// its largest magnitude and rounded to a signed byte, the bytes in base64.
/// `value = byte / 127 · scale[row]`.
pub fn tensor8(values: &[f32], rows: usize) -> Value {
    use base64::Engine;
    let cols = values.len() / rows.max(1);
    let mut scale = Vec::with_capacity(rows);
    let mut bytes = Vec::with_capacity(values.len());
    for row in values.chunks(cols.max(1)) {
        let m = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        scale.push(m);
        let k = if m > 0.0 { 127.0 / m } else { 0.0 };
        bytes.extend(row.iter().map(|v| ((v * k).round() as i8) as u8));
    }
    json!({
        "rows": rows,
        "cols": cols,
        "scale": scale,
        "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
    })
}

/// Pixels 0–255 in base64.
pub fn pixels64(pixels: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(pixels)
}

/// Values rounded to 4 decimals (short JSON).
fn rounded(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| (x as f64 * 1e4).round() / 1e4).collect()
}

impl Loaded {
    pub fn load(path: &Path) -> Result<Loaded> {
        let ckpt = checkpoint::load(path)?;
        ckpt.spec
            .fits("a prepared 28×28 image", PIXELS, SIDE, CLASSES)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let runner = Runner::of(&ckpt.spec, Choice::Auto).map_err(anyhow::Error::msg)?;
        Ok(Loaded { ckpt, runner })
    }

    fn normalized(&self, pixels: &[u8]) -> Vec<f32> {
        let table = Normalize::table(self.ckpt.normalize);
        pixels.iter().map(|&p| table[p as usize]).collect()
    }

    /// Class probabilities of `n` images of 784 pixels 0–255.
    pub fn probabilities(&self, pixels: &[u8], n: usize) -> Vec<f32> {
        let logits = self.runner.logits(&self.ckpt.params, &self.normalized(pixels), n);
        let mut p = vec![0.0f32; logits.len()];
        softmax(&logits, CLASSES, &mut p);
        p
    }

    /// `GET /api/model`: spec, normalisation, dataset, metrics and config.
    pub fn describe(&self, id: &str) -> Value {
        let parse = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
        json!({
            "run": id,
            "spec": self.ckpt.spec,
            "description": self.ckpt.spec.describe(),
            "parameters": self.ckpt.spec.param_count(),
            "normalize": self.ckpt.normalize.name(),
            "dataset": self.ckpt.dataset.dir_name(),
            "dataset_name": self.ckpt.dataset.display_name(),
            "classes": self.ckpt.dataset.class_names(),
            "metrics": parse(&self.ckpt.metrics),
            "config": parse(&self.ckpt.config),
            "kernels": self.runner.code.name(),
        })
    }

    /// `GET /api/weights`: for an MLP the hidden units' input weights as
    /// 28×28 tiles and the output weights; for a CNN the filters and the
    /// output weights per class as maps over the features.
    pub fn weights(&self) -> Value {
        let p = &self.ckpt.params;
        match self.runner.net {
            Net::Mlp(m) => {
                let [w1, b1, w2, b2] = split(p, m.lens());
                json!({
                    "kind": "mlp",
                    "hidden": m.hidden,
                    "activation": format!("{:?}", m.activation).to_lowercase(),
                    "input_weights": tensor8(w1, m.hidden),
                    "hidden_bias": rounded(b1),
                    "output_weights": tensor8(w2, m.classes),
                    "output_bias": rounded(b2),
                })
            }
            Net::Cnn(c) => {
                let [wc, bc, wf, bf] = split(p, c.lens());
                let (side, pool) = match c.pool {
                    Some(pl) => (pl.out_width(), Some(pl.size)),
                    None => (c.conv.out_side(), None),
                };
                json!({
                    "kind": "cnn",
                    "filters": c.conv.filters,
                    "kernel": c.conv.kernel,
                    "conv_weights": tensor8(wc, c.conv.filters),
                    "conv_bias": rounded(bc),
                    "map_side": c.conv.out_side(),
                    "pool": pool,
                    "feature_side": side,
                    "output_weights": tensor8(wf, c.classes),
                    "output_bias": rounded(bf),
                })
            }
        }
    }

    /// `POST /api/inside`: what each hidden unit or filter does with the
    /// prepared image, by the textbook layers.
    pub fn inside(&self, pixels: &[u8; PIXELS]) -> Value {
        let x = self.normalized(pixels);
        let p = &self.ckpt.params;
        match self.runner.net {
            Net::Mlp(m) => {
                let [w1, b1, _, _] = split(p, m.lens());
                let mut h = vec![0.0f32; m.hidden];
                dense::forward(1, &x, w1, b1, &mut h);
                match m.activation {
                    Activation::Sigmoid => sigmoid::forward(&mut h),
                    Activation::Relu => relu::forward(&mut h),
                    Activation::Tanh => tanh::forward(&mut h),
                }
                let mut order: Vec<usize> = (0..h.len()).collect();
                order.sort_by(|&i, &j| h[j].total_cmp(&h[i]).then(i.cmp(&j)));
                json!({ "kind": "mlp", "hidden": rounded(&h), "order": order })
            }
            Net::Cnn(c) => {
                let [wc, bc, _, _] = split(p, c.lens());
                let mut z = vec![0.0f32; c.conv.out_len()];
                let bias = (!bc.is_empty()).then_some(bc);
                conv2d::naive_forward(&c.conv, 1, &x, wc, bias, &mut z);
                relu::forward(&mut z);
                let pooled = c.pool.map(|pl| {
                    let y = crate::layers::maxpool::naive_forward(&pl, 1, &z);
                    json!({ "side": pl.out_width(), "maps": tensor8(&y, c.conv.filters) })
                });
                // How strongly each filter fires: its map's mean after ReLU.
                let side = c.conv.out_side();
                let strength: Vec<f32> = z
                    .chunks(side * side)
                    .map(|m| m.iter().sum::<f32>() / m.len() as f32)
                    .collect();
                json!({
                    "kind": "cnn",
                    "side": side,
                    "maps": tensor8(&z, c.conv.filters),
                    "pooled": pooled,
                    "strength": rounded(&strength),
                })
            }
        }
    }

    /// Answers on every image of a test split ([`Answers::of`]).
    pub fn answer(&self, test: &RawSplit) -> Answers {
        Answers::of(&self.runner, &self.ckpt.params, self.ckpt.normalize, test)
    }
}

/// The page's views of [`Answers`].
pub trait AnswersJson {
    fn image(&self, test: &RawSplit, i: usize) -> Value;
    fn summary(&self) -> Value;
}

impl AnswersJson for Answers {
    /// One test image for the page: index, labels, probabilities, pixels.
    fn image(&self, test: &RawSplit, i: usize) -> Value {
        json!({
            "index": i,
            "label": self.labels[i],
            "predicted": self.predicted[i],
            "probabilities": rounded(self.probabilities_of(i)),
            "pixels": pixels64(&test.pixels[i * PIXELS..(i + 1) * PIXELS]),
        })
    }

    /// `GET /api/confusion`: counts, per-class accuracy, accuracy, loss.
    fn summary(&self) -> Value {
        let per_class: Vec<Option<f64>> = self
            .confusion
            .per_class_accuracy()
            .iter()
            .map(|a| a.is_finite().then_some(*a))
            .collect();
        json!({
            "counts": self.confusion.counts,
            "per_class_accuracy": per_class,
            "accuracy": self.confusion.accuracy(),
            "correct": self.confusion.correct(),
            "total": self.confusion.total(),
            "loss": self.loss,
        })
    }
}
