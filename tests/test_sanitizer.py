"""Proves the sanitizer job is real: a deliberate out-of-bounds write must be caught."""
import os
import subprocess
import sys

import pytest

import nnfast

pytestmark = pytest.mark.skipif(os.environ.get("NNFAST_SANITIZER_BUILD") != "1",
                                reason="runs only in the ASan/UBSan job (.ci/sanitize.sh)")


def test_module_is_sanitized():
    assert nnfast._C.sanitized


def test_out_of_bounds_write_is_caught():
    code = "import nnfast; nnfast._C._sanitizer_selftest(0); print('NOT CAUGHT')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert r.returncode != 0
    assert "heap-buffer-overflow" in r.stderr
    assert "NOT CAUGHT" not in r.stdout
