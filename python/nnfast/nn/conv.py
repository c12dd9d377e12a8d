"""Convolution modules: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d`` (NCHW, PyTorch's parameters)."""
from __future__ import annotations

__all__: list[str] = []
