"""Functional pooling and resampling: ``max_pool2d``, ``avg_pool2d``, ``interpolate``, ..."""
from __future__ import annotations

__all__: list[str] = []
