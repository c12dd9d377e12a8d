"""``MultiheadAttention`` on the fused scaled dot-product attention kernel."""
from __future__ import annotations

__all__: list[str] = []
