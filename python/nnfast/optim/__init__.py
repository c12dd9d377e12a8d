"""Optimizers (fused C++ step kernels)."""
