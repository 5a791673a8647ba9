//! Value parsers for flags: each refuses what cannot work, with the range in
//! its message (clap prints it beside the flag's name; exit 2).

use scratchnet::data::mnist::SIDE;

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
