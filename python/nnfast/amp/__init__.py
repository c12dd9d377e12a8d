"""``nnfast.amp``: automatic mixed precision (bfloat16), as ``torch.amp``.

``nnfast.amp.autocast`` is ``nnfast.autocast``; ``nnfast.cpu.amp.autocast`` is the same with
``device_type="cpu"`` fixed. See ``autocast_mode`` for the rules and ``_table`` for the op table.
"""
from __future__ import annotations

from .autocast_mode import (autocast, clear_autocast_cache, get_autocast_dtype, is_autocast_cache_enabled,
                            is_autocast_enabled, set_autocast_cache_enabled, set_autocast_dtype,
                            set_autocast_enabled)

__all__ = ["autocast", "is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled", "set_autocast_dtype",
           "is_autocast_cache_enabled", "set_autocast_cache_enabled", "clear_autocast_cache"]
