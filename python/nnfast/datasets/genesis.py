"""The Book of Genesis (King James Version, public domain) shipped inside the package: a small
text corpus for character-level language models (examples/char_gpt.py)."""
from __future__ import annotations

import os

_PATH = os.path.join(os.path.dirname(__file__), "data", "genesis_kjv.txt")


def genesis_kjv() -> str:
    """The Book of Genesis, King James Version (1611, public domain): 197 KB of ASCII text, one
    verse per line, chapters headed ``CHAPTER n`` (source: Debian's ``bible-kjv-text``; see
    ``datasets/data/README.md``)."""
    with open(_PATH, encoding="ascii") as f:
        return f.read()
