"""Random state: ``nnfast.Generator`` and the default generator that ``nnfast.manual_seed`` seeds.

A ``Generator`` *is* a NumPy ``numpy.random.Generator`` (PCG64), so every consumer of random numbers
(``nn.init``, ``utils.data`` shuffling, the random tensor factories) draws from it directly; it adds
PyTorch's methods (``manual_seed``, ``seed``, ``initial_seed``, ``get_state`` / ``set_state``) and
the (seed, offset) counter that counter-based kernels such as dropout consume. Reseeding happens in
place, so ``nnfast.default_generator`` stays the same object across ``manual_seed`` calls.
"""
from __future__ import annotations

from typing import Any, Optional, cast

import numpy as np

# PyTorch's default seed: a Generator made without one starts from it (deterministically).
DEFAULT_SEED = 67280421310721
_U64 = 1 << 64


def _check_seed(seed: Any) -> int:
    """PyTorch's seed range: [-2**63, 2**64 - 1]; negative seeds wrap to 2**64 - 1 + seed."""
    try:
        s = int(seed)
    except (TypeError, ValueError):
        raise TypeError(f"[manual_seed] expected an int seed, got {type(seed).__name__}") from None
    if not -(1 << 63) <= s < _U64:
        raise RuntimeError(f"[manual_seed] expected a seed in [-2**63, 2**64 - 1], got {s}")
    return s if s >= 0 else _U64 - 1 + s


def _entropy_seed() -> int:
    return int(cast(int, np.random.SeedSequence().entropy) % (1 << 63))


class Generator(np.random.Generator):
    """A random-number generator as ``torch.Generator(device='cpu')``: pass it as ``generator=`` to
    the sampling functions; the same seed gives the same values on every device (values are drawn
    on the host and moved)."""

    def __init__(self, device: Any = "cpu") -> None:
        super().__init__(np.random.PCG64(DEFAULT_SEED))
        self._device = str(device)
        self._seed: Optional[int] = DEFAULT_SEED
        self._counter = 0

    @property
    def device(self) -> Any:
        from .tensor import device

        return device(self._device)

    def manual_seed(self, seed: Any) -> "Generator":
        """Reseed in place; returns ``self``."""
        s = _check_seed(seed)
        self.bit_generator.state = np.random.PCG64(s).state
        self._seed = s
        self._counter = 0
        return self

    def seed(self) -> int:
        """Reseed from OS entropy; returns the new seed."""
        s = _entropy_seed()
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed last set; when never set, one drawn from OS entropy at first use (the counter-based
        kernels' seed; the stream already drawn from is left as it is)."""
        if self._seed is None:
            self._seed = _entropy_seed()
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """The generator's whole state (a dict that ``nnfast.save`` can store); ``set_state`` restores it."""
        return {"seed": self._seed, "counter": self._counter, "bit_generator": self.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> "Generator":
        try:
            self.bit_generator.state = state["bit_generator"]
            seed, counter = state["seed"], int(state["counter"])
        except (KeyError, TypeError, ValueError) as e:
            raise RuntimeError(f"[set_state] expected a state from get_state(), got {type(state).__name__}: {e}") \
                from None
        self._seed = None if seed is None else int(seed)
        self._counter = counter
        return self

    def next_kernel_seed(self) -> tuple[int, int]:
        """(seed, offset) for counter-based RNG kernels: a fresh offset per call, so draws differ call to
        call and repeat exactly after reseeding."""
        seed = self.initial_seed() % (1 << 63)
        off = self._counter
        self._counter = off + 1
        return seed, off

    def __repr__(self) -> str:
        return f"<nnfast.Generator object (device='{self._device}')>"


def _fresh_default() -> Generator:
    """The process-wide generator: unseeded (OS entropy) until ``manual_seed``, as nnfast always was."""
    g = Generator()
    g.bit_generator.state = np.random.PCG64().state
    g._seed = None
    return g


_DEFAULT = _fresh_default()


def default_generator() -> Generator:
    return _DEFAULT


def generator_or_default(generator: Optional[np.random.Generator]) -> np.random.Generator:
    """The generator a sampling call uses: its ``generator=`` argument, else the default one."""
    if generator is None:
        return _DEFAULT
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"[generator] expected a nnfast.Generator, got {type(generator).__name__}")
    return generator


def manual_seed(seed: Any) -> Generator:
    """Seed the default generator: parameter init, random tensors, dropout masks and shuffling."""
    return _DEFAULT.manual_seed(seed)


def seed() -> int:
    """Seed the default generator from OS entropy; returns the seed."""
    return _DEFAULT.seed()


def initial_seed() -> int:
    return _DEFAULT.initial_seed()


def next_kernel_seed() -> tuple[int, int]:
    """(seed, offset) of the default generator for counter-based RNG kernels such as dropout."""
    return _DEFAULT.next_kernel_seed()


# Data-parallel shard of the counter-based kernels' streams: (rank, world size). Inside
# ``shard(r, n)`` a kernel drawing a mask for m elements starts at stream index r * m, so when a
# global batch is split along dim 0 into n equal contiguous shards, rank r draws exactly the rows
# the single process draws for them (DistributedDataParallel turns it on during forward).
_SHARD = [0, 1]


class shard:
    """Context manager: counter-based kernels draw rank ``rank``'s slice of a ``world``-way split."""

    def __init__(self, rank: int, world: int) -> None:
        self._new = (int(rank), int(world))
        self._old = (0, 1)

    def __enter__(self) -> "shard":
        self._old = (_SHARD[0], _SHARD[1])
        _SHARD[0], _SHARD[1] = self._new
        return self

    def __exit__(self, *exc: Any) -> None:
        _SHARD[0], _SHARD[1] = self._old


def kernel_first(numel: int) -> int:
    """The stream index of element 0 of an ``numel``-element draw: rank * numel inside ``shard``, else 0."""
    return _SHARD[0] * int(numel) if _SHARD[1] > 1 else 0


def get_rng_state() -> dict[str, Any]:
    return _DEFAULT.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    _DEFAULT.set_state(state)
