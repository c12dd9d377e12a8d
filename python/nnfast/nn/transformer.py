"""Transformer encoder / decoder layers and ``nn.Transformer`` (PyTorch's layout)."""
from __future__ import annotations

__all__: list[str] = []
