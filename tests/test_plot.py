"""Training curves: `nnfast train --plot` and `History.plot` write valid PNGs (needs
matplotlib, in the `test` extra), and without matplotlib both say how to install it."""
import struct
import subprocess
import sys

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
from nnfast import cli
from nnfast.training import History, fit


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, "first chunk is not IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0
    assert data[-8:-4] == b"IEND", "PNG is truncated"
    return width, height


def _history():
    nnfast.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(5, 8, activation="relu"), nn.Linear(8, 2))
    opt = nnfast.optim.SGD(model.parameters(), lr=0.1)
    return fit(model, nn.CrossEntropyLoss(), opt, (X, y), (X, y), epochs=2, batch_size=16,
               metrics=["accuracy"], verbose=False)


def test_history_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    h = _history()
    out = tmp_path / "curves.png"
    assert h.plot(str(out)) == str(out)
    w, h_px = assert_png(out)
    assert w > h_px  # one panel per curve, side by side


def test_cli_train_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out.png"
    r = subprocess.run([sys.executable, "-m", "nnfast", "train", "--epochs", "1", "--hidden", "32", "--plot", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"wrote curves to {out}" in r.stdout
    assert_png(out)


@pytest.fixture
def no_matplotlib(monkeypatch):
    # A None entry in sys.modules makes `import matplotlib` raise ImportError.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)


def test_history_plot_without_matplotlib_says_how_to_install(no_matplotlib, tmp_path):
    h = History()
    h.record(0, {"loss": 1.0, "val_loss": 1.2})
    with pytest.raises(RuntimeError, match=r"^\[History\.plot\] .*pip install matplotlib"):
        h.plot(str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def test_cli_plot_without_matplotlib_fails_before_training(no_matplotlib, tmp_path, capsys):
    rc = cli.main(["train", "--epochs", "50", "--plot", str(tmp_path / "x.png")])
    err = capsys.readouterr()
    assert rc == 2
    assert "matplotlib" in err.err and "pip install" in err.err and len(err.err.strip().splitlines()) == 1
    assert "epoch" not in err.out  # failed at once, not after 50 epochs
    assert not (tmp_path / "x.png").exists()


def test_cli_plot_into_missing_folder_fails_before_training(tmp_path, capsys):
    rc = cli.main(["train", "--epochs", "50", "--plot", str(tmp_path / "nope" / "x.png")])
    err = capsys.readouterr()
    assert rc == 2 and "does not exist" in err.err and "epoch" not in err.out
