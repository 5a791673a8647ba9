"""Reference timings: the report's two models trained the way its NumPy code does it.

MLP: x·W1 + b1 -> sigmoid -> ·W2 + b2 -> softmax, summed gradients, SGD.
CNN: im2col by as_strided, one matmul per direction, ReLU, FC, softmax, averaged gradients, SGD.
Prints one JSON line per model: seconds per epoch (min and median of the timed epochs).
The data is read from the MNIST IDX files in $SCRATCHNET_DATA_DIR/mnist (or --data-dir).
"""
import argparse, gzip, json, os, time
import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    def find(stem):
        for name in (stem + ".gz", stem):
            p = os.path.join(data_dir, name)
            if os.path.exists(p):
                return p
        raise SystemExit(f"{stem} not found in {data_dir}")
    x = read_idx(find("train-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find("train-labels-idx1-ubyte")).astype(np.int64)
    return x, y


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mlp_epoch(x, y, params, lr, batch, rng):
    w1, b1, w2, b2 = params
    order = rng.permutation(len(x))
    for s in range(0, len(x), batch):
        idx = order[s:s + batch]
        xb = x[idx].reshape(len(idx), -1)
        yb = np.eye(10, dtype=np.float32)[y[idx]]
        h = 1.0 / (1.0 + np.exp(-(xb @ w1 + b1)))
        p = softmax(h @ w2 + b2)
        d2 = p - yb
        dh = (d2 @ w2.T) * h * (1 - h)
        w2 -= lr * (h.T @ d2); b2 -= lr * d2.sum(0)
        w1 -= lr * (xb.T @ dh); b1 -= lr * dh.sum(0)


def cnn_epoch(x, y, params, lr, batch, k, rng):
    filt, fcw, fcb = params
    f = filt.shape[0]
    order = rng.permutation(len(x))
    for s in range(0, len(x), batch):
        idx = order[s:s + batch]
        xb = np.ascontiguousarray(x[idx])  # (B, 28, 28)
        bsz, oh = len(idx), 28 - k + 1
        patches = np.lib.stride_tricks.as_strided(
            xb, shape=(bsz, oh, oh, k, k),
            strides=(xb.strides[0], xb.strides[1], xb.strides[2], xb.strides[1], xb.strides[2]),
            writeable=False).reshape(bsz, oh * oh, k * k)
        conv = np.matmul(patches, filt.reshape(f, -1).T).transpose(0, 2, 1)  # (B, F, OH*OW)
        relu = np.maximum(conv, 0)
        flat = relu.reshape(bsz, -1)
        p = softmax(flat @ fcw + fcb)
        d_logits = (p - np.eye(10, dtype=np.float32)[y[idx]]) / bsz
        d_fcw = flat.T @ d_logits; d_fcb = d_logits.sum(0)
        d_conv = (d_logits @ fcw.T).reshape(conv.shape) * (conv > 0)
        d_filt = np.matmul(d_conv, patches).sum(0).reshape(filt.shape)
        fcw -= lr * d_fcw; fcb -= lr * d_fcb; filt -= lr * d_filt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.path.join(os.environ.get("SCRATCHNET_DATA_DIR", "."), "mnist"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--models", default="mlp256,cnn7x1,cnn7x32")
    args = ap.parse_args()
    x, y = load(args.data_dir)
    rng = np.random.default_rng(0)
    for model in args.models.split(","):
        times = []
        if model.startswith("mlp"):
            h = int(model[3:])
            params = [rng.normal(0, 0.01, (784, h)).astype(np.float32), np.zeros(h, np.float32),
                      rng.normal(0, 0.01, (h, 10)).astype(np.float32), np.zeros(10, np.float32)]
            for _ in range(args.epochs):
                t = time.perf_counter(); mlp_epoch(x, y, params, 0.01, 128, rng); times.append(time.perf_counter() - t)
        else:
            k, f = (int(v) for v in model[3:].split("x"))
            oh = 28 - k + 1
            params = [rng.normal(0, np.sqrt(2 / (k * k)), (f, 1, k, k)).astype(np.float32),
                      rng.normal(0, np.sqrt(2 / (f * oh * oh)), (f * oh * oh, 10)).astype(np.float32),
                      np.zeros(10, np.float32)]
            for _ in range(args.epochs):
                t = time.perf_counter(); cnn_epoch(x, y, params, 0.04, 128, k, rng); times.append(time.perf_counter() - t)
        times.sort()
        print(json.dumps({"reference": "numpy", "model": model, "min": times[0], "median": times[len(times) // 2]}), flush=True)


if __name__ == "__main__":
    main()
