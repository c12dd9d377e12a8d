"""PyTorch programs run under nnfast by changing their imports (tests/ports/).

Each port is a PyTorch program in which only the import lines (marked ``# port: <original line>``)
and the data source differ. The test runs it under nnfast and compares the figures it prints
(``RESULT {json}``) with PyTorch's: live when torch is installed (the original program, rebuilt by
putting the ``# port:`` lines back, runs in the same test), else the figures recorded from
PyTorch 2.13.0 (CPU) below. Initial weights come from different random generators, so the
tolerances cover the spread seen across PyTorch seeds (stated per figure).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PORTS = Path(__file__).resolve().parent / "ports"
ROOT = PORTS.parent.parent

# figure -> (kind, tolerance): "rel" |a-b| <= tol*|b|; "abs" |a-b| <= tol; "le" a <= tol*b (a loss no
# worse than tol times PyTorch's). Recorded PyTorch figures: torch 2.13.0+cpu, seeds as in the files.
EXPECT = {
    "poly_tensors": {"loss": ("rel", 0.5), "b": ("abs", 0.03), "d": ("abs", 0.005)},
    "poly_nn": {"manual_loss": ("rel", 0.10), "loss": ("rel", 0.10), "w1": ("abs", 0.01), "w3": ("abs", 0.005)},
    "legendre_function": {"loss": ("rel", 1e-3), "a": ("abs", 1e-4), "b": ("rel", 1e-3), "c": ("abs", 1e-4),
                          "d": ("rel", 1e-3)},
    "mlp_digits": {"accuracy": ("abs", 0.02), "test_loss": ("rel", 0.30)},
    "vae_digits": {"test_loss": ("rel", 0.05), "sample_mean": ("abs", 0.03)},
    "forward_forward": {"test_accuracy": ("abs", 0.08), "train_accuracy": ("abs", 0.08)},
    "lstm_sine_lbfgs": {"train_loss": ("le", 5.0), "test_loss": ("le", 5.0), "pred_shape": ("eq", None)},
    "mingpt_char": {"loss": ("abs", 0.3), "eval_loss": ("abs", 0.5), "sample_len": ("eq", None)},
    "checkpoint_resume": {"accuracy": ("abs", 0.03), "test_loss": ("rel", 0.25), "epoch_saved": ("eq", None)},
}
RECORDED = {
    "poly_tensors": {"loss": 12.286677360534668, "b": 0.8372474908828735, "d": -0.09055762737989426},
    "poly_nn": {"manual_loss": 9.177204132080078, "loss": 8.889201164245605, "w1": 0.8571446537971497,
                "w3": -0.09292659908533096},
    "legendre_function": {"loss": 8.943641662597656, "a": -6.71270206087371e-10, "b": -2.208526849746704,
                          "c": -3.392665037793563e-10, "d": 0.2554861009120941},
    "mlp_digits": {"test_loss": 0.17465492248535155, "accuracy": 0.949},
    "vae_digits": {"test_loss": 185.95487890625, "sample_mean": 0.1635320633649826},
    "forward_forward": {"train_accuracy": 0.8889999985694885, "test_accuracy": 0.8009999990463257},
    "lstm_sine_lbfgs": {"train_loss": 0.00022907285855190744, "test_loss": 0.0004801962473552397,
                        "pred_shape": [3, 59]},
    "mingpt_char": {"loss": 1.7941420078277588, "eval_loss": 2.05987548828125, "sample_len": 32},
    "checkpoint_resume": {"test_loss": 0.3637998700141907, "accuracy": 0.921999990940094, "epoch_saved": 1},
}

_PORT_LINE = re.compile(r"^(\s*)\S.*  # port: (.*)$", re.M)


def torch_source(path: Path) -> str:
    """The original PyTorch program: every ``# port:`` line put back."""
    return _PORT_LINE.sub(lambda m: m.group(1) + m.group(2), path.read_text())


def _run(source: str, tmp_path: Path, name: str) -> dict:
    script = tmp_path / f"{name}.py"
    script.write_text(source)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    for var in ("PYTHONPATH", "NNFAST_EXT_DIR"):  # the script runs elsewhere: make a dev tree's paths absolute
        if env.get(var):
            env[var] = os.pathsep.join(os.path.abspath(p) for p in env[var].split(os.pathsep))
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                       env=env)
    assert r.returncode == 0, f"{name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"{name} printed no RESULT line:\n{r.stdout[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def _compare(name: str, got: dict, ref: dict) -> None:
    for key, (kind, tol) in EXPECT[name].items():
        a, b = got[key], ref[key]
        ok = {"rel": lambda: abs(a - b) <= tol * abs(b), "abs": lambda: abs(a - b) <= tol,
              "le": lambda: a <= tol * b, "eq": lambda: a == b}[kind]()
        assert ok, f"{name}: {key} = {a}, PyTorch {b} ({kind} {tol})"


def test_every_port_is_listed():
    assert sorted(p.stem for p in PORTS.glob("*.py")) == sorted(EXPECT) == sorted(RECORDED)


def test_ports_differ_from_pytorch_only_in_marked_lines():
    """Every import of nnfast carries its PyTorch original (``# port:``) or is the data source."""
    for path in PORTS.glob("*.py"):
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0].strip()
            if code.startswith(("import ", "from ")) and "nnfast" in code:
                assert "# port: " in line or "# data:" in line, f"{path.name}: unmarked nnfast line {line!r}"


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_port(name, tmp_path):
    path = PORTS / f"{name}.py"
    got = _run(path.read_text(), tmp_path, name)
    try:
        import torch  # noqa: F401
    except ImportError:
        ref = RECORDED[name]
    else:
        ref = _run(torch_source(path), tmp_path, name + "_torch")
    _compare(name, got, ref)


def test_readme_api_table_is_generated():
    from nnfast import _api

    text = (ROOT / "README.md").read_text()
    assert _api.readme_with_table(text) == text, "README's api table is stale: run `nnfast api --write README.md`"
