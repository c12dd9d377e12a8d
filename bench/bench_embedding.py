"""Embedding / EmbeddingBag benchmark: nnfast vs PyTorch CPU, same run, same threads.

Cases (float32, int64 indices, weights of Embedding(50000, 512)):
  * embedding forward (gather) of a (64, 128) token batch;
  * embedding forward + backward (scatter-add into a fresh weight gradient, as after
    ``zero_grad()``: both libraries allocate and zero the 100 MB gradient);
  * embedding backward into an existing gradient (nnfast accumulates in place; PyTorch
    makes its dense gradient and adds it);
  * EmbeddingBag(mode='sum') forward and forward + backward on the same tokens as 64 bags of 128;
  * a small Embedding(65, 48) on 16x64 tokens, forward + backward (per-call overhead).
Each case checks nnfast's result against PyTorch's first, then times the contenders
interleaved (median of --reps) and reports ms, the ratio nnfast / PyTorch and GB/s over the
minimum bytes moved (gather: rows read + rows written; scatter: dy read + touched rows read and
written; a fresh gradient adds R * D * 4 bytes of zero fill).

    python bench/bench_embedding.py [--threads 2] [--reps 15]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

try:
    import nnfast
except ImportError:  # run from a checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F

R, D, B, L = 50000, 512, 64, 128


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # pragma: no cover
        return "unknown CPU"


def interleaved(fns: dict, reps: int) -> dict:
    ts: dict = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in ts.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    import torch

    nnfast.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((R, D)).astype(np.float32)
    idx = rng.integers(0, R, (B, L))
    g = rng.standard_normal((B, L, D)).astype(np.float32)
    gb = rng.standard_normal((B, D)).astype(np.float32)

    emb = nn.Embedding(R, D)
    emb.weight._data[...] = w
    temb = torch.nn.Embedding(R, D)
    with torch.no_grad():
        temb.weight.copy_(torch.from_numpy(w))
    bag = nn.EmbeddingBag(R, D, mode="sum")
    bag.weight._data[...] = w
    tbag = torch.nn.EmbeddingBag(R, D, mode="sum")
    with torch.no_grad():
        tbag.weight.copy_(torch.from_numpy(w))
    ni, ti = nnfast.tensor(idx), torch.from_numpy(idx)
    ng, tg, ngb, tgb = nnfast.tensor(g), torch.from_numpy(g), nnfast.tensor(gb), torch.from_numpy(gb)

    # correctness first
    out, tout = emb(ni), temb(ti)
    np.testing.assert_array_equal(out.detach().numpy(), tout.detach().numpy())
    out.backward(ng)
    tout.backward(tg)
    np.testing.assert_allclose(emb.weight.grad.numpy(), temb.weight.grad.numpy(), rtol=1e-5, atol=1e-4)
    bo, tbo = bag(ni), tbag(ti)
    np.testing.assert_allclose(bo.detach().numpy(), tbo.detach().numpy(), rtol=1e-5, atol=1e-4)

    N = B * L
    row_bytes = N * D * 4
    zero_fill = R * D * 4

    def fwd_bwd(m, x, grad, fresh=True):
        def run():
            if fresh:
                m.weight.grad = None
            m(x).backward(grad)
        return run

    cases = [
        ("embedding forward", {"nnfast": lambda: emb(ni), "torch": lambda: temb(ti)}, 2 * row_bytes),
        ("embedding fwd+bwd, fresh grad", {"nnfast": fwd_bwd(emb, ni, ng), "torch": fwd_bwd(temb, ti, tg)},
         2 * row_bytes + 3 * row_bytes + zero_fill),
        ("embedding fwd+bwd, grad exists", {"nnfast": fwd_bwd(emb, ni, ng, False),
                                            "torch": fwd_bwd(temb, ti, tg, False)}, 5 * row_bytes),
        ("embedding_bag sum forward", {"nnfast": lambda: bag(ni), "torch": lambda: tbag(ti)}, row_bytes + B * D * 4),
        ("embedding_bag sum fwd+bwd, fresh grad", {"nnfast": fwd_bwd(bag, ni, ngb), "torch": fwd_bwd(tbag, ti, tgb)},
         row_bytes + B * D * 4 + 2 * row_bytes + zero_fill),
    ]
    # a small token embedding as in a GPT-nano step (per-call overhead dominates)
    small, tsmall = nn.Embedding(65, 48), torch.nn.Embedding(65, 48)
    sidx = rng.integers(0, 65, (16, 64))
    sg = rng.standard_normal((16, 64, 48)).astype(np.float32)
    cases.append(("Embedding(65, 48) 16x64 fwd+bwd, fresh grad",
                  {"nnfast": fwd_bwd(small, nnfast.tensor(sidx), nnfast.tensor(sg)),
                   "torch": fwd_bwd(tsmall, torch.from_numpy(sidx), torch.from_numpy(sg))},
                  5 * 16 * 64 * 48 * 4 + 65 * 48 * 4))
    print(f"# {cpu_name()}, {args.threads} threads, nnfast {nnfast.__version__} vs torch {torch.__version__}; "
          f"Embedding({R}, {D}), {B}x{L} int64 tokens, float32; median of {args.reps}, contenders interleaved")
    print("| case | nnfast ms | torch ms | nnfast / torch | nnfast GB/s | torch GB/s | bytes (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, fns, nbytes in cases:
        for f in fns.values():
            f()  # warm up
        t = interleaved(fns, args.reps if nbytes > 1e7 else 20 * args.reps)
        print(f"| {name} | {t['nnfast'] * 1e3:.2f} | {t['torch'] * 1e3:.2f} | {t['nnfast'] / t['torch']:.2f} | "
              f"{nbytes / t['nnfast'] / 1e9:.1f} | {nbytes / t['torch'] / 1e9:.1f} | {nbytes / 1e6:.0f} |")


if __name__ == "__main__":
    main()
