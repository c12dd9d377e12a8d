"""Switches for recording operations on the autograd tape."""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_enabled = [True]


def is_grad_enabled() -> bool:
    return _enabled[0]


def set_grad_enabled_flag(mode: bool) -> None:
    _enabled[0] = bool(mode)


class _GradMode:
    _mode: bool

    def __enter__(self) -> None:
        self._prev = _enabled[0]
        _enabled[0] = self._mode

    def __exit__(self, *exc: object) -> None:
        _enabled[0] = self._prev

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Context manager / decorator: operations inside are not recorded."""

    _mode = False


class enable_grad(_GradMode):
    """Context manager / decorator: re-enables recording inside ``no_grad``."""

    _mode = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._prev = _enabled[0]
        _enabled[0] = self._mode

    def __enter__(self) -> None:
        pass

    def __call__(self, fn: F) -> F:  # pragma: no cover - rarely used as decorator
        mode = self._mode
        _enabled[0] = self._prev

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class inference_mode(_GradMode):
    """Context manager / decorator: like ``no_grad`` (nothing is recorded); ``inference_mode(False)``
    leaves recording as it is."""

    def __init__(self, mode: bool = True) -> None:
        self._enable = bool(mode)

    def __enter__(self) -> None:
        self._prev = _enabled[0]
        if self._enable:
            _enabled[0] = False

    def __call__(self, fn: F) -> F:
        enable = self._enable

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with inference_mode(enable):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def is_inference_mode_enabled() -> bool:
    return not _enabled[0]
