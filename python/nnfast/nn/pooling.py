"""Pooling modules: max / average / adaptive pooling (PyTorch's names and defaults)."""
from __future__ import annotations

__all__: list[str] = []
