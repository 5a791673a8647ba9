//! Checkpoints in the safetensors format, with PyTorch's tensor names and
//! layouts, so that `model.load_state_dict(safetensors.torch.load_file(path))`
//! works on the matching `nn.Sequential` (see docs/guide.md).
//!
//! Metadata (all strings, as the format requires): `format` = "scratchnet",
//! `format_version`, `model` (a JSON [`ModelSpec`]), `dataset`, `normalize`,
//! `normalize_mean`, `normalize_std`, and optionally `config` and `metrics`
//! (JSON). Loading checks every one of them and every tensor's dtype and shape.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::atomic::write_atomic;
use crate::data::batches::Normalize;
use crate::data::mnist::Dataset;
use crate::models::ModelSpec;

/// Name written in the `format` metadata field.
pub const FORMAT: &str = "scratchnet";
/// Prefix of the extra tensors a resume checkpoint may hold.
pub const EXTRA_PREFIX: &str = "optimizer.";

/// Version of the metadata layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A model's parameters and what is needed to use them.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub spec: ModelSpec,
    /// Flat parameters in `spec.layout()` order.
    pub params: Vec<f32>,
    pub dataset: Dataset,
    pub normalize: Normalize,
    /// The run's configuration (JSON), if known.
    pub config: Option<String>,
    /// Final metrics (JSON), if known.
    pub metrics: Option<String>,
    /// Where an unfinished run stopped (JSON), in resume checkpoints.
    pub resume: Option<String>,
    /// Further f32 vectors stored beside the parameters in resume checkpoints
    /// (the optimiser's state), named `optimizer.*`.
    pub extra: Vec<(String, Vec<f32>)>,
}

/// Writes `ckpt` to `path` atomically.
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<()> {
    let layout = ckpt.spec.layout();
    anyhow::ensure!(
        layout.len() == ckpt.params.len(),
        "parameter count does not match the model"
    );
    let bytes: Vec<u8> = ckpt.params.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut views = Vec::new();
    for (spec, range) in layout.ranges() {
        let view = TensorView::new(
            Dtype::F32,
            spec.shape.clone(),
            &bytes[range.start * 4..range.end * 4],
        )
        .map_err(|e| anyhow!("{e}"))?;
        views.push((spec.name.clone(), view));
    }
    anyhow::ensure!(
        ckpt.extra.iter().all(|(name, _)| name.starts_with(EXTRA_PREFIX)),
        "extra tensors must be named {EXTRA_PREFIX}*"
    );
    let extra_bytes: Vec<Vec<u8>> = ckpt
        .extra
        .iter()
        .map(|(_, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    for ((name, values), b) in ckpt.extra.iter().zip(&extra_bytes) {
        let view = TensorView::new(Dtype::F32, vec![values.len()], b).map_err(|e| anyhow!("{e}"))?;
        views.push((name.clone(), view));
    }
    let (mean, std) = ckpt.normalize.constants();
    let mut meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("format_version".to_string(), FORMAT_VERSION.to_string()),
        ("model".to_string(), serde_json::to_string(&ckpt.spec)?),
        ("dataset".to_string(), ckpt.dataset.dir_name().to_string()),
        ("normalize".to_string(), ckpt.normalize.name().to_string()),
        ("normalize_mean".to_string(), mean.to_string()),
        ("normalize_std".to_string(), std.to_string()),
    ]);
    if let Some(c) = &ckpt.config {
        meta.insert("config".to_string(), c.clone());
    }
    if let Some(m) = &ckpt.metrics {
        meta.insert("metrics".to_string(), m.clone());
    }
    if let Some(r) = &ckpt.resume {
        meta.insert("resume".to_string(), r.clone());
    }
    let file = safetensors::serialize(views, Some(meta)).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    write_atomic(path, &file)
}

/// The largest checkpoint file read: the largest model's parameters
/// (`models::LIMITS`), an optimiser's two moments and room for metadata.
pub const MAX_FILE_BYTES: u64 = (crate::models::LIMITS.params as u64) * 4 * 3 + (64 << 20);

/// Reads and checks the checkpoint at `path` (a regular file of at most
/// [`MAX_FILE_BYTES`]).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = crate::atomic::read_bounded(path, MAX_FILE_BYTES)
        .with_context(|| format!("{}: cannot read the checkpoint", path.display()))?;
    from_bytes(&bytes).with_context(|| format!("{}: not a usable scratchnet checkpoint", path.display()))
}

/// Parses and checks checkpoint bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("not a valid safetensors file: {e}"))?;
    let tensors =
        SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a valid safetensors file: {e}"))?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);
    let field = |key: &str| {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("metadata field `{key}` is missing"))
    };
    match meta.get("format") {
        Some(f) if f == FORMAT => {}
        Some(f) => bail!("metadata says format `{f}`, expected `{FORMAT}`"),
        None => bail!("no `format` metadata: this safetensors file was not written by scratchnet"),
    }
    let version: u32 = field("format_version")?
        .parse()
        .map_err(|_| anyhow!("format_version `{}` is not a number", meta["format_version"]))?;
    if version > FORMAT_VERSION {
        bail!(
            "written by a newer scratchnet (format version {version}); this build reads version {FORMAT_VERSION}. Upgrade scratchnet."
        );
    }
    let spec: ModelSpec = serde_json::from_str(field("model")?)
        .map_err(|e| anyhow!("metadata field `model` is not a known model: {e}"))?;
    let dataset = match field("dataset")? {
        "mnist" => Dataset::Mnist,
        "fashion-mnist" => Dataset::FashionMnist,
        other => bail!("metadata names an unknown dataset `{other}`"),
    };
    let normalize = match field("normalize")? {
        "standard" => Normalize::Standard,
        "unit" => Normalize::Unit,
        "symmetric" => Normalize::Symmetric,
        other => bail!("metadata names an unknown normalisation `{other}`"),
    };

    // The spec's sizes are checked before anything is allocated from them,
    // and the tensors' shapes before their values are copied.
    spec.validate()
        .map_err(|e| anyhow!("metadata field `model` describes an impossible model: {e}"))?;
    let layout = spec.layout();
    for (want, _) in layout.ranges() {
        if tensors.tensor(&want.name).is_err() {
            bail!(
                "tensor `{}` is missing (a {} needs {:?} of shape {:?})",
                want.name,
                spec.describe(),
                want.name,
                want.shape
            );
        }
    }
    if layout.len().saturating_mul(4) > bytes.len() {
        bail!(
            "the metadata describes a {} with {} parameters, but the file holds only {} bytes",
            spec.describe(),
            layout.len(),
            bytes.len()
        );
    }
    for (want, _) in layout.ranges() {
        let t = tensors.tensor(&want.name).map_err(|_| {
            anyhow!(
                "tensor `{}` is missing (a {} needs {:?} of shape {:?})",
                want.name,
                spec.describe(),
                want.name,
                want.shape
            )
        })?;
        if t.dtype() != Dtype::F32 {
            bail!("tensor `{}` has dtype {:?}, expected F32", want.name, t.dtype());
        }
        if t.shape() != want.shape.as_slice() {
            bail!(
                "tensor `{}` has shape {:?}, expected {:?} for a {}",
                want.name,
                t.shape(),
                want.shape,
                spec.describe()
            );
        }
    }
    let mut params = Vec::with_capacity(layout.len());
    for (want, _) in layout.ranges() {
        let t = tensors.tensor(&want.name).map_err(|e| anyhow!("{e}"))?;
        let start = params.len();
        params.extend(
            t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        if let Some(i) = params[start..].iter().position(|v| !v.is_finite()) {
            bail!(
                "tensor `{}` holds a non-finite value ({} at index {i}): the model cannot be used",
                want.name,
                params[start + i]
            );
        }
    }
    let mut extra = Vec::new();
    for name in tensors.names() {
        if layout.tensors.iter().any(|t| t.name == name) {
            continue;
        }
        if !(name.starts_with(EXTRA_PREFIX) && meta.contains_key("resume")) {
            bail!("unexpected tensor `{name}` for a {}", spec.describe());
        }
        let t = tensors.tensor(name).map_err(|e| anyhow!("{e}"))?;
        if t.dtype() != Dtype::F32 || t.shape().len() != 1 {
            bail!("tensor `{name}` must be a 1-D F32 vector");
        }
        let values = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        extra.push((name.to_string(), values));
    }
    extra.sort_by(|a: &(String, Vec<f32>), b| a.0.cmp(&b.0));
    Ok(Checkpoint {
        spec,
        params,
        dataset,
        normalize,
        config: meta.get("config").cloned(),
        metrics: meta.get("metrics").cloned(),
        resume: meta.get("resume").cloned(),
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let spec = ModelSpec::Mlp {
            input: 4,
            hidden: 3,
            classes: 10,
            activation: Default::default(),
        };
        let n = spec.layout().len();
        Checkpoint {
            spec,
            params: (0..n).map(|i| i as f32 * 0.25 - 3.0).collect(),
            dataset: Dataset::Mnist,
            normalize: Normalize::Standard,
            config: Some("{\"a\":1}".into()),
            metrics: None,
            resume: None,
            extra: Vec::new(),
        }
    }

    #[test]
    fn cnn_round_trip_and_damaged_model_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        let spec = ModelSpec::Cnn {
            side: 28,
            kernel: 5,
            filters: 2,
            conv_bias: true,
            classes: 10,
            pool: true,
            pool_size: 3,
        };
        let n = spec.layout().len();
        assert_eq!(n, 2 * 25 + 2 + 10 * 2 * 8 * 8 + 10);
        let c = Checkpoint {
            spec,
            params: (0..n).map(|i| i as f32).collect(),
            ..sample()
        };
        save(&p, &c).unwrap();
        assert_eq!(load(&p).unwrap(), c);
        // A damaged model description is reported as such.
        let bytes = std::fs::read(&p).unwrap();
        let relabelled = replace(&bytes, br#"\"conv_bias\":true"#, br#"\"conv_bias\":fals"#);
        std::fs::write(&p, relabelled).unwrap();
        let e = format!("{:#}", load(&p).unwrap_err());
        assert!(e.contains("c.safetensors") && e.contains("model"), "{e}");
    }

    #[test]
    fn resume_extras_round_trip_and_are_refused_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.safetensors");
        let mut c = sample();
        c.resume = Some("{}".into());
        c.extra = vec![
            ("optimizer.m".into(), vec![1.0, 2.0]),
            ("optimizer.v".into(), vec![3.0]),
        ];
        save(&p, &c).unwrap();
        assert_eq!(load(&p).unwrap(), c);
        // Without resume metadata the same tensors are unexpected.
        c.resume = None;
        save(&p, &c).unwrap();
        let e = format!("{:#}", load(&p).unwrap_err());
        assert!(e.contains("unexpected tensor `optimizer."), "{e}");
    }

    /// An MLP's tensors under metadata that says CNN: the loader names the
    /// tensor the CNN needs and does not find.
    #[test]
    fn a_checkpoint_of_the_other_model_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kind.safetensors");
        let mlp = sample();
        let bytes: Vec<u8> = mlp.params.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut views = Vec::new();
        for (t, r) in mlp.spec.layout().ranges() {
            views.push((
                t.name.clone(),
                TensorView::new(Dtype::F32, t.shape.clone(), &bytes[r.start * 4..r.end * 4]).unwrap(),
            ));
        }
        let cnn = ModelSpec::cnn(7, 1);
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), "1".to_string()),
            ("model".to_string(), serde_json::to_string(&cnn).unwrap()),
            ("dataset".to_string(), "mnist".to_string()),
            ("normalize".to_string(), "unit".to_string()),
        ]);
        std::fs::write(&p, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
        let e = format!("{:#}", load(&p).unwrap_err());
        assert!(
            e.contains("kind.safetensors")
                && e.contains("`conv.weight` is missing")
                && e.contains("[1, 1, 7, 7]"),
            "{e}"
        );
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        let c = sample();
        save(&p, &c).unwrap();
        assert_eq!(load(&p).unwrap(), c);
    }

    /// `bytes` with the first occurrence of `from` replaced by `to` (same length).
    fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern present");
        let mut out = bytes.to_vec();
        out[at..at + to.len()].copy_from_slice(to);
        out
    }

    #[test]
    fn bad_files_get_clear_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        save(&p, &sample()).unwrap();
        let good = std::fs::read(&p).unwrap();
        let check = |bytes: &[u8], needle: &str| {
            std::fs::write(&p, bytes).unwrap();
            let e = format!("{:#}", load(&p).unwrap_err());
            assert!(e.contains("m.safetensors") && e.contains(needle), "{needle}: {e}");
        };
        check(&good[..good.len() - 5], "not a valid safetensors");
        check(b"hello", "not a valid safetensors");
        check(&u64::MAX.to_le_bytes(), "not a valid safetensors");
        // Tensor of the wrong shape: a checkpoint of another hidden size, relabelled.
        check(
            &replace(&good, br#"\"hidden\":3"#, br#"\"hidden\":5"#),
            "expected [5, 4]",
        );
        check(
            &replace(&good, br#""format_version":"1""#, br#""format_version":"9""#),
            "newer scratchnet",
        );
        check(
            &replace(&good, br#""format":"scratchnet""#, br#""format":"scratchnot""#),
            "expected `scratchnet`",
        );
        check(
            &replace(&good, b"hidden.bias", b"hidden.bia2"),
            "`hidden.bias` is missing",
        );
        check(
            &replace(&good, br#""F32""#, br#""I32""#),
            "dtype I32, expected F32",
        );
    }
}
