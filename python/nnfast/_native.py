"""Loads the compiled extension ``nnfast._C``.

For development, ``NNFAST_EXT_DIR`` may name a CMake build folder holding a
freshly built ``_C`` module; it is searched before the installed one.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

_pkg = sys.modules[__package__]
_ext_dir = os.environ.get("NNFAST_EXT_DIR")
if _ext_dir:
    _pkg.__path__.insert(0, os.path.abspath(_ext_dir))

if TYPE_CHECKING:  # type checkers read the stub _C.pyi
    from . import _C
else:
    try:
        _C = importlib.import_module(__package__ + "._C")
    except ImportError as exc:  # pragma: no cover - only when the build is missing
        raise ImportError(
            "nnfast's native extension nnfast._C is missing or failed to load "
            f"({exc}). Install the package with `pip install .` so it is compiled."
        ) from exc

__all__ = ["_C"]
