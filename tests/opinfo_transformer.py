"""Registry entries of the transformer family: ``F.multi_head_attention_forward``, with a float64
NumPy reference of multi-head attention (also used by tests/test_transformer.py).

The op is a composite (nnfast's GEMM via F.linear / matmul, softmax kernel, and
F.scaled_dot_product_attention), so it runs on every device where ``linear`` has kernels.
"""
from __future__ import annotations

import math

import numpy as np

import nnfast
import nnfast.nn.functional as F
from opinfo import _DISPATCH_ALIAS, ErrorInput, OpInfo, Sample, register

_DISPATCH_ALIAS["multi_head_attention_forward"] = "linear"


# ---------------------------------------------------------------------------- float64 reference
def _additive(mask, dtype=np.float64):
    """PyTorch's MHA mask convention: bool True = masked out (-inf), float masks are added."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        return np.where(mask, -np.inf, 0.0)
    return mask.astype(dtype)


def mha_ref(query, key, value, num_heads, w_q, w_k, w_v, b_in, w_out, b_out, bias_k=None, bias_v=None,
            add_zero_attn=False, key_padding_mask=None, attn_mask=None, average_attn_weights=True):
    """(output, weights) of multi-head attention in float64, seq-first (L, N, E) or unbatched (L, E)."""
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = query[:, None], key[:, None], value[:, None]
        if key_padding_mask is not None:
            key_padding_mask = np.asarray(key_padding_mask)[None]
    L, N, E = query.shape
    H, D = num_heads, E // num_heads
    bq = bk = bv = 0.0
    if b_in is not None:
        bq, bk, bv = b_in[:E], b_in[E:2 * E], b_in[2 * E:]
    q, k, v = query @ w_q.T + bq, key @ w_k.T + bk, value @ w_v.T + bv
    am, kpm = _additive(attn_mask), _additive(key_padding_mask)
    if am is not None:
        am = am[None] if am.ndim == 2 else am.reshape(N, H, L, -1)   # (1 or N, [H,] L, S)
        am = am[:, None] if am.ndim == 3 else am
    extra = 0
    if bias_k is not None:
        k = np.concatenate([k, np.broadcast_to(bias_k.reshape(1, 1, E), (1, N, E))])
        v = np.concatenate([v, np.broadcast_to(bias_v.reshape(1, 1, E), (1, N, E))])
        extra += 1
    qh = q.reshape(L, N, H, D).transpose(1, 2, 0, 3)
    kh = k.reshape(-1, N, H, D).transpose(1, 2, 0, 3)
    vh = v.reshape(-1, N, H, D).transpose(1, 2, 0, 3)
    if add_zero_attn:
        kh = np.concatenate([kh, np.zeros((N, H, 1, D))], axis=2)
        vh = np.concatenate([vh, np.zeros((N, H, 1, D))], axis=2)
        extra += 1
    scores = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(D)            # (N, H, L, S')
    if am is not None:
        scores = scores + np.pad(am, [(0, 0)] * 3 + [(0, extra)])
    if kpm is not None:
        scores = scores + np.pad(kpm, [(0, 0), (0, extra)])[:, None, None, :]
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p = p / p.sum(axis=-1, keepdims=True)
    out = (p @ vh).transpose(2, 0, 1, 3).reshape(L, N, E) @ w_out.T
    if b_out is not None:
        out = out + b_out
    weights = p.mean(axis=1) if average_attn_weights else p
    if unbatched:
        out, weights = out[:, 0], weights[0]
    return out, weights


# ---------------------------------------------------------------------------- registry samples
E, H, L, S = 6, 3, 5, 7


def _params(rng, kdim=E, vdim=E):
    return {"w_q": rng.standard_normal((E, E)) * 0.5, "w_k": rng.standard_normal((E, kdim)) * 0.5,
            "w_v": rng.standard_normal((E, vdim)) * 0.5, "in_proj_bias": rng.standard_normal(3 * E) * 0.1,
            "out_proj_weight": rng.standard_normal((E, E)) * 0.5, "out_proj_bias": rng.standard_normal(E) * 0.1}


def _call(heads, self_attn=False, need_weights=False, separate=False, **opts):
    """A sample's call: the functional op with options bound; returns the output, or the
    attention weights when need_weights (both outputs get their gradient checked that way)."""
    def call(query, w_q, w_k, w_v, in_proj_bias, out_proj_weight, out_proj_bias, key=None, value=None,
             attn_mask=None, key_padding_mask=None, bias_k=None, bias_v=None):
        k = query if self_attn else key
        v = query if self_attn else value
        if separate:
            w_in, sep = None, dict(q_proj_weight=w_q, k_proj_weight=w_k, v_proj_weight=w_v)
        else:
            w_in, sep = nnfast.cat([w_q, w_k, w_v]), {}
        out, weights = F.multi_head_attention_forward(
            query, k, v, query.shape[-1], heads, w_in, in_proj_bias, bias_k, bias_v, opts.get("add_zero_attn", False),
            0.0, out_proj_weight, out_proj_bias, key_padding_mask=key_padding_mask, need_weights=need_weights,
            attn_mask=attn_mask, use_separate_proj_weight=separate, average_attn_weights=opts.get("average", True),
            **sep)
        return weights if need_weights else out
    return call


def _ref(heads, self_attn=False, need_weights=False, **opts):
    def ref(query, w_q, w_k, w_v, in_proj_bias, out_proj_weight, out_proj_bias, key=None, value=None,
            attn_mask=None, key_padding_mask=None, bias_k=None, bias_v=None):
        k = query if self_attn else key
        v = query if self_attn else value
        out, weights = mha_ref(query, k, v, heads, w_q, w_k, w_v, in_proj_bias, out_proj_weight, out_proj_bias,
                               bias_k, bias_v, opts.get("add_zero_attn", False), key_padding_mask, attn_mask,
                               opts.get("average", True))
        return weights if need_weights else out
    return ref


def _mha_samples(purpose):
    rng = np.random.default_rng(1414)
    out = []

    def add(id_, heads=H, n=2, self_attn=False, kdim=E, vdim=E, unbatched=False, **opts):
        arrays = _params(rng, kdim, vdim)
        lead = () if unbatched else (n,)
        arrays["query"] = rng.standard_normal((L,) + lead + (E,))
        if not self_attn:
            arrays["key"] = rng.standard_normal((S,) + lead + (kdim,))
            arrays["value"] = rng.standard_normal((S,) + lead + (vdim,))
        src = L if self_attn else S
        masks = opts.pop("masks", ())
        if "bool" in masks:
            m = rng.random((L, src)) < 0.3
            m[:, 0] = False  # every query keeps a key: no all -inf rows
            arrays["attn_mask"] = m
        if "float3d" in masks:
            arrays["attn_mask"] = rng.standard_normal((heads if unbatched else n * heads, L, src))
        if "kpm" in masks:
            m = rng.random(lead + (src,)) < 0.3
            m[..., 0] = False
            arrays["key_padding_mask"] = m
        if "kpm_float" in masks:
            arrays["key_padding_mask"] = rng.standard_normal(lead + (src,))
        if opts.get("bias_kv"):
            arrays["bias_k"], arrays["bias_v"] = rng.standard_normal((2, 1, 1, E))
        separate = kdim != E or vdim != E
        grads = tuple(k for k, a in arrays.items() if a.dtype.kind == "f")
        out.append(Sample(id_, arrays, grads, _call(heads, self_attn, separate=separate, **opts),
                          _ref(heads, self_attn, **opts)))

    add("self", self_attn=True)
    add("self-weights", self_attn=True, need_weights=True, heads=2)
    add("cross-bool-kpm", masks=("bool", "kpm"))
    add("cross-float3d-weights", masks=("float3d", "kpm_float"), need_weights=True, average=False)
    add("kdim-vdim", kdim=4, vdim=5, masks=("kpm",))
    add("bias_kv-zero_attn", bias_kv=True, add_zero_attn=True, masks=("bool", "kpm"))
    add("unbatched", unbatched=True, masks=("float3d",))
    add("batch1", n=1, heads=2, need_weights=True)
    if purpose == "gradcheck":  # ~500-1,000 forward calls each: the sdpa path, the weights path, unbatched
        add("b1-float3d-kpm-weights", n=1, masks=("float3d", "kpm_float"), need_weights=True, average=False)
        return [out[0], out[-1], out[6]]
    if purpose in ("noncontig", "f32"):
        return [out[2], out[3], out[5]]
    return out


def _errors():
    q = nnfast.ones(5, 2, 6)  # no random draws at import: the global generator stays untouched
    w, b, wo = nnfast.ones(18, 6), nnfast.zeros(18), nnfast.ones(6, 6)

    def mha(**kw):
        args = dict(query=q, key=q, value=q, embed_dim_to_check=6, num_heads=3, in_proj_weight=w, in_proj_bias=b,
                    bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0, out_proj_weight=wo,
                    out_proj_bias=None)
        args.update(kw)
        return lambda: F.multi_head_attention_forward(**args)
    msg = r"^\[MultiheadAttention\] expected "
    return [
        ErrorInput("heads", mha(num_heads=4), ValueError, msg + r"embed_dim \(6\) divisible by num_heads \(4\)"),
        ErrorInput("rank", mha(query=nnfast.ones(2, 5, 2, 6)), ValueError, msg + "an unbatched 2-D or batched 3-D"),
        ErrorInput("key-rank", mha(key=nnfast.ones(7, 6)), ValueError, msg + "key and value to be 3-D"),
        ErrorInput("embed", mha(embed_dim_to_check=8), ValueError, msg + "query's embedding dim 8"),
        ErrorInput("mask2d", mha(attn_mask=nnfast.zeros(5, 6)), ValueError, msg + r"a 2-D attn_mask of shape \(5, 5\)"),
        ErrorInput("mask3d", mha(attn_mask=nnfast.zeros(3, 5, 5)), ValueError,
                   msg + r"a 3-D attn_mask of shape \(6, 5, 5\)"),
        ErrorInput("kpm", mha(key_padding_mask=nnfast.zeros(2, 4)), ValueError,
                   msg + r"key_padding_mask of shape \(2, 5\)"),
        ErrorInput("mask-dtype", mha(attn_mask=nnfast.zeros(5, 5, dtype=nnfast.int64)), TypeError,
                   msg + "attn_mask of dtype bool or floating point"),
        ErrorInput("batch", mha(key=nnfast.ones(5, 3, 6), value=nnfast.ones(5, 3, 6)), ValueError,
                   msg + "query, key and value with the same batch size"),
        ErrorInput("in_proj", mha(in_proj_weight=nnfast.ones(12, 6)), ValueError,
                   msg + r"in_proj_weight of shape \(18, 6\)"),
    ]


register(OpInfo(
    "multi_head_attention_forward", "attention", None, None, _mha_samples,
    fwd_tol={np.float32: (2e-5, 2e-5), np.float64: (1e-10, 1e-10)},
    gradcheck_kw=dict(eps=1e-6, atol=1e-6, rtol=1e-4), nc_tol=(1e-12, 1e-12),
    f32_fwd=(2e-5, 2e-5), f32_grad=(2e-4, 2e-5, True), error_inputs=_errors()))
