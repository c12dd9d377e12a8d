"""The autocast op table: which dtype each op runs in under ``nnfast.autocast``.

Determined empirically from ``torch.autocast("cpu", dtype=torch.bfloat16)`` (PyTorch 2.13.0+cpu,
the output dtype of each op nnfast has, fed float32 and bfloat16 inputs inside the region);
``tests/test_autocast.py`` re-checks every row against live PyTorch when it is installed, and
always against ``EXPECTED`` below.

- ``LOWER``: matmul-based ops. float32 inputs are cast to bfloat16; the op runs with bfloat16
  operands and float32 accumulation; the output is bfloat16.
- ``FP32``: losses and other precision-sensitive ops. bfloat16 inputs are cast to float32; the output
  is float32.
- anything else (``INPUT``): runs in its inputs' dtype. A bfloat16 input gives a bfloat16 output
  (computed in float32 by nnfast's kernels between two conversions); norms, softmax, log_softmax,
  activations, dropout and pooling are here, as in PyTorch's CPU autocast.

float64 is never autocast. The tape's ``+ - * /`` and ``cat`` / ``stack`` promote mixed inputs to
the widest (NumPy's promotion, as PyTorch's type promotion).
"""
from __future__ import annotations

LOWER = "lower"
FP32 = "fp32"
INPUT = "input"

# op -> policy (ops not named run in their inputs' dtype)
POLICY: dict[str, str] = {
    # PyTorch's CPU lower-precision list, as nnfast has the ops
    **{op: LOWER for op in ("linear", "matmul", "mm", "bmm", "addmm", "baddbmm", "conv1d", "conv2d",
                            "conv_transpose2d", "scaled_dot_product_attention", "prelu")},
    # PyTorch's CPU float32 list (losses, prod, cdist-like distances)
    **{op: FP32 for op in ("cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
                           "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
                           "multilabel_soft_margin_loss", "cosine_embedding_loss", "triplet_margin_loss",
                           "poisson_nll_loss", "gaussian_nll_loss", "linear_cross_entropy", "prod")},
}

# The output dtype PyTorch gives for a float32 ("f32") or bfloat16 ("bf16") input inside
# torch.autocast("cpu", dtype=torch.bfloat16), for ops whose policy is not plain LOWER / FP32 too.
EXPECTED: dict[str, tuple[str, str]] = {
    # op: (output dtype for float32 input, for bfloat16 input)
    "linear": ("bfloat16", "bfloat16"), "matmul": ("bfloat16", "bfloat16"), "mm": ("bfloat16", "bfloat16"),
    "bmm": ("bfloat16", "bfloat16"), "conv1d": ("bfloat16", "bfloat16"), "conv2d": ("bfloat16", "bfloat16"),
    "conv_transpose2d": ("bfloat16", "bfloat16"), "prelu": ("bfloat16", "bfloat16"),
    "scaled_dot_product_attention": ("bfloat16", "bfloat16"),
    "cross_entropy": ("float32", "float32"), "nll_loss": ("float32", "float32"), "mse_loss": ("float32", "float32"),
    "l1_loss": ("float32", "float32"), "smooth_l1_loss": ("float32", "float32"), "huber_loss": ("float32", "float32"),
    "binary_cross_entropy_with_logits": ("float32", "float32"), "kl_div": ("float32", "float32"),
    "softmax": ("float32", "bfloat16"), "log_softmax": ("float32", "bfloat16"), "relu": ("float32", "bfloat16"),
    "gelu": ("float32", "bfloat16"), "sigmoid": ("float32", "bfloat16"), "tanh": ("float32", "bfloat16"),
    "silu": ("float32", "bfloat16"), "dropout": ("float32", "bfloat16"), "layer_norm": ("float32", "bfloat16"),
    "batch_norm": ("float32", "bfloat16"), "group_norm": ("float32", "bfloat16"),
    "rms_norm": ("float32", "bfloat16"), "max_pool2d": ("float32", "bfloat16"),
    "avg_pool2d": ("float32", "bfloat16"),
}
