//! Seeded weight initialisation. Biases start at zero.
//!
//! | scheme   | distribution                          | suits                         |
//! |----------|---------------------------------------|-------------------------------|
//! | `normal` | N(0, σ²), σ given (default 0.01)       | the report's MLP ("random")    |
//! | `xavier` | U(−a, a), a = √(6 / (fan_in + fan_out)) | sigmoid / tanh (Glorot 2010)   |
//! | `he`     | N(0, 2 / fan_in)                       | ReLU (He et al. 2015; the report's CNN) |

use crate::linalg::Scalar;
use crate::rng::Rng;

/// Initialisation scheme for weight tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    Normal,
    Xavier,
    He,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::Normal => "normal",
            Init::Xavier => "xavier",
            Init::He => "he",
        }
    }
}

/// Fills `w` (a weight tensor with the given fans) by `scheme`.
pub fn fill<T: Scalar>(w: &mut [T], scheme: Init, std: f64, fan_in: usize, fan_out: usize, rng: &mut Rng) {
    match scheme {
        Init::Normal => w.iter_mut().for_each(|v| *v = T::of(std * rng.normal())),
        Init::Xavier => {
            let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
            w.iter_mut().for_each(|v| *v = T::of(rng.uniform(-a, a)));
        }
        Init::He => {
            let s = (2.0 / fan_in as f64).sqrt();
            w.iter_mut().for_each(|v| *v = T::of(s * rng.normal()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_of(w: &[f64]) -> f64 {
        (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt()
    }

    #[test]
    fn scales_match_their_formulas() {
        let mut rng = Rng::new(9, 0);
        let mut w = vec![0.0f64; 100_000];
        fill(&mut w, Init::Normal, 0.01, 784, 256, &mut rng);
        assert!((std_of(&w) - 0.01).abs() < 2e-4);
        fill(&mut w, Init::He, 0.0, 49, 10, &mut rng);
        assert!((std_of(&w) - (2.0f64 / 49.0).sqrt()).abs() < 3e-3);
        fill(&mut w, Init::Xavier, 0.0, 784, 256, &mut rng);
        let a = (6.0f64 / 1040.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= a));
        assert!((std_of(&w) - a / 3f64.sqrt()).abs() < 1e-3);
    }
}
