"""Op-registry entries of the embedding family (F.embedding, F.embedding_bag): float64 NumPy
references, samples with repeated indices, padding, one-element tables and bags of size 0, float64
gradcheck on the kernels (weight and per_sample_weights), and bad inputs. tests/test_ops.py turns
each entry into forward / gradcheck / non-contiguous (weight, indices, offsets) / float32-vs-float64 /
error tests on every device with embedding kernels."""
from __future__ import annotations

import numpy as np

import nnfast
import nnfast.nn.functional as F
from opinfo import F32, ErrorInput, OpInfo, Sample, register

_MODES = ("sum", "mean", "max")


# ---------------------------------------------------------------- float64 references
def ref_embedding(input, weight, padding_idx=None):
    return weight[input]


def ref_embedding_bag(input, weight, offsets=None, mode="mean", per_sample_weights=None, include_last_offset=False,
                      padding_idx=None):
    """Bag reductions written out one bag at a time (float64)."""
    if input.ndim == 2:
        B, L = input.shape
        flat, off = input.reshape(-1), np.arange(B + 1) * L
        psw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    else:
        flat, psw = input, per_sample_weights
        off = np.asarray(offsets) if include_last_offset else np.append(offsets, len(input))
    pad = None if padding_idx is None else padding_idx % weight.shape[0]
    out = np.zeros((len(off) - 1, weight.shape[1]))
    for b in range(len(off) - 1):
        members = [n for n in range(off[b], off[b + 1]) if flat[n] != pad]
        if not members:
            continue
        rows = weight[flat[members]] * (1.0 if psw is None else psw[members][:, None])
        out[b] = rows.sum(0) if mode == "sum" else rows.mean(0) if mode == "mean" else rows.max(0)
    return out


# ---------------------------------------------------------------- samples
def _emb_samples(purpose):
    rng = np.random.default_rng(11)
    w = lambda r, d: rng.standard_normal((r, d))  # noqa: E731
    cases = [
        Sample("R1-D1-n1", {"input": np.array([0]), "weight": w(1, 1)}, grads=("weight",)),
        Sample("R7-D3-repeats", {"input": np.array([[1, 6, 1], [6, 6, 2]]), "weight": w(7, 3)}, grads=("weight",)),
        Sample("R7-D5-int32", {"input": np.array([4, 1, 4, 0, 2, 6, 4], dtype=np.int32), "weight": w(7, 5)},
               grads=("weight",)),
    ]
    # padding_idx and scale_grad_by_freq define their own gradient (not the derivative): every
    # purpose but gradcheck (tests/test_embedding.py compares their gradients with PyTorch's)
    if purpose != "gradcheck":
        cases += [
            Sample("R5-D7-int32-pad", {"input": np.array([4, 1, 4, 0, 2], dtype=np.int32), "weight": w(5, 7)},
                   grads=("weight",), call=lambda input, weight: F.embedding(input, weight, padding_idx=-1)),
            Sample("R9-D5-freq", {"input": np.array([[3, 3, 8], [0, 3, 8], [5, 5, 5]]), "weight": w(9, 5)},
                   grads=("weight",), call=lambda input, weight: F.embedding(input, weight, scale_grad_by_freq=True)),
        ]
    if purpose in ("forward", "f32"):
        big = rng.integers(0, 33, 1023)
        cases.append(Sample("R33-D7-n1023", {"input": big, "weight": w(33, 7)}, grads=("weight",)))
        cases.append(Sample("R3-D1023", {"input": np.array([2, 0, 2]), "weight": w(3, 1023)}, grads=("weight",)))
    return cases


def _bag_call(mode, **kw):
    def call(input, weight, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, weight, offsets, mode=mode, per_sample_weights=per_sample_weights, **kw)
    return call


def _bag_ref(mode, **kw):
    def ref(input, weight, offsets=None, per_sample_weights=None):
        return ref_embedding_bag(input, weight, offsets, mode, per_sample_weights, **kw)
    return ref


def _bag_samples(mode):
    def samples(purpose):
        rng = np.random.default_rng({"sum": 21, "mean": 22, "max": 23}[mode])
        w = lambda r, d: rng.standard_normal((r, d))  # noqa: E731
        idx = np.array([1, 3, 3, 0, 6, 3, 2, 2, 5])
        out = [
            Sample("1bag-1elem", {"input": np.array([0]), "weight": w(1, 1), "offsets": np.array([0])},
                   grads=("weight",)),
            Sample("offsets-empty-bag", {"input": idx, "weight": w(7, 3), "offsets": np.array([0, 2, 2, 5])},
                   grads=("weight",)),
            Sample("2d-fixed-bags", {"input": np.array([[1, 4, 1], [0, 0, 2]]), "weight": w(5, 7)},
                   grads=("weight",)),
            Sample("last-offset", {"input": idx, "weight": w(7, 5), "offsets": np.array([0, 3, 3, 7, 8])},
                   grads=("weight",), call=_bag_call(mode, include_last_offset=True),
                   ref=_bag_ref(mode, include_last_offset=True)),
        ]
        if purpose != "gradcheck":  # padding / freq: their own gradient rule (see _emb_samples)
            out.append(Sample("last-offset-pad", {"input": idx, "weight": w(7, 5), "offsets": np.array([0, 3, 3, 7, 9])},
                              grads=("weight",), call=_bag_call(mode, include_last_offset=True, padding_idx=3),
                              ref=_bag_ref(mode, include_last_offset=True, padding_idx=3)))
        if mode == "sum":
            out.append(Sample("per-sample-weights", {"input": idx, "weight": w(7, 3), "offsets": np.array([0, 4, 4]),
                                                     "per_sample_weights": rng.standard_normal(9)},
                              grads=("weight", "per_sample_weights")))
        if mode == "sum" and purpose != "gradcheck":
            out.append(Sample("freq-2d-psw", {"input": np.array([[2, 2, 0], [2, 1, 1]]), "weight": w(3, 5),
                                              "per_sample_weights": rng.standard_normal((2, 3))},
                              grads=("weight", "per_sample_weights"),
                              call=_bag_call(mode, scale_grad_by_freq=True)))
        if purpose in ("forward", "f32"):
            n = 1023
            big = rng.integers(0, 41, n)
            off = np.sort(rng.integers(0, n, 30))
            off[0] = 0
            out.append(Sample("n1023", {"input": big, "weight": w(41, 7), "offsets": off}, grads=("weight",)))
        return out
    return samples


# ---------------------------------------------------------------- bad inputs
def _t(a):
    return nnfast.from_numpy(np.asarray(a))


def _emb_errors():
    w = _t(np.ones((5, 3)))
    e = "embedding"
    return [
        ErrorInput("index-too-large", lambda: F.embedding(_t([0, 5]), w), IndexError,
                   rf"^\[{e}\] expected indices in \[0, 5\)"),
        ErrorInput("index-negative", lambda: F.embedding(_t([[-1, 2]]), w), IndexError,
                   rf"^\[{e}\] expected indices in \[0, 5\)"),
        ErrorInput("float-indices", lambda: F.embedding(_t([0.0, 1.0]), w), TypeError, rf"^\[{e}\] expected an integer"),
        ErrorInput("int16-indices", lambda: F.embedding(_t(np.array([0], np.int16)), w), TypeError,
                   rf"^\[{e}\] expected an integer index tensor of dtype int32 or int64"),
        ErrorInput("weight-1d", lambda: F.embedding(_t([0]), _t(np.ones(5))), ValueError,
                   rf"^\[{e}\] expected weight to be 2-D"),
        ErrorInput("weight-int", lambda: F.embedding(_t([0]), _t(np.ones((5, 3), np.int64))), TypeError,
                   rf"^\[{e}\] expected weight to be float32 or float64"),
        ErrorInput("padding-out-of-range", lambda: F.embedding(_t([0]), w, padding_idx=5), ValueError,
                   rf"^\[{e}\] expected padding_idx within num_embeddings"),
        ErrorInput("sparse", lambda: F.embedding(_t([0]), w, sparse=True), ValueError,
                   rf"^\[{e}\] expected sparse=False \(sparse gradients are not supported\)"),
    ]


def _bag_errors(mode):
    w = _t(np.ones((5, 3)))
    e = "embedding_bag"
    idx = _t([0, 1, 2, 3])
    call = _bag_call(mode)
    rows = [
        ErrorInput("index-too-large", lambda: call(_t([0, 9]), w, _t([0])), IndexError,
                   rf"^\[{e}\] expected indices in \[0, 5\)"),
        ErrorInput("1d-without-offsets", lambda: call(idx, w), ValueError, rf"^\[{e}\] expected offsets"),
        ErrorInput("2d-with-offsets", lambda: call(_t([[0, 1]]), w, _t([0])), ValueError,
                   rf"^\[{e}\] expected offsets=None"),
        ErrorInput("3d-input", lambda: call(_t(np.zeros((1, 1, 1), np.int64)), w), ValueError,
                   rf"^\[{e}\] expected input to be 1-D or 2-D"),
        ErrorInput("offsets-not-from-0", lambda: call(idx, w, _t([1, 2])), ValueError,
                   rf"^\[{e}\] expected offsets\[0\] == 0"),
        ErrorInput("offsets-decreasing", lambda: call(idx, w, _t([0, 3, 2])), ValueError,
                   rf"^\[{e}\] expected offsets to be non-decreasing"),
        ErrorInput("offsets-past-end", lambda: call(idx, w, _t([0, 7])), ValueError,
                   rf"^\[{e}\] expected offsets within"),
        ErrorInput("bad-mode", lambda: F.embedding_bag(idx, w, _t([0]), mode="min"), ValueError,
                   rf"^\[{e}\] expected mode 'sum', 'mean' or 'max'"),
    ]
    if mode != "sum":
        rows.append(ErrorInput("psw-not-sum", lambda: call(idx, w, _t([0]), _t(np.ones(4))), ValueError,
                               rf"^\[{e}\] expected per_sample_weights only with mode='sum'"))
    else:
        rows.append(ErrorInput("psw-shape", lambda: call(idx, w, _t([0]), _t(np.ones(3))), ValueError,
                               rf"^\[{e}\] expected per_sample_weights of the input's shape"))
    return rows


register(OpInfo("embedding", "embedding", lambda input, weight: F.embedding(input, weight), ref_embedding,
                _emb_samples, nc_tol=None, f32_fwd=(0, 0), error_inputs=_emb_errors()))
for _mode in _MODES:
    register(OpInfo(f"embedding_bag_{_mode}", "embedding", _bag_call(_mode), _bag_ref(_mode), _bag_samples(_mode),
                    fwd_tol={F32: (2e-6, 2e-6), np.float64: (1e-12, 1e-12)}, f32_fwd=(2e-6, 2e-6),
                    error_inputs=_bag_errors(_mode)))
