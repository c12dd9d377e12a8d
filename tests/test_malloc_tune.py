"""nnfast._malloc: at import, glibc's mmap / trim thresholds are fixed so that a training step's
freed activation buffers are reused from the heap instead of being unmapped and page-faulted
afresh every step; the environment can opt out. Each case runs in a fresh interpreter (the
thresholds are process-wide)."""
import os
import subprocess
import sys

import pytest

import nnfast

# The interpreter under test imports the nnfast this test imported (installed, or a dev tree).
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(nnfast.__file__)))

# One "step" allocates and frees buffers of 1-8 MiB, as a transformer step does; prints whether
# the thresholds were set and the minor page faults per step after warm-up.
SCRIPT = """
import resource, sys, numpy as np, nnfast
sizes = [(1 << 20) * int(k) for k in sys.argv[1:]]
def step():
    keep = [np.ones(s // 8) for s in sizes]
    del keep
for _ in range(3):
    step()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(nnfast._malloc.TUNED, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 20)
"""


SMALL = (1, 2, 3, 5, 8, 1, 4)  # MiB
BIG = (64, 1, 64)  # above glibc's 32 MiB cap on the mmap threshold


def _run(sizes=SMALL, **env):
    e = dict(os.environ)
    for k in ("NNFAST_MALLOC_TUNE", "NNFAST_MALLOC_BIG", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
              "MALLOC_MMAP_MAX_"):
        e.pop(k, None)
    e.update(env)
    e["PYTHONPATH"] = PKG_PARENT + os.pathsep + e.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", SCRIPT, *map(str, sizes)], env=e, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    tuned, faults = out.stdout.split()
    return tuned == "True", float(faults)


glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")


@pytest.mark.skipif(not glibc, reason="the thresholds are glibc's")
def test_steady_state_steps_do_not_page_fault():
    tuned, faults = _run()
    assert tuned
    # 24 MiB freed and re-allocated per step: without the thresholds that is ~6,000 fresh pages
    assert faults < 50, faults


@pytest.mark.skipif(not glibc, reason="the thresholds are glibc's")
@pytest.mark.parametrize("env", [{"NNFAST_MALLOC_TUNE": "0"}, {"MALLOC_TRIM_THRESHOLD_": "131072"}])
def test_the_environment_opts_out(env):
    tuned, faults = _run(**env)
    assert not tuned
    if "NNFAST_MALLOC_TUNE" in env:  # glibc's defaults: the step faults its buffers in again
        assert faults > 500, faults


@pytest.mark.skipif(not glibc, reason="the thresholds are glibc's")
def test_blocks_above_the_mmap_cap_are_reused():
    tuned, faults = _run(BIG)
    assert tuned
    assert faults < 50, faults  # 129 MiB freed and re-allocated per step


@pytest.mark.skipif(not glibc, reason="the thresholds are glibc's")
@pytest.mark.parametrize("env", [{"NNFAST_MALLOC_BIG": "0"}, {"MALLOC_MMAP_MAX_": "65536"}])
def test_big_blocks_switch_off_maps_them_afresh(env):
    tuned, faults = _run(BIG, **env)
    assert tuned == ("NNFAST_MALLOC_BIG" in env)
    # each 64 MiB block a fresh mapping: 32 faults of 2 MiB pages at the very least, 16,384 of 4 KiB
    assert faults >= 64, faults
