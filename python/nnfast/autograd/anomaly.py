"""``detect_anomaly``: name the first op whose forward or backward makes NaN/Inf."""
from __future__ import annotations

from typing import Any

_enabled = [False]


def is_enabled() -> bool:
    return _enabled[0]


class detect_anomaly:
    """Context manager: raise RuntimeError naming the op that first produced a
    non-finite value, in forward or in backward."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> "detect_anomaly":
        self._prev = _enabled[0]
        _enabled[0] = self.check_nan
        _sync_fast_paths()
        return self

    def __exit__(self, *exc: object) -> None:
        _enabled[0] = self._prev
        _sync_fast_paths()


def _sync_fast_paths() -> None:
    # The ops' fast paths skip the per-op checks: they step aside while anomaly mode is on.
    from .._dispatch import block_fast_paths

    block_fast_paths("anomaly", _enabled[0])


def _all_finite(a: Any) -> bool:
    from .._dispatch import xp_of

    if a is None or getattr(a, "dtype", None) is None or a.dtype.kind != "f":
        return True
    return bool(xp_of(a).isfinite(a).all())


def check_forward(op: str, out: Any) -> None:
    if not _all_finite(out):
        raise RuntimeError(f"[detect_anomaly] {op} forward produced NaN or Inf")


def check_backward(op: str, grads: Any) -> None:
    for g in grads:
        if not _all_finite(g):
            raise RuntimeError(f"[detect_anomaly] {op} backward produced NaN or Inf")
