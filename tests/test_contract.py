"""The gradient contract of csrc/include/nnfast/common.h, held against every backward binding of
nnfast._C: parameter gradients accumulate (+=), activation (input) gradients overwrite (=).

One table line per binding (and mode): the inputs, the call, and its gradient outputs tagged
"param" or "act". Each line runs the call once into fresh buffers (params zero, activations NaN)
and twice into the same buffers: parameter gradients must come out exactly twice the single
call (bitwise), activation gradients exactly the single call, with no NaN left anywhere.
The Python-level tail checks that layers hand their existing ``.grad`` to these kernels.
"""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast import _C

PARAM, ACT = "param", "act"
_rng = np.random.default_rng(1234)


def _r(dtype, *shape, lo=None, hi=None):
    if lo is not None:
        return _rng.uniform(lo, hi, shape).astype(dtype)
    return _rng.standard_normal(shape).astype(dtype)


def _targets(N, C, S=None, ignore=-100, every=5):
    t = _rng.integers(0, C, (N,) if S is None else (N, S)).astype(np.int64)
    t.reshape(-1)[::every] = ignore  # some ignored rows: their gradient must still be written
    return t


# ------------------------------------------------------------------------------ table builders
# Each returns (call, outs): call(bufs) runs the binding writing into bufs[name];
# outs maps name -> (shape, PARAM | ACT).

def act_case(code, a=0.0, b=0.0):
    def build(dt):
        x, dy = _r(dt, 4, 1000), _r(dt, 4, 1000)
        saved = np.empty_like(x)
        if code in _C.ACT_GRAD_FROM_OUTPUT:
            _C.act_forward(saved, x, code, a, b)
        else:
            saved = x
        return (lambda o: _C.act_backward(o["dx"], dy, saved, code, a, b)), {"dx": (x.shape, ACT)}
    return build


def prelu_case(C):
    def build(dt):
        x, dy, w = _r(dt, 8, C if C > 1 else 3, 500), _r(dt, 8, C if C > 1 else 3, 500), _r(dt, C)
        return (lambda o: _C.prelu_backward(o["dx"], o["dw"], dy, x, w)), {"dx": (x.shape, ACT), "dw": (w.shape, PARAM)}
    return build


def swish_case(dt):
    x, dy = _r(dt, 3, 20000), _r(dt, 3, 20000)
    return (lambda o: _C.swish_backward(o["dx"], o["dbeta"], dy, x, 1.3)), {"dx": (x.shape, ACT), "dbeta": ((1,), PARAM)}


def glu_case(code, gate_first):
    def build(dt):
        x, dy = _r(dt, 16, 64, 3), _r(dt, 16, 32, 3)
        return (lambda o: _C.glu_backward(o["dx"], dy, x, 1, code, gate_first)), {"dx": (x.shape, ACT)}
    return build


def softmax_case(log):
    def build(dt):
        x, dy = _r(dt, 8, 50, 7), _r(dt, 8, 50, 7)
        y = np.empty_like(x)
        _C.softmax_forward(y, x, 1, log)
        return (lambda o: _C.softmax_backward(o["dx"], dy, y, 1, log)), {"dx": (x.shape, ACT)}
    return build


def layer_norm_case(rms, M=300, D=257):
    def build(dt):
        x, dy, w, b = _r(dt, M, D), _r(dt, M, D), _r(dt, D), None if rms else _r(dt, D)
        mean = None if rms else np.empty(M)
        rstd = np.empty(M)
        _C.layer_norm_forward(np.empty_like(x), mean, rstd, x, w, b, 1e-5, rms)
        outs = {"dx": (x.shape, ACT), "dw": ((D,), PARAM)}
        if not rms:
            outs["db"] = ((D,), PARAM)
        return (lambda o: _C.layer_norm_backward(o["dx"], o["dw"], o.get("db"), dy, x, mean, rstd, w, rms)), outs
    return build


def batch_norm_case(training, L):
    def build(dt):
        N, C = 64, 24
        x, dy, w, b = _r(dt, N, C, L), _r(dt, N, C, L), _r(dt, C), _r(dt, C)
        rm, rv = _r(dt, C), _r(dt, C, lo=0.5, hi=2.0)
        mean, rstd = np.empty(C), np.empty(C)
        _C.batch_norm_forward(np.empty_like(x), mean, rstd, rm, rv, x, w, b, training, 0.1, 1e-5)
        outs = {"dx": (x.shape, ACT), "dw": ((C,), PARAM), "db": ((C,), PARAM)}
        return (lambda o: _C.batch_norm_backward(o["dx"], o["dw"], o["db"], dy, x, mean, rstd, w, training)), outs
    return build


def group_norm_case(G):
    def build(dt):
        N, C, L = 6, 12, 301
        x, dy, w, b = _r(dt, N, C, L), _r(dt, N, C, L), _r(dt, C), _r(dt, C)
        mean, rstd = np.empty((N, G)), np.empty((N, G))
        _C.group_norm_forward(np.empty_like(x), mean, rstd, x, w, b, G, 1e-5)
        outs = {"dx": (x.shape, ACT), "dw": ((C,), PARAM), "db": ((C,), PARAM)}
        return (lambda o: _C.group_norm_backward(o["dx"], o["dw"], o["db"], dy, x, mean, rstd, w, G)), outs
    return build


def weight_norm_case(dt):
    N, C, L = 5, 16, 700
    v, g, dw = _r(dt, N, C, L), _r(dt, C), _r(dt, N, C, L)
    norm = np.empty(C)
    _C.weight_norm_forward(np.empty_like(v), norm, v, g)
    return (lambda o: _C.weight_norm_backward(o["dv"], o["dg"], dw, v, g, norm)), {"dv": (v.shape, ACT), "dg": ((C,), PARAM)}


def spectral_norm_case(dt):
    M, D = 40, 300
    W, dy, u, v = _r(dt, M, D), _r(dt, M, D), _r(dt, M), _r(dt, D)
    _C.spectral_norm_power_iteration(u, v, W, 3, 1e-12)
    sigma = _C.spectral_norm_forward(np.empty_like(W), W, u, v)
    return (lambda o: _C.spectral_norm_backward(o["dW"], dy, W, u, v, sigma)), {"dW": (W.shape, ACT)}


def dropout_case(dt):
    dy = _r(dt, 50000)
    return (lambda o: _C.dropout_backward(o["dx"], dy, 0.3, 7, 11)), {"dx": (dy.shape, ACT)}


def cross_entropy_case(red, smoothing, weighted):
    def build(dt):
        N, C, S = 33, 10, 3
        x, t = _r(dt, N, C, S), _targets(N, C, S)
        w = _r(dt, C, lo=0.5, hi=2.0) if weighted else None
        loss = np.empty(N * S if red == 0 else 1, dt)
        return (lambda o: _C.cross_entropy(loss, o["dx"], x, t, w, -100, smoothing, red)), {"dx": (x.shape, ACT)}
    return build


def cross_entropy_prob_case(red):
    def build(dt):
        N, C, S = 17, 9, 2
        x, t = _r(dt, N, C, S), _r(dt, N, C, S, lo=0.0, hi=1.0)
        loss = np.empty(N * S if red == 0 else 1, dt)
        outs = {"dx": (x.shape, ACT), "dt": (x.shape, ACT)}
        return (lambda o: _C.cross_entropy_prob(loss, o["dx"], o["dt"], x, t, None, 0.1, red)), outs
    return build


def loss_scale_case(rows):
    def build(dt):
        N, C, S = 20, 7, 4
        saved = _r(dt, N, C, S)
        g = _r(dt, N * S) if rows else 0.75
        return (lambda o: _C.loss_scale_grad(o["dx"], saved, g)), {"dx": (saved.shape, ACT)}
    return build


def nll_case(red, weighted):
    def build(dt):
        N, C, S = 25, 6, 3
        t = _targets(N, C, S)
        w = _r(dt, C, lo=0.5, hi=2.0) if weighted else None
        g = _r(dt, N * S) if red == 0 else 1.5
        return (lambda o: _C.nll_loss_backward(o["dx"], g, t, w, -100, red)), {"dx": ((N, C, S), ACT)}
    return build


_POINT_KINDS = {"mse": 0, "l1": 1, "huber": 2, "smooth_l1": 3, "bce": 4, "bce_logits": 5, "kl_div": 6,
                "kl_div_log": 7, "perceptron": 8}


def pointwise_case(name, per_elem):
    kind = _POINT_KINDS[name]

    def build(dt):
        R, K = 40, 300
        if name == "bce":
            x, y = _r(dt, R, K, lo=0.05, hi=0.95), _r(dt, R, K, lo=0.0, hi=1.0)
        elif name == "kl_div":
            x, y = _r(dt, R, K), _r(dt, R, K, lo=0.01, hi=1.0)
        else:
            x, y = _r(dt, R, K), _r(dt, R, K)
        g = _r(dt, R, K) if per_elem else None
        outs = {"dx": ((R, K), ACT), "dy": ((R, K), ACT)}
        return (lambda o: _C.pointwise_loss_backward(o["dx"], o["dy"], g, 0.5, x, y, None, None, kind, 1.0)), outs
    return build


def linear_ce_case(red, smoothing, bias):
    def build(dt):
        N, H, C = 24, 40, 50
        x, W, b, t = _r(dt, N, H), _r(dt, C, H), _r(dt, C) if bias else None, _targets(N, C)
        loss, lse = np.empty(N if red == 0 else 1, dt), np.empty(N, dt)
        _C.linear_cross_entropy(loss, lse, x, W, b, t, -100, smoothing, red, 16)
        g = _r(dt, N) if red == 0 else 1.25
        outs = {"dx": ((N, H), ACT), "dW": ((C, H), PARAM)}
        if bias:
            outs["db"] = ((C,), PARAM)
        return (lambda o: _C.linear_cross_entropy_backward(o["dx"], o["dW"], o.get("db"), g, lse, x, W, b, t, -100,
                                                           smoothing, red, 16)), outs
    return build


def penalty_case(kind):
    def build(dt):
        ps = [_r(dt, 100, 30), _r(dt, 7)]
        outs = {"g0": (ps[0].shape, ACT), "g1": (ps[1].shape, ACT)}
        return (lambda o: _C.penalty_backward([o["g0"], o["g1"]], ps, kind, 0.3)), outs
    return build


def bias_grad_case(accumulate):
    def build(dt):
        G = _r(dt, 300, 700)
        return (lambda o: _C.bias_grad(o["db"], G, accumulate)), {"db": ((700,), PARAM if accumulate else ACT)}
    return build


def linear_backward_case(dt):
    # nn.functional.linear's backward: dx = dz W (beta 0), dW += dz^T x (beta 1), db += colsum(dz).
    N, IN, OUT = 37, 50, 21
    x, W, dz = _r(dt, N, IN), _r(dt, OUT, IN), _r(dt, N, OUT)

    def call(o):
        _C.gemm(o["dx"], dz, W)
        _C.gemm(o["dW"], dz.T, x, 1.0, 1.0)
        _C.bias_grad(o["db"], dz, True)
    return call, {"dx": ((N, IN), ACT), "dW": ((OUT, IN), PARAM), "db": ((OUT,), PARAM)}


def gemm_dact_case(code):
    def build(dt):
        N, IN, OUT = 30, 40, 20
        W, dz, src = _r(dt, OUT, IN), _r(dt, N, OUT), _r(dt, N, IN)
        return (lambda o: _C.gemm(o["dh"], dz, W, dact_src=src, act=code)), {"dh": ((N, IN), ACT)}
    return build


def sdpa_case(build_mask):
    """Fused attention: dq, dk, dv and the float mask's gradient are input gradients (=), two row tiles."""
    def build(dt):
        BH, L, S, E, Ev = 2, 131, 130, 4, 3
        q, k, v, dy = _r(dt, BH, L, E), _r(dt, BH, S, E), _r(dt, BH, S, Ev), _r(dt, BH, L, Ev)
        m = _r(dt, BH, L, S) if build_mask else None
        offs = np.zeros((4, BH), np.int64)
        offs[0], offs[1], offs[2], offs[3] = np.arange(BH) * L * E, np.arange(BH) * S * E, np.arange(BH) * S * Ev, \
            np.arange(BH) * L * S
        out, lse = np.empty((BH, L, Ev), dt), np.empty((BH, L), dt)
        _C.sdpa_forward(out, lse, q, k, v, m, offs, 0.5, not build_mask, 0.2, 3, 4)
        outs = {"dq": ((BH, L, E), ACT), "dk": ((BH, S, E), ACT), "dv": ((BH, S, Ev), ACT)}
        if build_mask:
            outs["dm"] = ((BH, L, S), ACT)
        return (lambda o: _C.sdpa_backward(o["dq"], o["dk"], o["dv"], o.get("dm"), dy, out, lse, q, k, v, m, offs,
                                           0.5, not build_mask, 0.2, 3, 4)), outs
    return build


# ------------------------------------------------------------------------------ convolution
def conv_case(transposed):
    """conv2d / conv_transpose2d: dx overwrites, dweight and dbias accumulate (stride 2, groups 2)."""
    def build(dt):
        x, w = _r(dt, 2, 4, 9, 10), _r(dt, 4, 2, 3, 3)
        dy = _r(dt, 2, 4, 17, 19) if transposed else _r(dt, 2, 4, 5, 5)
        bwd = _C.conv_transpose2d_backward if transposed else _C.conv2d_backward
        outs = {"dx": (x.shape, ACT), "dw": (w.shape, PARAM), "db": ((4,), PARAM)}
        return (lambda o: bwd(o["dx"], o["dw"], o["db"], dy, x, w, (2, 2), (1, 1), (1, 1), 2)), outs
    return build


# ------------------------------------------------------------------------------ pooling (act gradients only)
def pool_case(kind):
    def build(dt):
        x = _r(dt, 12, 9, 11)
        if kind in ("max", "unpool"):
            y, idx = np.empty((12, 5, 6), dt), np.empty((12, 5, 6), np.int64)
            _C.max_pool2d_forward(y, idx, x, (3, 3), (2, 2), (1, 1), (1, 1))
            if kind == "max":
                dy = _r(dt, 12, 5, 6)
                return (lambda o: _C.max_pool2d_backward(o["dx"], dy, idx)), {"dx": (x.shape, ACT)}
            dy = _r(dt, 12, 9, 11)
            return (lambda o: _C.max_unpool2d_backward(o["dx"], dy, idx)), {"dx": ((12, 5, 6), ACT)}
        if kind == "avg":
            dy = _r(dt, 12, 5, 6)
            return (lambda o: _C.avg_pool2d_backward(o["dx"], dy, (3, 3), (2, 2), (1, 1), False, 0)), \
                {"dx": (x.shape, ACT)}
        if kind == "adaptive":
            dy = _r(dt, 12, 4, 5)
            return (lambda o: _C.adaptive_avg_pool2d_backward(o["dx"], dy)), {"dx": (x.shape, ACT)}
        dy = _r(dt, 12, 14, 17)
        return (lambda o: _C.interpolate_backward(o["dx"], dy, kind, False, 0.0, 0.0)), {"dx": (x.shape, ACT)}
    return build


_ACT_PARAMS = {int(_C.Act.LeakyReLU): (0.1, 0.0), int(_C.Act.ELU): (1.0, 0.0), int(_C.Act.Softplus): (1.5, 20.0),
               int(_C.Act.Hardtanh): (-0.5, 0.5)}
_GATES = [_C.Act.Sigmoid, _C.Act.SiLU, _C.Act.GELU, _C.Act.GELUTanh, _C.Act.ReLU, _C.Act.Identity]

CASES = (
    [(f"act_backward[{_C.Act(c).name}]", act_case(c, *_ACT_PARAMS.get(c, (0.0, 0.0)))) for c in range(_C.ACT_COUNT)]
    + [("prelu_backward[per-channel]", prelu_case(6)), ("prelu_backward[shared]", prelu_case(1)),
       ("swish_backward", swish_case)]
    + [(f"glu_backward[{g.name},{gf}]", glu_case(int(g), gf)) for g in _GATES for gf in (False, True)]
    + [("softmax_backward", softmax_case(False)), ("log_softmax_backward", softmax_case(True))]
    + [("layer_norm_backward", layer_norm_case(False)), ("rms_norm_backward", layer_norm_case(True)),
       ("layer_norm_backward[one row]", layer_norm_case(False, M=1, D=33))]
    + [(f"batch_norm_backward[train={tr},L={L}]", batch_norm_case(tr, L)) for tr in (True, False) for L in (1, 40)]
    + [("group_norm_backward", group_norm_case(3)), ("instance_norm_backward", group_norm_case(12))]
    + [("weight_norm_backward", weight_norm_case), ("spectral_norm_backward", spectral_norm_case),
       ("dropout_backward", dropout_case)]
    + [(f"cross_entropy[red={r},ls={ls},w={w}]", cross_entropy_case(r, ls, w))
       for r in (0, 1, 2) for ls in (0.0, 0.2) for w in (False, True)]
    + [(f"cross_entropy_prob[red={r}]", cross_entropy_prob_case(r)) for r in (0, 1, 2)]
    + [("loss_scale_grad[rows]", loss_scale_case(True)), ("loss_scale_grad[scalar]", loss_scale_case(False))]
    + [(f"nll_loss_backward[red={r},w={w}]", nll_case(r, w)) for r in (0, 1, 2) for w in (False, True)]
    + [(f"pointwise_loss_backward[{k},elem={e}]", pointwise_case(k, e)) for k in _POINT_KINDS for e in (False, True)]
    + [(f"linear_cross_entropy_backward[red={r},ls={ls},bias={b}]", linear_ce_case(r, ls, b))
       for r in (0, 1, 2) for ls in (0.0, 0.1) for b in (True, False)]
    + [("penalty_backward[l1]", penalty_case(1)), ("penalty_backward[l2]", penalty_case(2))]
    + [("bias_grad[accumulate]", bias_grad_case(True)), ("bias_grad[overwrite]", bias_grad_case(False)),
       ("linear_backward[gemm+bias_grad]", linear_backward_case)]
    + [(f"gemm[dact={_C.Act(c).name}]", gemm_dact_case(c)) for c in range(_C.ACT_COUNT)]
    + [("sdpa_backward[causal]", sdpa_case(False)), ("sdpa_backward[float mask]", sdpa_case(True))]
    + [(f"pool_backward[{k}]", pool_case(k)) for k in ("max", "unpool", "avg", "adaptive", "nearest", "bilinear")]
)

# ---- embedding family: dweight accumulates (repeated rows, padding, bags), d per_sample_weights overwrites.
def embedding_case(freq):
    def build(dt):
        w, idx = _r(dt, 40, 33), _rng.integers(0, 40, 600)
        dy = _r(dt, 600, 33)
        return (lambda o: _C.embedding_backward(o["dw"], dy, idx, 3, freq)), {"dw": (w.shape, PARAM)}
    return build


def embedding_bag_case(mode, psw):
    def build(dt):
        w, idx = _r(dt, 30, 17), _rng.integers(0, 30, 400)
        off = np.concatenate([np.sort(_rng.integers(0, 400, 40)), [400]]).astype(np.int64)
        off[0] = 0
        dy, p = _r(dt, 40, 17), (_r(dt, 400) if psw else None)
        mi = None
        if mode == 2:
            mi = np.empty((40, 17), np.int64)
            _C.embedding_bag_forward(np.empty((40, 17), dt), mi, w, idx, off, None, -1, 2)
        outs = {"dw": (w.shape, PARAM)}
        if psw:
            outs["dpsw"] = ((400,), ACT)
        return (lambda o: _C.embedding_bag_backward(o["dw"], o.get("dpsw"), dy, w, idx, off, p, mi, 5, mode,
                                                    False)), outs
    return build


CASES += ([(f"embedding_backward[freq={f}]", embedding_case(f)) for f in (False, True)]
          + [("embedding_bag_backward[sum]", embedding_bag_case(0, False)),
             ("embedding_bag_backward[sum,psw]", embedding_bag_case(0, True)),
             ("embedding_bag_backward[mean]", embedding_bag_case(1, False)),
             ("embedding_bag_backward[max]", embedding_bag_case(2, False))])


def rnn_case(mode, proj=0, packed=False):
    """One layer-direction of the recurrent sequence kernels: dx, dh0, dc0 overwrite; the weights accumulate.
    (The per-call workspaces are fresh arrays inside the call: they are not gradients.)"""
    def build(dt):
        G = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1}[mode]
        N, I, H = 3, 5, 4
        P = proj or H
        bs = np.array([3, 2, 2, 1] if packed else [3, 3, 3, 3], np.int64)
        R = int(bs.sum())
        lstm, gru = mode == "LSTM", mode == "GRU"
        x, wi, wh = _r(dt, R, I), _r(dt, G * H, I), _r(dt, G * H, P)
        bi, bh, wr = _r(dt, G * H), _r(dt, G * H), (_r(dt, P, H) if proj else None)
        h0, c0 = _r(dt, N, P), (_r(dt, N, H) if lstm else None)
        saved = dict(gates=np.empty((R, G * H), dt), c_all=np.empty((R, H), dt) if lstm else None,
                     h_raw=np.empty((R, H), dt) if proj else None, h_prev=np.empty((R, P), dt),
                     c_prev=np.empty((R, H), dt) if lstm else None, hn=np.empty((R, H), dt) if gru else None)
        y, hN, cN = np.empty((R, P), dt), np.empty((N, P), dt), (np.empty((N, H), dt) if lstm else None)
        _C.rnn_forward(y, hN, cN, saved["gates"], saved["c_all"], saved["h_raw"], saved["h_prev"], saved["c_prev"],
                       saved["hn"], None, x, wi, wh, bi, bh, wr, h0, c0, bs, mode, False)
        dy, dhn, dcn = _r(dt, R, P), _r(dt, N, P), (_r(dt, N, H) if lstm else None)

        def call(o):
            _C.rnn_backward(o["dx"], o["dh0"], o.get("dc0"), o["dwi"], o["dwh"], o["dbi"], o["dbh"], o.get("dwr"),
                            np.empty((R, G * H), dt), np.empty((R, G * H), dt) if gru else None,
                            np.empty((R, P), dt) if proj else None, np.empty((N, H), dt) if proj else None,
                            dy, dhn, dcn, x, wi, wh, wr, saved["gates"], saved["c_all"], saved["h_raw"],
                            saved["h_prev"], saved["c_prev"], saved["hn"], bs, mode, False)
        outs = {"dx": (x.shape, ACT), "dh0": (h0.shape, ACT), "dwi": (wi.shape, PARAM), "dwh": (wh.shape, PARAM),
                "dbi": (bi.shape, PARAM), "dbh": (bh.shape, PARAM)}
        if lstm:
            outs["dc0"] = ((N, H), ACT)
        if proj:
            outs["dwr"] = (wr.shape, PARAM)
        return call, outs
    return build


CASES += [("rnn_backward[LSTM]", rnn_case("LSTM")), ("rnn_backward[LSTM,proj,packed]", rnn_case("LSTM", 2, True)),
          ("rnn_backward[GRU,packed]", rnn_case("GRU", 0, True)), ("rnn_backward[RNN_TANH]", rnn_case("RNN_TANH"))]

def lstm2_case(packed=False):
    """The two-layer LSTM wavefront: dx, each layer's dh0 / dc0 overwrite; both layers' weights accumulate."""
    def build(dt):
        N, I, H = 3, 5, 4
        bs = np.array([3, 2, 2, 1] if packed else [3, 3, 3, 3], np.int64)
        R = int(bs.sum())
        x = _r(dt, R, I)
        w = [(_r(dt, 4 * H, i), _r(dt, 4 * H, H), _r(dt, 4 * H), _r(dt, 4 * H)) for i in (I, H)]
        layers = [(np.empty((R, H), dt), np.empty((N, H), dt), np.empty((N, H), dt), np.empty((R, 4 * H), dt),
                   np.empty((R, H), dt), np.empty((R, H), dt), np.empty((R, H), dt), *w[l], _r(dt, N, H),
                   _r(dt, N, H)) for l in range(2)]
        _C.lstm2_forward(layers, x, bs)
        dy, dhn, dcn = _r(dt, R, H), [_r(dt, N, H) for _ in range(2)], [_r(dt, N, H) for _ in range(2)]

        def call(o):
            grads = [(o[f"dh0_{l}"], o[f"dc0_{l}"], o[f"dwi{l}"], o[f"dwh{l}"], o[f"dbi{l}"], o[f"dbh{l}"],
                      np.empty((R, 4 * H), dt), dhn[l], dcn[l]) for l in range(2)]
            _C.lstm2_backward(o["dx"], np.empty((R, H), dt), dy, grads, layers, x, bs)
        outs = {"dx": (x.shape, ACT)}
        for l in range(2):
            outs.update({f"dh0_{l}": ((N, H), ACT), f"dc0_{l}": ((N, H), ACT), f"dwi{l}": (w[l][0].shape, PARAM),
                         f"dwh{l}": (w[l][1].shape, PARAM), f"dbi{l}": ((4 * H,), PARAM),
                         f"dbh{l}": ((4 * H,), PARAM)})
        return call, outs
    return build


CASES += [("lstm2_backward", lstm2_case()), ("lstm2_backward[packed]", lstm2_case(True))]

CASES += [("conv2d_backward", conv_case(False)), ("conv_transpose2d_backward", conv_case(True))]

# Every backward entry point of _C must appear in the table (a new one needs a line here).
_BACKWARD_BINDINGS = {"act_backward", "prelu_backward", "swish_backward", "glu_backward", "softmax_backward",
                      "layer_norm_backward", "batch_norm_backward", "group_norm_backward", "weight_norm_backward",
                      "spectral_norm_backward", "dropout_backward", "cross_entropy", "cross_entropy_prob",
                      "loss_scale_grad", "nll_loss_backward", "pointwise_loss_backward",
                      "linear_cross_entropy_backward", "penalty_backward", "bias_grad", "gemm",
                      "sdpa_backward"}
_BACKWARD_BINDINGS |= {"embedding_backward", "embedding_bag_backward"}
_BACKWARD_BINDINGS |= {"rnn_backward", "lstm2_backward"}  # recurrent family
_BACKWARD_BINDINGS |= {"conv2d_backward", "conv_transpose2d_backward"}  # convolution family
_BACKWARD_BINDINGS |= {"max_pool2d_backward", "max_unpool2d_backward", "avg_pool2d_backward",
                       "adaptive_avg_pool2d_backward", "interpolate_backward"}  # pooling family


def test_table_covers_every_backward_binding():
    runtime = {n for n in dir(_C) if n.endswith("_backward") or n == "bias_grad"}
    assert runtime <= _BACKWARD_BINDINGS, f"backward bindings without a contract line: {runtime - _BACKWARD_BINDINGS}"


def _alloc(outs, dtype):
    return {n: (np.zeros(s, dtype) if kind == PARAM else np.full(s, np.nan, dtype)) for n, (s, kind) in outs.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,build", CASES, ids=[c[0] for c in CASES])
def test_gradient_contract(name, build, dtype):
    call, outs = build(dtype)
    once = _alloc(outs, dtype)
    call(once)
    twice = _alloc(outs, dtype)
    call(twice)
    call(twice)
    for n, (_, kind) in outs.items():
        a, b = once[n], twice[n]
        assert not np.isnan(a).any(), f"{name}: {n} left NaN after one call ({kind} gradient not fully written)"
        if kind == PARAM:
            assert np.any(a != 0), f"{name}: {n} is all zero (the line does not exercise it)"
            np.testing.assert_array_equal(b, 2 * a, err_msg=f"{name}: parameter gradient {n} must accumulate (+=)")
        else:
            np.testing.assert_array_equal(b, a, err_msg=f"{name}: activation gradient {n} must overwrite (=)")


def test_parameter_gradient_adds_into_existing_values():
    # Accumulation is into whatever the buffer holds (a previous micro-batch's .grad), not only zeros.
    call, outs = layer_norm_case(False)(np.float64)
    fresh = _alloc(outs, np.float64)
    call(fresh)
    base = {n: np.full(s, 0.25) if k == PARAM else np.full(s, np.nan) for n, (s, k) in outs.items()}
    call(base)
    np.testing.assert_allclose(base["dw"], fresh["dw"] + 0.25, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(base["db"], fresh["db"] + 0.25, rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(base["dx"], fresh["dx"])


# ------------------------------------------------------------------------------ through the layers
def _layers():
    return [
        ("LayerNorm", lambda: nn.LayerNorm(9), (6, 9)),
        ("BatchNorm1d", lambda: nn.BatchNorm1d(5), (8, 5, 3)),
        ("GroupNorm", lambda: nn.GroupNorm(2, 6), (4, 6, 5)),
        ("InstanceNorm1d", lambda: nn.InstanceNorm1d(4, affine=True), (3, 4, 7)),
        ("PReLU", lambda: nn.PReLU(3), (4, 3, 5)),
        ("weight_norm", lambda: nn.utils.weight_norm(nn.Linear(5, 4)), (6, 5)),
    ]


@pytest.mark.parametrize("name,make,shape", _layers(), ids=[l[0] for l in _layers()])
def test_layers_accumulate_into_existing_grad_in_place(name, make, shape):
    nnfast.manual_seed(0)
    m = make().double()
    x = nnfast.tensor(np.random.default_rng(0).standard_normal(shape))
    (m(x) ** 2).sum().backward()
    first = {n: p.grad.numpy().copy() for n, p in m.named_parameters()}
    buffers = {n: p.grad._data for n, p in m.named_parameters()}
    (m(x) ** 2).sum().backward()
    for n, p in m.named_parameters():
        if name != "weight_norm" or n.endswith("_g"):  # weight_norm: g via the kernel, v through Linear
            assert p.grad._data is buffers[n], f"{name}.{n}: gradient buffer was replaced"
        np.testing.assert_allclose(p.grad.numpy(), 2 * first[n], rtol=1e-12, atol=1e-12)


def test_linear_cross_entropy_accumulates_into_existing_grad():
    rng = np.random.default_rng(0)
    x = nnfast.tensor(rng.standard_normal((10, 6)), requires_grad=True)
    W = nnfast.tensor(rng.standard_normal((7, 6)), requires_grad=True)
    b = nnfast.tensor(rng.standard_normal(7), requires_grad=True)
    t = nnfast.tensor(rng.integers(0, 7, 10))
    F.linear_cross_entropy(x, W, b, t).backward()
    g1 = [x.grad.numpy().copy(), W.grad.numpy().copy(), b.grad.numpy().copy()]
    bufs = [W.grad._data, b.grad._data]
    F.linear_cross_entropy(x, W, b, t).backward()
    assert W.grad._data is bufs[0] and b.grad._data is bufs[1]
    for p, g in zip((x, W, b), g1):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-12, atol=1e-12)


def test_same_tensor_as_weight_and_bias():
    # One .grad cannot be both kernel outputs (they must not alias): the bias part goes through the tape.
    rng = np.random.default_rng(0)
    p = nnfast.tensor(rng.standard_normal(5), requires_grad=True)
    x = nnfast.tensor(rng.standard_normal((4, 5)))
    F.layer_norm(x, (5,), p, p).sum().backward()
    g1 = p.grad.numpy().copy()
    F.layer_norm(x, (5,), p, p).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), 2 * g1, rtol=1e-12, atol=1e-12)
