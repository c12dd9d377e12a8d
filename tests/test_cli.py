"""The nnfast command through subprocess: exit codes, output, files."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest


def nnfast_cli(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "nnfast", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def test_help_for_every_command():
    for cmd in ([], ["train"], ["evaluate"], ["predict"], ["bench"], ["info"]):
        r = nnfast_cli(*cmd, "--help")
        assert r.returncode == 0 and "usage" in r.stdout.lower()


def test_info_json():
    r = nnfast_cli("info", "--json")
    assert r.returncode == 0
    info = json.loads(r.stdout)
    for key in ("version", "simd", "openmp", "num_threads", "cuda_compiled", "cuda_available"):
        assert key in info


def test_train_save_evaluate_predict(tmp_path):
    ck = tmp_path / "m.safetensors"
    js = tmp_path / "m.json"
    r = nnfast_cli("train", "--epochs", "3", "--hidden", "64", "--save", str(ck), "--json", str(js))
    assert r.returncode == 0, r.stderr
    assert "epoch   1/3" in r.stdout and "test_accuracy" in r.stdout and "summary" in r.stdout
    metrics = json.loads(js.read_text())
    assert metrics["summary"]["test_accuracy"] > 0.88
    assert len(metrics["history"]["loss"]) == 3
    r = nnfast_cli("evaluate", str(ck), "--json")
    assert r.returncode == 0, r.stderr
    assert abs(json.loads(r.stdout)["accuracy"] - metrics["summary"]["test_accuracy"]) < 1e-9
    X = np.random.default_rng(0).random((5, 784)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "p.npy"
    r = nnfast_cli("predict", str(ck), str(tmp_path / "x.npy"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    preds = np.load(out)
    assert preds.shape == (5,) and preds.min() >= 0 and preds.max() <= 9
    r = nnfast_cli("train", "--epochs", "1", "--hidden", "64", "--resume", str(ck), "--quiet")
    assert r.returncode == 0, r.stderr


def test_train_user_csv_and_regression(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    csv = tmp_path / "d.csv"
    with open(csv, "w") as f:
        f.write("a,b,c,d,label\n")
        for row, lab in zip(X, y):
            f.write(",".join(f"{v:.5f}" for v in row) + f",{lab}\n")
    r = nnfast_cli("train", "--data", str(csv), "--epochs", "15", "--hidden", "16", "--quiet",
                   "--json", str(tmp_path / "o.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o.json").read_text())["summary"]["val_accuracy"] > 0.85
    np.savez(tmp_path / "r.npz", X=X, y=X[:, 0] * 2 - X[:, 2])
    r = nnfast_cli("train", "--data", str(tmp_path / "r.npz"), "--task", "regression", "--epochs", "30", "--lr", "0.01",
                   "--hidden", "16", "--quiet", "--json", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["val_rmse"] < 1.0


@pytest.mark.parametrize("args, needle", [
    (["train", "--data", "/nonexistent.csv"], "not found"),
    (["train", "--hidden", "a,b"], "--hidden"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--dropout", "1.5"], "--dropout"),
    (["evaluate", "/nonexistent.ckpt"], "not found"),
    (["train", "--threads", "-1"], "--threads"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--label-smoothing", "2"], "--label-smoothing"),
    (["train", "--momentum", "-1", "--optimizer", "sgd"], "--momentum"),
    (["train", "--weight-decay", "-1"], "--weight-decay"),
    (["train", "--val-split", "1.5"], "--val-split"),
    (["train", "--save", "/nonexistent/dir/m.safetensors"], "does not exist"),
    (["train", "--json", "/nonexistent/dir/m.json"], "does not exist"),
    (["predict", "/nonexistent.ckpt", "x.npy", "--out", "/nonexistent/dir/p.npy"], "does not exist"),
])
def test_user_errors_are_one_line(args, needle):
    r = nnfast_cli(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_nan_in_data_is_reported(tmp_path):
    X = np.ones((10, 3))
    X[4, 1] = np.nan
    np.savez(tmp_path / "bad.npz", X=X, y=np.zeros(10, int))
    r = nnfast_cli("train", "--data", str(tmp_path / "bad.npz"))
    assert r.returncode == 2 and "NaN" in r.stderr and "Traceback" not in r.stderr


def test_unknown_option_value():
    r = nnfast_cli("train", "--optimizer", "nope")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_version_and_help_defaults():
    r = nnfast_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("nnfast ")
    r = nnfast_cli("train", "--help")
    for needle in ("(default: 15)", "(default: adam)", "(default: 0.001)", "(default: 64)", "(default: 256,128)"):
        assert needle in " ".join(r.stdout.split()), needle
    assert "(default: None)" not in r.stdout
