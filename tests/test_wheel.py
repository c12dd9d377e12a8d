"""The wheel works where it is installed, without the source tree or a compiler.

Builds a wheel of this checkout with ``pip wheel`` (scikit-build-core keeps its CMake build in
``build/{wheel_tag}``, so after ``pip install .`` -- as CI does first -- this is a quick
incremental build), installs it into a fresh virtual environment that cannot see the
development copy, and from a folder outside the repository, with no compiler, CMake or
source tree reachable, imports it, runs a training step and the ``nnfast`` command.

``NNFAST_TEST_WHEEL=/path/to/nnfast-*.whl`` tests that wheel instead of building one. The
fresh environment installs numpy from the package index (pip's usual configuration).
"""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file(), reason="needs the source checkout"),
]


def _run(cmd, timeout, **kw):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    return r, time.perf_counter() - t0


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    given = os.environ.get("NNFAST_TEST_WHEEL")
    if given:
        assert Path(given).is_file(), f"NNFAST_TEST_WHEEL={given} is not a file"
        return Path(given)
    out = tmp_path_factory.mktemp("wheelhouse")
    r, took = _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(out)], timeout=1800,
                   cwd=ROOT)
    assert r.returncode == 0, f"pip wheel failed after {took:.0f} s:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    wheels = sorted(out.glob("nnfast-*.whl"))
    assert len(wheels) == 1, wheels
    print(f"\n[test_wheel] built {wheels[0].name} in {took:.0f} s")
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    r, _ = _run([sys.executable, "-m", "venv", str(env_dir)], timeout=300)
    assert r.returncode == 0, r.stderr
    py = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NNFAST_EXT_DIR", "PYTHONHOME")}
    r, took = _run([str(py), "-m", "pip", "install", "--quiet", str(wheel)], timeout=900, env=clean)
    assert r.returncode == 0, f"pip install of the wheel failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return env_dir


def _bare_env(env_dir, home):
    """Only the venv on PATH: no gcc, c++, cmake or ninja reachable; compilers poisoned too."""
    env = {"PATH": str(env_dir / "bin"), "HOME": str(home), "LANG": "C.UTF-8", "CC": "/bin/false",
           "CXX": "/bin/false", "NNFAST_NUM_THREADS": "2", "VIRTUAL_ENV": str(env_dir)}
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


SCRIPT = textwrap.dedent("""
    import json, os, shutil, sys
    for tool in ("gcc", "g++", "c++", "cc", "cmake", "ninja", "nvcc"):
        assert shutil.which(tool) is None, f"{tool} is reachable: {shutil.which(tool)}"
    import numpy as np
    import nnfast
    import nnfast.nn as nn
    import nnfast.nn.functional as F
    pkg = os.path.dirname(os.path.abspath(nnfast.__file__))
    assert pkg.startswith(sys.prefix), (pkg, sys.prefix)
    assert os.path.abspath(nnfast._C.__file__).startswith(pkg), nnfast._C.__file__
    for marker in ("py.typed", "_C.pyi"):
        assert os.path.isfile(os.path.join(pkg, marker)), marker
    assert os.path.isfile(os.path.join(nnfast.get_include(), "nnfast", "gemm.h"))
    assert os.path.isdir(nnfast.get_cmake_dir())
    nnfast.manual_seed(0)
    X, y, _, _ = nnfast.datasets.mnist_5k()
    xb, yb = nnfast.tensor(X[:256]), nnfast.tensor(y[:256])
    model = nn.Sequential(nn.Linear(784, 64, activation="relu"), nn.Linear(64, 10))
    opt = nnfast.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses
    print(json.dumps({"file": nnfast.__file__, "loss0": losses[0], "loss": losses[-1], "info": nnfast.info()}))
""")


def test_wheel_installs_and_trains_without_source_or_compiler(venv, tmp_path):
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    assert ROOT not in run_dir.parents
    env = _bare_env(venv, tmp_path)
    py = str(venv / "bin" / "python")
    r, _ = _run([py, "-c", SCRIPT], timeout=600, cwd=run_dir, env=env)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(venv)) and out["info"]["version"]
    assert out["loss"] < out["loss0"]


def test_installed_command_runs(venv, tmp_path):
    env = _bare_env(venv, tmp_path)
    nnfast_cmd = str(venv / "bin" / "nnfast")
    r, _ = _run([nnfast_cmd, "info", "--json"], timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["simd"] in ("generic", "avx2", "avx512") and info["num_threads"] >= 1
    r, _ = _run([nnfast_cmd, "--version"], timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0 and r.stdout.startswith("nnfast ")
    r, _ = _run([nnfast_cmd, "train", "--epochs", "1", "--hidden", "32", "--quiet", "--json", "m.json"],
                timeout=600, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "m.json").read_text())["summary"]
    assert summary["test_accuracy"] > 0.6  # one epoch of a 784-32-10 MLP: about 0.8
    r, _ = _run([str(venv / "bin" / "python"), "-m", "nnfast", "train", "--data", "missing.csv"], timeout=120,
                cwd=tmp_path, env=env)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
