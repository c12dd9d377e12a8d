"""Bundled datasets (no download)."""
from .genesis import genesis_kjv
from .mnist import mnist_5k

__all__ = ["genesis_kjv", "mnist_5k"]
