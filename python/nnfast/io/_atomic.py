"""Atomic, durable file replacement.

The bytes go to a temporary file in the target's directory, named
``.<target>.<host>.<pid>.<random>.nnfast-tmp`` (hidden, never matching the target's
name); it is flushed and fsync'ed, renamed over the target with ``os.replace`` and the
directory is fsync'ed. A reader therefore sees the old file or the new one, never a
mix, even across a crash or power loss. On an exception the temporary file is removed
and the target is untouched. A process killed mid-write (SIGKILL) cannot clean up: its
temporary file stays until the next save to the same target on the same host, which
removes temporaries whose writing process no longer exists.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import stat
from typing import Iterable, Union

SUFFIX = ".nnfast-tmp"
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _prefix(base: str) -> str:
    # Keep the temporary name under the usual 255-byte limit.
    b = base.encode("utf-8", "surrogateescape")
    if len(b) > 160:
        base = b[:160].decode("utf-8", "ignore")
    return f".{base}."


def temp_name_pattern(base: str) -> "re.Pattern[str]":
    return re.compile(re.escape(_prefix(base)) + r"([0-9a-f]{8})\.(\d+)\.[0-9a-f]+" + re.escape(SUFFIX) + r"\Z")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: exists, another user's
        return True
    return True


def clean_stale(directory: str, base: str) -> list[str]:
    """Remove temporaries for ``base`` left by dead processes on this host; returns their names."""
    if os.name != "posix":
        return []
    pat = temp_name_pattern(base)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        m = pat.match(name)
        if m and m.group(1) == _HOST and not _alive(int(m.group(2))):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def _new_file_mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    umask = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    if umask is None:  # pragma: no cover - non-Linux
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(directory: str) -> None:
    if os.name != "posix":  # pragma: no cover
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_write(path: Union[str, "os.PathLike[str]"], chunks: Iterable[object]) -> None:
    """Write the concatenation of ``chunks`` (bytes-like objects) to ``path`` atomically."""
    path = os.fspath(path)
    if os.path.islink(path):  # replace the file the link points to, keep the link
        path = os.path.realpath(path)
    path = os.path.abspath(path)
    directory, base = os.path.split(path)
    clean_stale(directory, base)
    mode = _new_file_mode(path)
    tmp = os.path.join(directory, f"{_prefix(base)}{_HOST}.{os.getpid()}.{secrets.token_hex(4)}{SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with open(fd, "wb", closefd=True) as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            for c in chunks:
                f.write(c)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
