"""Per-layer profile of the GPT step (examples/char_gpt.py), nnfast vs PyTorch, same process.

    python bench/gpt_parts.py [--only nano,micro] [--threads 1] [--rounds 20] [--ab [--ab-what fma|heads]]

Times each layer of one transformer block at the bench's shapes, forward and backward apart
(best of rounds, the two contenders alternated; process CPU time at 1 thread, wall time above),
plus the head (tied linear + cross-entropy), then the whole step by op family (each part times its
count per step, AdamW's step alone, and the rest: autograd / module Python, embeddings, zero_grad).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import nnfast
import nnfast.nn.functional as F
from nnfast.bench.common import torch_or_none

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_gpt as bg  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="nano,micro")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--ab", action="store_true",
                    help="instead: A/B of the whole nnfast step (bench_gpt's) and of the attention layer alone "
                         "(fwd + bwd), new vs old path alternated in one process (see --ab-what)")
    ap.add_argument("--ab-what", choices=("fma", "heads", "ce", "kvt"), default="fma",
                    help="fma: the attention kernel's small products with FMAs and exps over the causal rows' "
                         "live columns only (new) vs multiply-then-add and whole rows (old, NNFAST_ATTN_OLD=1); heads: packed_self_attention's heads written in place "
                         "(new) vs split / merge copies (old); ce: the tied head + cross-entropy's backward reading the "
                         "logits its forward kept (new) vs recomputing them (old, NNFAST_LINEAR_CE_KEEP=0); kvt: small heads' K / V tiles "
                         "transposed in 8 x 8 register blocks (new) vs element by element (old, NNFAST_ATTN_BLOCKED_T=0)")
    a = ap.parse_args()
    if a.ab:
        return ab(a)
    torch = torch_or_none()
    TF = torch.nn.functional
    nnfast.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    clock = time.process_time if a.threads == 1 else time.perf_counter
    for name in a.only.split(","):
        L, H, C, T, B = bg.CONFIGS[name]
        V = 65
        rng = np.random.default_rng(0)
        r = lambda *s: (0.1 * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
        x0, w1, b1, w2, b2, h = r(B, T, C), r(3 * C, C), r(3 * C), r(C, C), r(C), r(B, T, 4 * C)
        w3, b3, w4, b4, g, be, wte = r(4 * C, C), r(4 * C), r(C, 4 * C), r(C), 1 + r(C), r(C), r(V, C)
        tgt = rng.integers(0, V, (B, T))
        N = {k: nnfast.tensor(v, requires_grad=True) for k, v in dict(x=x0, h=h, w1=w1, b1=b1, w2=w2, b2=b2, w3=w3, b3=b3,
                                                                        w4=w4, b4=b4, g=g, be=be, wte=wte).items()}
        P = {k: torch.tensor(v.numpy() if hasattr(v, "numpy") else v, requires_grad=True)
             for k, v in dict(x=x0, h=h, w1=w1, b1=b1, w2=w2, b2=b2, w3=w3, b3=b3, w4=w4, b4=b4, g=g, be=be,
                              wte=wte).items()}
        tn, tt = nnfast.tensor(tgt), torch.tensor(tgt)

        def tattn(qkv):
            q, k, v = qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
            return TF.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)

        cases = {
            "layer_norm": (lambda d: F.layer_norm(d["x"], (C,), d["g"], d["be"]),
                           lambda d: TF.layer_norm(d["x"], (C,), d["g"], d["be"])),
            "c_attn C->3C": (lambda d: F.linear(d["x"], d["w1"], d["b1"]), lambda d: TF.linear(d["x"], d["w1"], d["b1"])),
            "attention": (lambda d: F.packed_self_attention(F.linear(d["x"], d["w1"], d["b1"]), H, is_causal=True),
                          lambda d: tattn(TF.linear(d["x"], d["w1"], d["b1"]))),
            "c_proj C->C": (lambda d: F.linear(d["x"], d["w2"], d["b2"]), lambda d: TF.linear(d["x"], d["w2"], d["b2"])),
            "residual add": (lambda d: d["x"] + d["x"] * 1.0, lambda d: d["x"] + d["x"] * 1.0),
            "c_fc+gelu C->4C": (lambda d: F.linear(d["x"], d["w3"], d["b3"], activation="gelu"),  # fused, as the example
                                lambda d: TF.gelu(TF.linear(d["x"], d["w3"], d["b3"]))),
            "mlp c_proj 4C->C": (lambda d: F.linear(d["h"], d["w4"], d["b4"]), lambda d: TF.linear(d["h"], d["w4"], d["b4"])),
            "head+CE": (lambda d: F.linear_cross_entropy(d["x"], d["wte"], None, tn),
                        lambda d: TF.cross_entropy(TF.linear(d["x"], d["wte"]).view(-1, V), tt.view(-1))),
        }
        print(f"\nGPT-{name} parts (ms, best of {a.rounds}; nnfast / torch; fwd, bwd incl. a .sum()):")
        per = {}
        for cname, (fn, ft) in cases.items():
            res = {"n": ([], []), "t": ([], [])}
            for _ in range(a.rounds):
                for who, f, d in (("n", fn, N), ("t", ft, P)):
                    t0 = clock()
                    y = f(d)
                    t1 = clock()
                    y.sum().backward()
                    t2 = clock()
                    res[who][0].append(t1 - t0)
                    res[who][1].append(t2 - t1)
                    for v in d.values():
                        v.grad = None
            fn_, bn = min(res["n"][0]) * 1e3, min(res["n"][1]) * 1e3
            ft_, bt = min(res["t"][0]) * 1e3, min(res["t"][1]) * 1e3
            print(f"  {cname:18s} fwd {fn_:6.3f} / {ft_:6.3f}   bwd {bn:6.3f} / {bt:6.3f}   "
                  f"total {(fn_ + bn) / (ft_ + bt):.2f}x")
            per[cname] = (fn_ + bn, ft_ + bt)
        family_totals(a, torch, clock, name, per)
    return 0


def family_totals(a, torch, clock, name, per) -> None:
    """The step by op family: each part above times its count per step (attention less its c_attn),
    AdamW's step alone, and the rest of bench_gpt's whole step (autograd and module Python,
    embeddings, zero_grad, the .sum()s' difference) as whole step minus those."""
    L = bg.CONFIGS[name][0]
    counts = {"layer_norm": 2 * L + 1, "c_attn C->3C": L, "attention": L, "c_proj C->C": L,
              "residual add": 2 * L, "c_fc+gelu C->4C": L, "mlp c_proj 4C->C": L, "head+CE": 1}
    per = dict(per, attention=tuple(x - c for x, c in zip(per["attention"], per["c_attn C->3C"])))
    g = bg._example()
    data = g.CharData(nnfast.datasets.genesis_kjv())
    _, _, step_n, step_t, opt_n, opt_t, _, _ = bg.build(torch, g, data, name)
    res = {k: [] for k in ("step_n", "step_t", "adam_n", "adam_t")}
    for r in range(a.rounds + 2):
        for k, f in (("step_n", step_n), ("step_t", step_t), ("adam_n", opt_n.step), ("adam_t", opt_t.step)):
            t0 = clock()
            f()
            if r >= 2:
                res[k].append(clock() - t0)
    best = {k: min(v) * 1e3 for k, v in res.items()}
    rows = [(k, c * per[k][0], c * per[k][1]) for k, c in counts.items()]
    rows.append(("AdamW step", best["adam_n"], best["adam_t"]))
    sn, st = sum(r[1] for r in rows), sum(r[2] for r in rows)
    rows += [("rest of the step", best["step_n"] - sn, best["step_t"] - st), ("whole step", best["step_n"], best["step_t"])]
    print(f"GPT-{name} step by family (ms per step, nnfast / torch, share of nnfast's step):")
    for k, n, t in rows:
        print(f"  {k:18s} {n:7.2f} / {t:7.2f}  {n / t if t else float('nan'):5.2f}x  {100 * n / best['step_n']:5.1f}%")


def ab(a) -> int:
    import nnfast.nn.functional._loss as lo
    import nnfast.nn.functional._transformer as tr
    nnfast.set_num_threads(a.threads)
    clock = time.process_time if a.threads == 1 else time.perf_counter
    g = bg._example()
    data = g.CharData(nnfast.datasets.genesis_kjv())
    for name in a.only.split(","):
        L, H, C, T, B = bg.CONFIGS[name]
        nnfast.manual_seed(0)
        model = g.GPT(g.GPTConfig(vocab_size=len(data.chars), block_size=T, n_layer=L, n_head=H, n_embd=C))
        opt = nnfast.optim.AdamW(g.param_groups(model, 0.1), lr=1e-3)
        x, y = data.batch("train", B, T, np.random.default_rng(0))

        def step():
            loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def set_new(flag: bool) -> None:
            if a.ab_what == "heads":
                tr._HEADS_IN_PLACE = flag
            elif a.ab_what == "ce":
                lo._KEEP_LOGITS = flag
            elif a.ab_what == "kvt":
                os.environ["NNFAST_ATTN_BLOCKED_T"] = "1" if flag else "0"
            elif flag:
                os.environ.pop("NNFAST_ATTN_OLD", None)
            else:
                os.environ["NNFAST_ATTN_OLD"] = "1"

        qkv = nnfast.tensor((0.5 * np.random.default_rng(1).standard_normal((B, T, 3 * C))).astype(np.float32),
                            requires_grad=True)

        def attn():
            F.packed_self_attention(qkv, H, is_causal=True).sum().backward()
            qkv.grad = None

        xh = nnfast.tensor((0.5 * np.random.default_rng(2).standard_normal((B, T, C))).astype(np.float32),
                           requires_grad=True)

        def head():
            F.linear_cross_entropy(xh, model.wte.weight, None, y).backward()
            xh.grad = None
            model.wte.weight.grad = None

        part = ("head+CE fwd+bwd", head) if a.ab_what == "ce" else ("attention fwd+bwd", attn)
        for what, fn in (("step", step), part):
            res: dict[bool, list[float]] = {True: [], False: []}
            for r in range(a.rounds * 2 + 4):
                for flag in (True, False) if r % 2 else (False, True):
                    set_new(flag)
                    t0 = clock()
                    fn()
                    if r >= 4:
                        res[flag].append(clock() - t0)
            set_new(True)
            new, old = min(res[True]), min(res[False])
            mn, mo = float(np.median(res[True])), float(np.median(res[False]))
            print(f"GPT-{name} {what}, {a.threads} thread(s), A/B {a.ab_what}: new best {new * 1e3:.3f} ms "
                  f"(median {mn * 1e3:.3f}), old best {old * 1e3:.3f} ms (median {mo * 1e3:.3f}): "
                  f"new/old {new / old:.3f} best, {mn / mo:.3f} median")
    return 0


if __name__ == "__main__":
    sys.exit(main())
