"""Data-parallel `nnfast train` under `mpiexec`: only rank 0 prints and writes files, the logged
metrics are averaged over every rank's samples, a checkpoint written by 2 ranks resumes on 1 and
on 3 ranks, the JSON has the same structure on any number of ranks, and a failing rank ends the
whole job (no hang). Skipped, with the reason, where MPI cannot start."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 120


def _mpiexec():
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def _env():
    env = dict(os.environ, NNFAST_NUM_THREADS="1", OMP_NUM_THREADS="1")
    if env.get("NNFAST_EXT_DIR"):  # the ranks run in a temporary folder
        env["NNFAST_EXT_DIR"] = os.path.abspath(env["NNFAST_EXT_DIR"])
    import nnfast

    # The ranks import the nnfast under test (a development tree when NNFAST_EXT_DIR is set).
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(nnfast.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


@pytest.fixture(scope="module")
def mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'nnfast[distributed]')")
    exe = _mpiexec()
    if exe is None:
        pytest.skip("mpiexec not found (pip install mpich, or load the site's MPI)")
    probe = "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2"
    try:
        r = subprocess.run([exe, "-n", "2", sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=60, env=_env())
    except subprocess.TimeoutExpired:
        pytest.skip("MPI cannot start: `mpiexec -n 2` did not finish in 60 s")
    if r.returncode != 0:
        pytest.skip(f"MPI cannot start: `mpiexec -n 2` failed: {r.stderr.strip()[-300:]}")
    return exe


def _run(cmd, cwd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=_env(), cwd=cwd)


def _train(mpiexec, n, cwd, *args):
    """`mpiexec -n n nnfast train` (n = 0: a plain process) on a small MLP over mnist_5k."""
    base = ["train", "--hidden", "16", "--epochs", "1", "--batch-size", "96"]
    cli = [sys.executable, "-m", "nnfast", *base, *args]
    return _run(cli if n == 0 else [mpiexec, "-n", str(n), *cli], cwd)


# On every rank but 0 the writers raise, so a rank other than 0 writing a file fails the job.
_GUARDED = textwrap.dedent("""
    import json, sys
    from mpi4py import MPI
    import nnfast, nnfast.training, nnfast.cli
    if MPI.COMM_WORLD.Get_rank() != 0:
        def forbid(*a, **k):
            raise AssertionError("a rank other than 0 wrote a file")
        nnfast.save = forbid
        json.dump = forbid
        nnfast.training.History.plot = forbid
    sys.exit(nnfast.cli.main(sys.argv[1:]))
""")


@pytest.fixture(scope="module")
def trained(mpiexec, tmp_path_factory):
    """One 2-rank run (its writers guarded on ranks 1+) and one plain run, each saving a
    checkpoint and JSON in its own folder."""
    two, plain = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("plain")
    cli = ["train", "--hidden", "16", "--epochs", "1", "--batch-size", "96", "--save", str(two / "c2.safetensors"),
           "--json", str(two / "m2.json")]
    r2 = _run([mpiexec, "-n", "2", sys.executable, "-c", _GUARDED, *cli], two)
    r0 = _train(mpiexec, 0, plain, "--save", str(plain / "c0.safetensors"), "--json", str(plain / "m0.json"))
    return {"two": two, "plain": plain, "r2": r2, "r0": r0}


def test_two_ranks_write_from_rank_0_only_and_average_metrics(trained):
    r, two = trained["r2"], trained["two"]
    assert r.returncode == 0, r.stderr[-3000:]
    # One log, from rank 0: the epoch line and the summary appear once.
    assert r.stdout.count("epoch   1/1") == 1 and r.stdout.count("summary:") == 1, r.stdout
    assert "2 ranks x 1 thread, batch 48 per rank" in r.stdout
    assert sorted(os.listdir(two)) == ["c2.safetensors", "m2.json"]  # no temporaries left behind
    summary = json.loads((two / "m2.json").read_text())["summary"]
    assert summary["world_size"] == 2
    # The logged test metrics are the whole test set's (each rank scored half of it): a plain
    # single-process evaluation of the saved model gives the same numbers.
    r = _run([sys.executable, "-m", "nnfast", "evaluate", str(two / "c2.safetensors"), "--json"], two)
    assert r.returncode == 0, r.stderr[-3000:]
    whole = json.loads(r.stdout)
    assert abs(whole["loss"] - summary["test_loss"]) < 1e-5 * max(1.0, whole["loss"])
    assert abs(whole["accuracy"] - summary["test_accuracy"]) < 1e-9
    assert summary["test_accuracy"] > 0.7


def test_checkpoint_resumes_on_one_and_three_ranks_with_the_same_json(mpiexec, trained, tmp_path):
    import nnfast

    assert trained["r0"].returncode == 0, trained["r0"].stderr[-3000:]
    ck2, plain = trained["two"] / "c2.safetensors", trained["plain"] / "c0.safetensors"
    # World-size independent: the same entries (no DDP "module." prefix) as a plain run's.
    a, b = nnfast.load(str(ck2)), nnfast.load(str(plain))
    assert sorted(a["model"]) == sorted(b["model"]) and a["epoch"] == b["epoch"] == 1
    assert sorted(a["optimizer"]) == sorted(b["optimizer"])
    for n in (1, 3):
        out = tmp_path / f"r{n}.safetensors"
        js = tmp_path / f"r{n}.json"
        r = _train(mpiexec, n, tmp_path, "--resume", str(ck2), "--save", str(out), "--json", str(js))
        assert r.returncode == 0, (n, r.stderr[-3000:])
        assert r.stdout.count("epoch   2/2") == 1, r.stdout  # continues after the saved epoch
        assert nnfast.load(str(out))["epoch"] == 2
        data = json.loads(js.read_text())
        assert data["summary"]["world_size"] == n
        assert data["summary"]["test_accuracy"] > 0.75
    ref = json.loads((trained["plain"] / "m0.json").read_text())
    for path in (trained["two"] / "m2.json", tmp_path / "r1.json", tmp_path / "r3.json"):
        data = json.loads(path.read_text())
        assert sorted(data) == sorted(ref)
        assert sorted(data["summary"]) == sorted(ref["summary"])
        assert {k: len(v) for k, v in data["history"].items()} == {k: len(v) for k, v in ref["history"].items()}


def test_metrics_are_sample_weighted_means_over_ranks(mpiexec, tmp_path):
    # Rank r holds r + 1 samples with loss r, accuracy r / 10 and RMSE r: the averages over all
    # samples are sum((r + 1) * v) / sum(r + 1), and RMSE averages the squares.
    script = textwrap.dedent("""
        import json, sys
        import nnfast.distributed as dist
        from nnfast.training import _average_over_ranks
        dist.init_process_group("mpi")
        r = dist.get_rank()
        out, n = _average_over_ranks({"loss": float(r), "accuracy": r / 10, "rmse": float(r)}, r + 1)
        if r == 0:
            json.dump({"out": out, "n": n}, open(sys.argv[1], "w"))
        dist.destroy_process_group()
    """)
    path = tmp_path / "avg.json"
    r = _run([mpiexec, "-n", "3", sys.executable, "-c", script, str(path)], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(path.read_text())
    w = np.array([1.0, 2.0, 3.0])
    v = np.array([0.0, 1.0, 2.0])
    assert got["n"] == 6
    assert got["out"]["loss"] == pytest.approx((w * v).sum() / 6, rel=1e-12)
    assert got["out"]["accuracy"] == pytest.approx((w * v / 10).sum() / 6, rel=1e-12)
    assert got["out"]["rmse"] == pytest.approx(np.sqrt((w * v * v).sum() / 6), rel=1e-12)


def test_fit_averages_over_ranks_unless_told_not_to(mpiexec, tmp_path):
    # Each rank fits its own data: with a process group, fit's logged loss and metrics are the
    # average over both ranks (equal on both); distributed=False keeps them local (and needs no
    # other rank: rank 0 fits alone while rank 1 waits at the barrier).
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import nnfast, nnfast.nn as nn
        import nnfast.distributed as dist
        from nnfast.training import fit
        dist.init_process_group("mpi")
        r = dist.get_rank()
        rng = np.random.default_rng(r)
        X = rng.standard_normal((40 + 20 * r, 3)).astype(np.float32)
        y = (X[:, 0] > r * 0.5).astype(np.int64)
        def run(distributed):
            nnfast.manual_seed(0)
            m = nn.Linear(3, 2)
            h = fit(m, nn.CrossEntropyLoss(), nnfast.optim.SGD(m.parameters(), lr=0.1), (X, y), (X, y), epochs=1,
                    batch_size=20, shuffle=False, metrics=["accuracy"], verbose=False, distributed=distributed)
            return h.last()
        both = run(None)
        alone = run(False) if r == 0 else None
        dist.barrier()
        json.dump({"both": both, "alone": alone}, open(sys.argv[1] + str(r), "w"))
        dist.destroy_process_group()
    """)
    base = str(tmp_path / "fit")
    r = _run([mpiexec, "-n", "2", sys.executable, "-c", script, base], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = (json.loads(open(base + str(k)).read()) for k in (0, 1))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert r0["both"][key] == pytest.approx(r1["both"][key], rel=1e-12), key
    assert r1["alone"] is None
    # Rank 0's local values differ from the average over both ranks' (different) data.
    assert r0["alone"]["val_loss"] != pytest.approx(r0["both"]["val_loss"], rel=1e-6)


def test_an_error_on_the_ranks_ends_the_job_with_its_message(mpiexec, trained, tmp_path):
    ck = trained["plain"] / "c0.safetensors"  # a 784-16-10 model
    # A checkpoint of another shape: the ranks fail after joining the group; the job must end
    # (within the timeout) with a non-zero status and the error, not hang in a collective.
    r = _run([mpiexec, "-n", "2", sys.executable, "-m", "nnfast", "train", "--hidden", "32", "--epochs", "1",
              "--resume", str(ck)], tmp_path)
    assert r.returncode != 0
    assert "checkpoint does not fit this model" in r.stderr and "of 2)" in r.stderr, r.stderr[-2000:]
    # A global batch the ranks cannot split is refused before training, once.
    r = _run([mpiexec, "-n", "2", sys.executable, "-m", "nnfast", "train", "--batch-size", "63"], tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("must be divisible by the 2 ranks") == 1, r.stderr


def test_ddp_example_trains_on_two_ranks(mpiexec, tmp_path):
    out = tmp_path / "ddp.safetensors"
    r = _run([mpiexec, "-n", "2", sys.executable, os.path.join(ROOT, "examples", "ddp_mnist.py"), "--epochs", "1",
              "--save", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("epoch 0:")]
    assert len(lines) == 1 and "(2 ranks)" in lines[0], r.stdout  # rank 0 alone prints
    assert float(lines[0].split("test accuracy")[1].split()[0]) > 0.85
    assert sorted(os.listdir(tmp_path)) == ["ddp.safetensors"]


def test_bench_distributed_section_runs_its_ranks(mpiexec, tmp_path):
    # `nnfast bench --only distributed` launches `mpiexec -n 2` itself; its ranks check that the
    # DDP step lowers the loss and keeps the replicas identical before timing. Timings are not asserted.
    out = tmp_path / "bench.json"
    r = _run([sys.executable, "-m", "nnfast", "bench", "--only", "distributed", "--quick", "--json", str(out)],
             tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(out.read_text())["distributed"]
    setups = [row["setup"] for row in rows]
    assert setups[0] == "1 process x 2 threads, batch 256"
    assert setups[1] == "2 ranks x 1 thread, batch 2 x 128 (DDP)"
    assert all(row["ms"] > 0 for row in rows[:5])
    assert rows[3]["gb_s"] > 0 and rows[4]["pct_of_mpi4py"] == 100.0
    assert all(0 <= row["overlap_pct"] <= 100 for row in rows[5:])


def test_bench_distributed_is_opt_in():
    from nnfast.bench import OPT_IN, SECTIONS

    assert "distributed" in SECTIONS and "distributed" in OPT_IN
