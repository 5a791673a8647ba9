//! Value parsers for flags: each refuses what cannot work, with the range in
//! its message (clap prints it beside the flag's name; exit 2).

use scratchnet::data::mnist::SIDE;
use scratchnet::models::LIMITS;
use scratchnet::train::{MAX_BATCH, MAX_EPOCHS};

pub fn unit_interval(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("must be in [0, 1), got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

pub fn non_negative_f32(s: &str) -> Result<f32, String> {
    non_negative(s).map(|v| v as f32)
}

pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

pub fn kernel_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(k) if (1..=SIDE).contains(&k) => Ok(k),
        Ok(k) => Err(format!("must be between 1 and {SIDE} (the image side), got {k}")),
        Err(e) => Err(e.to_string()),
    }
}

pub fn learning_rate(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a positive finite number, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a non-negative finite number, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

pub fn batch_size(s: &str) -> Result<usize, String> {
    bounded(s, 1, MAX_BATCH)
}

/// An integer in `lo..=hi`.
pub fn bounded(s: &str, lo: usize, hi: usize) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        Ok(v) => Err(format!("must be between {lo} and {hi}, got {v}")),
        Err(e) => Err(format!("{e} (expected a whole number between {lo} and {hi})")),
    }
}

pub fn epochs(s: &str) -> Result<usize, String> {
    bounded(s, 1, MAX_EPOCHS)
}

pub fn hidden(s: &str) -> Result<usize, String> {
    bounded(s, 1, LIMITS.hidden)
}

pub fn filters(s: &str) -> Result<usize, String> {
    bounded(s, 1, LIMITS.filters)
}

/// Sizes of a gradient check, which costs two forward passes per parameter.
pub fn gradcheck_size(s: &str) -> Result<usize, String> {
    bounded(s, 1, 64)
}

/// Seconds of a time-out: positive, finite, at most a day.
pub fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        Ok(v) => Err(format!(
            "must be a number of seconds above 0 and at most 86400, got {v}"
        )),
        Err(e) => Err(e.to_string()),
    }
}
