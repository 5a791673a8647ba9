"""Reference timings: the report's two models trained with PyTorch on the CPU.

MLP: nn.Linear(784, H) -> sigmoid -> nn.Linear(H, 10), cross-entropy summed over the batch, SGD lr 0.01.
CNN: nn.Conv2d(1, F, K, bias=False) -> ReLU -> flatten -> nn.Linear(F*(29-K)^2, 10), mean cross-entropy, SGD lr 0.04.
The training set is loaded once into tensors; each epoch shuffles with torch.randperm and indexes batches.
Prints one JSON line per model: seconds per epoch (min and median of the timed epochs).
The data is read from the MNIST IDX files in $SCRATCHNET_DATA_DIR/mnist (or --data-dir).
"""
import argparse, json, os, time

import torch
from torch import nn

from numpy_reference import load


def make(model):
    if model.startswith("mlp"):
        h = int(model[3:])
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, h), nn.Sigmoid(), nn.Linear(h, 10))
        return net, nn.CrossEntropyLoss(reduction="sum"), 0.01
    k, f = (int(v) for v in model[3:].split("x"))
    oh = 28 - k + 1
    net = nn.Sequential(nn.Conv2d(1, f, k, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(f * oh * oh, 10))
    return net, nn.CrossEntropyLoss(), 0.04


def epoch(net, loss_fn, opt, x, y, batch):
    order = torch.randperm(len(x))
    for s in range(0, len(x), batch):
        idx = order[s:s + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.path.join(os.environ.get("SCRATCHNET_DATA_DIR", "."), "mnist"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--models", default="mlp256,cnn7x1,cnn7x32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    xn, yn = load(args.data_dir)
    x = torch.from_numpy(xn).unsqueeze(1).contiguous()  # (N, 1, 28, 28), float32 in [0, 1]
    y = torch.from_numpy(yn)
    for model in args.models.split(","):
        net, loss_fn, lr = make(model)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        times = []
        for _ in range(args.epochs):
            t = time.perf_counter()
            epoch(net, loss_fn, opt, x, y, 128)
            times.append(time.perf_counter() - t)
        times.sort()
        print(json.dumps({"reference": "pytorch", "model": model, "threads": args.threads,
                          "min": times[0], "median": times[len(times) // 2]}), flush=True)


if __name__ == "__main__":
    main()
