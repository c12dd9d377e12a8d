"""A dependency-free progress bar: redrawn in place on a terminal, silent otherwise."""
from __future__ import annotations

import sys
import time
from typing import IO, Optional


class ProgressBar:
    def __init__(self, total: int, prefix: str = "", stream: Optional[IO[str]] = None, enabled: bool = True,
                 width: int = 24) -> None:
        self.total = max(int(total), 1)
        self.prefix = prefix
        self.stream = stream or sys.stderr
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width = width
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, suffix: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self._last < 0.05:
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        fill = int(round(frac * self.width))
        bar = "#" * fill + "." * (self.width - fill)
        self.stream.write(f"\r{self.prefix} [{bar}] {done}/{self.total} {suffix}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (len(self.prefix) + self.width + 60) + "\r")
            self.stream.flush()
