"""Bundled datasets (no download)."""
from .mnist import mnist_5k

__all__ = ["mnist_5k"]
