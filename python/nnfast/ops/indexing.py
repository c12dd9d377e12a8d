"""Tensor surface: indexing ops (see nnfast/ops/__init__.py)."""
from __future__ import annotations

from typing import Any

METHODS: dict[str, Any] = {}
FUNCTIONS: dict[str, Any] = {}
