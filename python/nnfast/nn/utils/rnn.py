"""Packed sequences: ``PackedSequence``, ``pack_padded_sequence``, ``pad_packed_sequence``, ``pad_sequence``."""
from __future__ import annotations

__all__: list[str] = []
