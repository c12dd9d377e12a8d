"""Write images as PNG with only the standard library (zlib), for examples and plots."""
from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np


def save_png(image: Any, path: str) -> str:
    """Save a 2-D (grey) or 3-D (H, W, 3) array as PNG; floats are taken in [0, 1]."""
    a = np.asarray(image)
    if a.dtype.kind == "f":
        a = np.clip(a, 0.0, 1.0) * 255.0 + 0.5
    a = a.astype(np.uint8)
    if a.ndim == 2:
        color = 0
    elif a.ndim == 3 and a.shape[2] == 3:
        color = 2
    else:
        raise ValueError(f"[save_png] expected an (H, W) or (H, W, 3) array, got shape {a.shape}")
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + a[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)
    return path


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
    """Arrange (n, h, w) images on a grid with ``pad`` pixels of white between them."""
    n, h, w = images.shape
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float64)
    for k in range(min(n, rows * cols)):
        r, c = divmod(k, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = images[k]
    return out
