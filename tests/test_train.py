"""Training on the bundled digits: the acceptance runs of the foundation and layer issues."""
import json
import subprocess
import sys

import numpy as np

import nnfast
import nnfast.nn as nn


def test_mnist_5k_split_is_fixed():
    a = nnfast.datasets.mnist_5k()
    b = nnfast.datasets.mnist_5k()
    assert a.X_train.shape == (4000, 784) and a.X_test.shape == (1000, 784)
    assert np.array_equal(a.y_test, b.y_test) and a.X_train.max() <= 1.0
    assert set(np.bincount(a.y_train)) != {400}  # shuffled, not a per-class slice


def test_small_mlp_reaches_90_percent_in_seconds():
    nnfast.manual_seed(0)
    X, y, Xte, yte = nnfast.datasets.mnist_5k()
    model = nn.Sequential(nn.Linear(784, 128, activation="relu"), nn.Linear(128, 10))
    opt = nnfast.optim.Adam(model.parameters(), lr=2e-3)
    h = nnfast.fit(model, nn.CrossEntropyLoss(), opt, (X, y), (Xte, yte), epochs=3, batch_size=64,
                   metrics=["accuracy"], verbose=False)
    assert h["val_accuracy"][-1] >= 0.90
    assert sum(h["time"]) < 30


def test_regularized_cli_run_reaches_95_percent(tmp_path):
    out = tmp_path / "m.json"
    r = subprocess.run([sys.executable, "-m", "nnfast", "train", "--hidden", "512,256", "--dropout", "0.2",
                        "--label-smoothing", "0.1", "--optimizer", "adamw", "--schedule", "onecycle", "--quiet",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["summary"]["test_accuracy"] >= 0.95
