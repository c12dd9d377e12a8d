"""Smoke-test the examples (short runs) and the C++-free image writer."""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name, *args, cwd=None):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), *args], capture_output=True,
                       text=True, cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_mnist_mlp():
    out = run_example("mnist_mlp.py", "--epochs", "3")
    acc = float(out.strip().splitlines()[-1].split()[-1])
    assert acc > 0.9


def test_regression():
    out = run_example("regression.py", "--epochs", "15")
    lines = [ln for ln in out.splitlines() if "val rmse" in ln]
    assert len(lines) == 3
    for ln in lines:
        rmse = float(ln.split("val rmse")[1].split()[0])
        baseline = float(ln.split("rmse")[-1].strip(" )"))
        assert rmse < 0.6 * baseline, ln


def test_autoencoder_writes_png(tmp_path):
    out_png = tmp_path / "rec.png"
    run_example("autoencoder.py", "--epochs", "2", "--out", str(out_png))
    data = out_png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (10 * 30 + 2, 2 * 30 + 2)


def test_perceptron():
    out = run_example("perceptron.py")
    accs = [float(ln.split()[-1]) for ln in out.splitlines() if "accuracy" in ln]
    assert len(accs) == 2 and all(a >= 0.97 for a in accs)


def test_pytorch_port():
    out = run_example("pytorch_port.py")
    acc = float([ln for ln in out.splitlines() if ln.startswith("epoch 4")][0].split()[-1])
    assert acc > 0.9
    assert "fc1.weight" in out


def test_save_png_roundtrip(tmp_path):
    from nnfast.utils.image import save_png

    img = np.linspace(0, 1, 12).reshape(3, 4)
    p = save_png(img, str(tmp_path / "a.png"))
    data = open(p, "rb").read()
    # decode the single IDAT chunk and compare pixels
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41:41 + idat_len])
    rows = [raw[r * 5 + 1:(r + 1) * 5] for r in range(3)]
    got = np.frombuffer(b"".join(rows), np.uint8).reshape(3, 4)
    assert np.array_equal(got, (img * 255 + 0.5).astype(np.uint8))
    with pytest.raises(ValueError, match=r"^\[save_png\]"):
        save_png(np.zeros((2, 2, 2)), str(tmp_path / "b.png"))
