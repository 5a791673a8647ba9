//! Exporting a trained model as an ONNX graph (opset 13), so that any ONNX
//! runtime computes the same logits as scratchnet.
//!
//! - MLP: `input` [N, in] → Gemm(W₁ᵀ, b₁) → Sigmoid | Relu | Tanh → Gemm(W₂ᵀ, b₂) → `logits` [N, C].
//! - CNN: `input` [N, 1, S, S] → Conv(W, b) → Relu → (MaxPool P×P, stride P) → Flatten →
//!   Gemm(Wᵀ, b) → `logits` [N, C]. Dropout is the identity at inference and has no node.
//!
//! The tensors keep scratchnet's (and PyTorch's) names and layouts, so
//! `hidden.weight` [H, in] is used with `transB = 1`, and the CNN's flatten
//! order (filter, row, column) is ONNX's NCHW flatten. The input is
//! normalised as the model was trained; with `raw_pixels` the graph starts
//! with (p / 255 − mean) / std itself and takes pixels 0–255, computing the
//! same f32 values as scratchnet's normalisation table. With `softmax` a
//! Softmax over the classes follows and the output is `probabilities`.
//! `metadata_props` carries the normalisation, the model spec, the dataset
//! and the training metrics.

pub mod proto;

use std::path::Path;

use anyhow::{Result, bail};
use prost::Message;

use crate::checkpoint::Checkpoint;
use crate::models::{Activation, ModelSpec};
use proto::*;

/// The operator-set version the graph is written for.
pub const OPSET: i64 = 13;
/// ONNX IR version 8 (ONNX 1.10), which reads opset 13.
pub const IR_VERSION: i64 = 8;

/// Options of an export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnnxOptions {
    /// Append a Softmax: the output is `probabilities` instead of `logits`.
    pub softmax: bool,
    /// Take pixels 0–255 and normalise inside the graph.
    pub raw_pixels: bool,
}

/// The graph's output name for `options`.
pub fn output_name(options: OnnxOptions) -> &'static str {
    if options.softmax {
        "probabilities"
    } else {
        "logits"
    }
}

/// Builds the ONNX model of a checkpoint.
pub fn onnx_model(ckpt: &Checkpoint, options: OnnxOptions) -> Result<ModelProto> {
    ckpt.spec.validate().map_err(anyhow::Error::msg)?;
    let layout = ckpt.spec.layout();
    if ckpt.params.len() != layout.len() {
        bail!(
            "the checkpoint holds {} parameters, its model needs {}",
            ckpt.params.len(),
            layout.len()
        );
    }
    if let Some(bad) = ckpt.params.iter().position(|v| !v.is_finite()) {
        bail!("parameter {bad} is not finite; such a model cannot be exported");
    }
    let mut g = Builder::default();
    for (spec, range) in layout.ranges() {
        g.tensor(&spec.name, &spec.shape, &ckpt.params[range]);
    }
    let (input_shape, classes): (Vec<Dim>, usize) = match ckpt.spec {
        ModelSpec::Mlp { input, classes, .. } => (vec![Dim::Batch, Dim::Fixed(input)], classes),
        ModelSpec::Cnn { side, classes, .. } => (
            vec![Dim::Batch, Dim::Fixed(1), Dim::Fixed(side), Dim::Fixed(side)],
            classes,
        ),
    };
    let mut x = "input".to_string();
    if options.raw_pixels {
        let (mean, std) = ckpt.normalize.constants();
        g.tensor("normalize.scale", &[], &[255.0]);
        g.tensor("normalize.mean", &[], &[mean]);
        g.tensor("normalize.std", &[], &[std]);
        x = g.node("Div", &[&x, "normalize.scale"], vec![]);
        x = g.node("Sub", &[&x, "normalize.mean"], vec![]);
        x = g.node("Div", &[&x, "normalize.std"], vec![]);
    }
    match ckpt.spec {
        ModelSpec::Mlp { activation, .. } => {
            let z = g.node(
                "Gemm",
                &[&x, "hidden.weight", "hidden.bias"],
                vec![int("transB", 1)],
            );
            let op = match activation {
                Activation::Sigmoid => "Sigmoid",
                Activation::Relu => "Relu",
                Activation::Tanh => "Tanh",
            };
            let h = g.node(op, &[&z], vec![]);
            x = g.node(
                "Gemm",
                &[&h, "output.weight", "output.bias"],
                vec![int("transB", 1)],
            );
        }
        ModelSpec::Cnn {
            kernel,
            conv_bias,
            pool,
            pool_size,
            ..
        } => {
            let k = kernel as i64;
            let inputs: Vec<&str> = if conv_bias {
                vec![&x, "conv.weight", "conv.bias"]
            } else {
                vec![&x, "conv.weight"]
            };
            let z = g.node(
                "Conv",
                &inputs,
                vec![
                    ints("kernel_shape", &[k, k]),
                    ints("strides", &[1, 1]),
                    ints("pads", &[0, 0, 0, 0]),
                ],
            );
            let mut h = g.node("Relu", &[&z], vec![]);
            if pool {
                let p = pool_size as i64;
                h = g.node(
                    "MaxPool",
                    &[&h],
                    vec![ints("kernel_shape", &[p, p]), ints("strides", &[p, p])],
                );
            }
            let flat = g.node("Flatten", &[&h], vec![int("axis", 1)]);
            x = g.node("Gemm", &[&flat, "fc.weight", "fc.bias"], vec![int("transB", 1)]);
        }
    }
    if options.softmax {
        x = g.node("Softmax", &[&x], vec![int("axis", 1)]);
    }
    // The last node's output is renamed to the graph's output.
    let out = output_name(options);
    if let Some(last) = g.nodes.last_mut() {
        last.output = vec![out.to_string()];
    }
    let _ = x;
    let (mean, std) = ckpt.normalize.constants();
    let mut metadata = vec![
        entry("normalize", ckpt.normalize.name()),
        entry("normalize.mean", &mean.to_string()),
        entry("normalize.std", &std.to_string()),
        entry(
            "input",
            if options.raw_pixels {
                "pixels 0–255"
            } else {
                "(pixels / 255 − normalize.mean) / normalize.std"
            },
        ),
        entry("dataset", ckpt.dataset.display_name()),
        entry("class_names", &ckpt.dataset.class_names().join(",")),
        entry("model", &serde_json::to_string(&ckpt.spec)?),
        entry("model.description", &ckpt.spec.describe()),
    ];
    if let Some(m) = &ckpt.metrics {
        metadata.push(entry("metrics", m));
    }
    if let Some(c) = &ckpt.config {
        metadata.push(entry("training", c));
    }
    let graph = GraphProto {
        node: g.nodes,
        name: "scratchnet".into(),
        initializer: g.initializers,
        doc_string: ckpt.spec.describe(),
        input: vec![value("input", &input_shape)],
        output: vec![value(out, &[Dim::Batch, Dim::Fixed(classes)])],
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "scratchnet".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: format!(
            "{} trained on {}",
            ckpt.spec.describe(),
            ckpt.dataset.display_name()
        ),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: metadata,
    })
}

/// Writes the ONNX model of `ckpt` to `path` (atomically).
pub fn write_onnx(ckpt: &Checkpoint, options: OnnxOptions, path: &Path) -> Result<()> {
    let model = onnx_model(ckpt, options)?;
    crate::atomic::write_atomic(path, &model.encode_to_vec())
}

/// A dimension of a graph input or output.
enum Dim {
    /// The batch, free (`N`).
    Batch,
    Fixed(usize),
}

fn value(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Batch => DimensionValue::DimParam("N".into()),
                Dim::Fixed(n) => DimensionValue::DimValue(*n as i64),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value: value.into(),
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        ints: Vec::new(),
        r#type: ATTRIBUTE_INT,
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: 0,
        ints: v.to_vec(),
        r#type: ATTRIBUTE_INTS,
    }
}

/// Accumulates a graph's nodes and constant tensors.
#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Builder {
    fn tensor(&mut self, name: &str, shape: &[usize], values: &[f32]) {
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
    }

    /// Adds a node; returns the name of its output.
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let name = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.into(),
            attribute,
            domain: String::new(),
        });
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batches::Normalize;
    use crate::data::mnist::Dataset;

    fn checkpoint(spec: ModelSpec) -> Checkpoint {
        let n = spec.layout().len();
        Checkpoint {
            spec,
            params: (0..n).map(|i| (i % 7) as f32 * 0.01).collect(),
            dataset: Dataset::Mnist,
            normalize: Normalize::Standard,
            config: None,
            metrics: Some("{\"test_accuracy\":0.9}".into()),
            resume: None,
            extra: Vec::new(),
        }
    }

    /// The encoded file decodes to the same graph: the nodes in order, every
    /// parameter as an initializer of its shape, one input and one output.
    #[test]
    fn graphs_round_trip_through_protobuf() {
        let cnn = ModelSpec::Cnn {
            side: 28,
            kernel: 5,
            filters: 3,
            conv_bias: true,
            classes: 10,
            pool: true,
            pool_size: 3,
        };
        let opts = OnnxOptions {
            softmax: true,
            raw_pixels: true,
        };
        let model = onnx_model(&checkpoint(cnn), opts).unwrap();
        let back = ModelProto::decode(model.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, model);
        let g = back.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "Div", "Sub", "Div", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Softmax"
            ]
        );
        assert_eq!(g.output[0].name, "probabilities");
        assert_eq!(g.node.last().unwrap().output, ["probabilities"]);
        let fc = g.initializer.iter().find(|t| t.name == "fc.weight").unwrap();
        assert_eq!(fc.dims, [10, 3 * 8 * 8]);
        assert_eq!(fc.raw_data.len(), 4 * 10 * 3 * 8 * 8);
        assert!(
            back.metadata_props
                .iter()
                .any(|e| e.key == "normalize" && e.value == "standard")
        );

        let mlp = ModelSpec::Mlp {
            input: 784,
            hidden: 16,
            classes: 10,
            activation: Activation::Tanh,
        };
        let g = onnx_model(&checkpoint(mlp), OnnxOptions::default())
            .unwrap()
            .graph
            .unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Gemm", "Tanh", "Gemm"]);
        assert_eq!(g.output[0].name, "logits");
    }

    #[test]
    fn inconsistent_checkpoints_are_refused() {
        let mut c = checkpoint(ModelSpec::mlp(8));
        c.params.pop();
        assert!(
            onnx_model(&c, OnnxOptions::default())
                .unwrap_err()
                .to_string()
                .contains("parameters")
        );
        let mut c = checkpoint(ModelSpec::mlp(8));
        c.params[3] = f32::NAN;
        assert!(
            onnx_model(&c, OnnxOptions::default())
                .unwrap_err()
                .to_string()
                .contains("not finite")
        );
    }
}
