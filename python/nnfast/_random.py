"""Global random state: ``nnfast.manual_seed`` seeds everything nnfast draws."""
from __future__ import annotations

from typing import Any, cast

import numpy as np

_state: dict[str, Any] = {"seed": None, "rng": np.random.default_rng(), "counter": 0}


def manual_seed(seed: int) -> "np.random.Generator":
    """Seeds parameter initialization, random tensors, dropout masks and shuffling."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"[manual_seed] expected a non-negative seed, got {seed}")
    _state["seed"] = seed
    _state["rng"] = np.random.default_rng(seed)
    _state["counter"] = 0
    return default_generator()


def default_generator() -> np.random.Generator:
    rng: np.random.Generator = _state["rng"]
    return rng


def initial_seed() -> int:
    s = _state["seed"]
    return 0 if s is None else s


def next_kernel_seed() -> tuple[int, int]:
    """(seed, offset) for counter-based RNG kernels such as dropout.

    Each call consumes a fresh offset so masks differ call to call but repeat
    exactly after manual_seed with the same seed.
    """
    if _state["seed"] is None:
        _state["seed"] = int(cast(int, np.random.SeedSequence().entropy) % (2**63))
    off = _state["counter"]
    _state["counter"] = off + 1
    return _state["seed"], off


def get_rng_state() -> dict[str, Any]:
    return {
        "seed": _state["seed"],
        "counter": _state["counter"],
        "bit_generator": _state["rng"].bit_generator.state,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    rng = np.random.default_rng()
    rng.bit_generator.state = state["bit_generator"]
    _state["rng"] = rng
    _state["seed"] = state["seed"]
    _state["counter"] = int(state["counter"])
