"""``multi_head_attention_forward``: the functional form of ``nn.MultiheadAttention``."""
from __future__ import annotations

__all__: list[str] = []
