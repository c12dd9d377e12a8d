"""Classify the bundled MNIST digits (4,000 train / 1,000 test) with a small CNN: 3x3 convolutions,
strided convolutions instead of pooling, ReLU, a fused Linear+ReLU head; random +-2 pixel shifts
as augmentation.

    python examples/cnn_mnist.py [--epochs N] [--train-size N] [--threads N]

Prints ``test accuracy: 0.98xx`` and the training time.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),   # 28x28 -> 14x14
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),   # 14x14 -> 7x7
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128, activation="relu"),         # bias + ReLU fused into the GEMM
        nn.Dropout(0.3),
        nn.Linear(128, 10),
    )


def shift_batch(rng: np.random.Generator, xb: np.ndarray, max_shift: int = 2) -> np.ndarray:
    """Each image moved by up to ``max_shift`` pixels in each direction (zero fill)."""
    n = xb.shape[0]
    padded = np.zeros((n, 1, 28 + 2 * max_shift, 28 + 2 * max_shift), dtype=xb.dtype)
    padded[:, :, max_shift:max_shift + 28, max_shift:max_shift + 28] = xb
    dy, dx = rng.integers(0, 2 * max_shift + 1, (2, n))
    out = np.empty_like(xb)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28]
    return out


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    correct = 0
    with nnfast.no_grad():
        for i in range(0, len(X), 500):
            logits = model(nnfast.tensor(X[i:i + 500])).numpy()
            correct += int((logits.argmax(1) == y[i:i + 500]).sum())
    model.train()
    return correct / len(X)


def main(epochs: int = 15, train_size: int = 4000, batch_size: int = 64, seed: int = 0,
         verbose: bool = True) -> float:
    nnfast.manual_seed(seed)
    rng = np.random.default_rng(seed)
    Xtr, ytr, Xte, yte = nnfast.datasets.mnist_5k(flatten=False)
    Xtr, ytr = Xtr[:train_size, None], ytr[:train_size]
    Xte = Xte[:, None]
    model = build_model()
    opt = nnfast.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (-(-len(Xtr) // batch_size))
    sched = nnfast.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(Xtr))
        total = 0.0
        for i in range(0, len(Xtr), batch_size):
            idx = order[i:i + batch_size]
            xb = nnfast.tensor(shift_batch(rng, Xtr[idx]))
            loss = F.cross_entropy(model(xb), nnfast.tensor(ytr[idx]), label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if verbose:
            print(f"epoch {epoch + 1:2d}  loss {total / len(Xtr):.4f}  test acc {accuracy(model, Xte, yte):.4f}  "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
    acc = accuracy(model, Xte, yte)
    if verbose:
        print(f"test accuracy: {acc:.4f}")
        print(f"train time: {time.perf_counter() - t0:.1f} s ({nnfast.get_num_threads()} threads)")
    return acc


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--train-size", type=int, default=4000)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        nnfast.set_num_threads(args.threads)
    main(args.epochs, args.train_size)
