//! A model's answer for every sample of a labelled split, kept per sample:
//! the confusion matrix and loss of [`Runner::evaluate`], plus each sample's
//! probabilities, so that its mistakes can be shown (`scratchnet eval
//! --plots`, the page of `scratchnet serve`).

use rayon::prelude::*;

use super::Runner;
use crate::data::batches::Normalize;
use crate::data::mnist::{CLASSES, PIXELS, RawSplit};
use crate::layers::softmax_ce::{argmax, softmax};
use crate::metrics::Confusion;

/// A model's answers on a test split.
pub struct Answers {
    pub labels: Vec<u8>,
    pub predicted: Vec<u8>,
    /// `[count, 10]`
    pub probabilities: Vec<f32>,
    pub confusion: Confusion,
    pub loss: f64,
}

impl Answers {
    /// The answers of `params` run by `runner` on every image of `split`
    /// (pixels normalised by `normalize`), in batches over the threads.
    pub fn of(runner: &Runner, params: &[f32], normalize: Normalize, split: &RawSplit) -> Answers {
        const BATCH: usize = 250;
        let table = normalize.table();
        let pixels = &split.pixels[..split.count * PIXELS];
        let probabilities: Vec<f32> = pixels
            .par_chunks(BATCH * PIXELS)
            .map(|chunk| {
                let x: Vec<f32> = chunk.iter().map(|&p| table[p as usize]).collect();
                let logits = runner.logits(params, &x, chunk.len() / PIXELS);
                let mut p = vec![0.0f32; logits.len()];
                softmax(&logits, CLASSES, &mut p);
                p
            })
            .collect::<Vec<_>>()
            .concat();
        let mut confusion = Confusion::default();
        let mut loss = 0.0f64;
        let predicted: Vec<u8> = probabilities
            .chunks(CLASSES)
            .zip(&split.labels)
            .map(|(p, &y)| {
                let k = argmax(p);
                confusion.add(y as usize, k);
                loss -= (p[y as usize].max(f32::MIN_POSITIVE) as f64).ln();
                k as u8
            })
            .collect();
        Answers {
            labels: split.labels[..split.count].to_vec(),
            predicted,
            probabilities,
            confusion,
            loss: loss / split.count.max(1) as f64,
        }
    }

    /// Sample `i`'s ten probabilities.
    pub fn probabilities_of(&self, i: usize) -> &[f32] {
        &self.probabilities[i * CLASSES..(i + 1) * CLASSES]
    }

    /// Test images of true class `label` predicted `predicted`, most
    /// confident first.
    pub fn cell(&self, label: u8, predicted: u8) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.labels[i] == label && self.predicted[i] == predicted)
            .collect();
        idx.sort_by(|&i, &j| {
            self.probabilities_of(j)[predicted as usize]
                .total_cmp(&self.probabilities_of(i)[predicted as usize])
                .then(i.cmp(&j))
        });
        idx
    }

    /// The mistakes, most confident first.
    pub fn mistakes(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.labels[i] != self.predicted[i])
            .collect();
        let conf = |i: usize| self.probabilities_of(i)[self.predicted[i] as usize];
        idx.sort_by(|&i, &j| conf(j).total_cmp(&conf(i)).then(i.cmp(&j)));
        idx
    }
}
