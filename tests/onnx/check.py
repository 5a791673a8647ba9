"""Runs an exported scratchnet model in onnxruntime (and, where PyTorch is
installed, the checkpoint through `load_state_dict`) and compares with
scratchnet's own logits. Called by tests/onnx_export.rs.

usage: check.py MODEL.onnx INPUTS.f32 N SHAPE LOGITS.f32 LABELS.u8 [CHECKPOINT.safetensors SPEC.json]
SHAPE is the per-sample input shape, comma-separated ("784" or "1,28,28").
Prints one JSON object: the largest difference to scratchnet's logits
(|a − b| / max(1, |b|)), the number of correct predictions, and the same for
PyTorch when it ran.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, inputs, n, shape, logits_path, labels_path = sys.argv[1:7]
    n = int(n)
    shape = [int(s) for s in shape.split(",")]
    x = np.fromfile(inputs, dtype="<f4").reshape([n] + shape)
    want = np.fromfile(logits_path, dtype="<f4").reshape(n, -1)
    labels = np.fromfile(labels_path, dtype=np.uint8)
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    got = session.run(None, {inp.name: x})[0]
    result = {
        "input": inp.name,
        "output": out.name,
        "opset": model.opset_import[0].version,
        "metadata": {p.key: p.value for p in model.metadata_props},
        "max_difference": float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))),
        "correct": int(np.sum(np.argmax(got, axis=1) == labels)),
    }
    if len(sys.argv) > 8:
        result["torch"] = torch_check(sys.argv[7], json.loads(open(sys.argv[8]).read()), x, want, labels)
    print(json.dumps(result))


def torch_check(checkpoint, spec, x, want, labels):
    """The load_state_dict path of docs/guide.md, where PyTorch is installed."""
    try:
        from collections import OrderedDict

        import torch
        import torch.nn as nn
        from safetensors.torch import load_file
    except ImportError as e:
        return {"available": False, "why": str(e)}
    if spec["kind"] == "mlp":
        act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}[spec.get("activation", "sigmoid")]()
        model = nn.Sequential(OrderedDict(
            hidden=nn.Linear(spec["input"], spec["hidden"]), act=act, output=nn.Linear(spec["hidden"], spec["classes"])))
    else:
        f, k, side = spec["filters"], spec["kernel"], spec["side"]
        os_ = side + 1 - k
        layers = [("conv", nn.Conv2d(1, f, k, bias=spec["conv_bias"])), ("relu", nn.ReLU())]
        if spec.get("pool"):
            p = spec.get("pool_size", 2)
            layers.append(("pool", nn.MaxPool2d(p)))
            os_ //= p
        layers += [("flatten", nn.Flatten()), ("fc", nn.Linear(f * os_ * os_, spec["classes"]))]
        model = nn.Sequential(OrderedDict(layers))
    model.load_state_dict(load_file(checkpoint))
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    return {
        "available": True,
        "max_difference": float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))),
        "correct": int(np.sum(np.argmax(got, axis=1) == labels)),
    }


if __name__ == "__main__":
    main()
