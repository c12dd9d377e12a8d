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
import resource, numpy as np, nnfast
sizes = [(1 << 20) * k for k in (1, 2, 3, 5, 8, 1, 4)]
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


def _run(**env):
    e = dict(os.environ)
    for k in ("NNFAST_MALLOC_TUNE", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        e.pop(k, None)
    e.update(env)
    e["PYTHONPATH"] = PKG_PARENT + os.pathsep + e.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=e, capture_output=True, text=True, timeout=120)
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
