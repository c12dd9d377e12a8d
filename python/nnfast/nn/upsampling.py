"""Resampling modules: ``Upsample``, ``PixelShuffle`` / ``PixelUnshuffle``."""
from __future__ import annotations

__all__: list[str] = []
