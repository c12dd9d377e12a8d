"""GPT training-step benchmark: examples/char_gpt.py's model on nnfast vs the same model written in
PyTorch (CPU), in one run.

    python bench/bench_gpt.py [--threads 2] [--rounds 15] [--only nano,micro] [--profile] [--cpu-time]

A step is forward (fused tied-head + cross-entropy), backward and an AdamW step (zero_grad
included), float32, on a fixed batch of the bundled Genesis text. Both models start from the same
weights (nnfast's state_dict loaded into torch); before timing, the script checks that the loss,
every gradient and the parameters after one AdamW step agree. Timing alternates the two contenders
(one step each per round) so load changes hit both, and reports the best and the median step.
FLOPs: 6 x (non-embedding matmul parameters + tied head) x tokens + 12 x B x T^2 x C for attention
(scores and weighted sum, forward and backward, the full T x T as both contenders compute it).
Importing nnfast fixes glibc's mmap / trim thresholds for the whole process (nnfast/_malloc.py: no
per-step page faults of freed activation buffers), so PyTorch here runs with them too;
NNFAST_MALLOC_TUNE=0 leaves glibc's defaults (an A/B of that change in one command each).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import numpy as np

import nnfast
from nnfast.bench.common import cpu_name, torch_or_none

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {  # name: (n_layer, n_head, n_embd, block, batch)
    "nano": (3, 3, 48, 64, 16),
    "micro": (4, 4, 128, 64, 16),
}


def _example():
    spec = importlib.util.spec_from_file_location("char_gpt", os.path.join(ROOT, "examples", "char_gpt.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["char_gpt"] = mod
    spec.loader.exec_module(mod)
    return mod


def torch_gpt(torch, n_layer, n_head, n_embd, block, vocab):
    """The same GPT in PyTorch (nanoGPT's layout and names, tied head, exact GELU, sdpa causal)."""
    nn, F = torch.nn, torch.nn.functional

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
            self.resid_dropout = nn.Dropout(0.0)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.c_attn(x).view(B, T, 3, n_head, C // n_head).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc, self.c_proj = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)
            self.dropout = nn.Dropout(0.0)

        def forward(self, x):
            return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn, self.ln_2, self.mlp = nn.LayerNorm(n_embd), Attn(), nn.LayerNorm(n_embd), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block, n_embd)
            self.drop = nn.Dropout(0.0)
            self.h = nn.ModuleList([Block() for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(n_embd)

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.drop(self.wte(idx) + self.wpe(torch.arange(T)))
            for b in self.h:
                x = b(x)
            logits = F.linear(self.ln_f(x), self.wte.weight)
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    return GPT()


def flops_per_step(n_layer, n_embd, block, batch, vocab):
    tokens = batch * block
    matmul_params = n_layer * 12 * n_embd * n_embd + vocab * n_embd
    return 6.0 * matmul_params * tokens + n_layer * 12.0 * batch * block * block * n_embd


def build(torch, g, data, name):
    """Both contenders of config ``name``, same weights: models, step functions, optimizers, the batch."""
    L, H, C, T, B = CONFIGS[name]
    vocab = len(data.chars)
    nnfast.manual_seed(0)
    cfg = g.GPTConfig(vocab_size=vocab, block_size=T, n_layer=L, n_head=H, n_embd=C)
    ours = g.GPT(cfg)
    theirs = torch_gpt(torch, L, H, C, T, vocab)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    opt_n = nnfast.optim.AdamW(g.param_groups(ours, 0.1), lr=1e-3)
    decay = {id(m.weight) for m in theirs.modules() if isinstance(m, torch.nn.Linear)}
    opt_t = torch.optim.AdamW([{"params": [p for p in theirs.parameters() if id(p) in decay], "weight_decay": 0.1},
                               {"params": [p for p in theirs.parameters() if id(p) not in decay],
                                "weight_decay": 0.0}], lr=1e-3)
    x, y = data.batch("train", B, T, np.random.default_rng(0))
    xt, yt = torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())

    def stepper(model, opt, idx, targets):  # a step: forward + loss, zero_grad, backward, AdamW
        def step():
            loss = model(idx, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss
        return step

    return ours, theirs, stepper(ours, opt_n, x, y), stepper(theirs, opt_t, xt, yt), opt_n, opt_t, x, y


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", default="nano,micro")
    ap.add_argument("--profile", action="store_true", help="cProfile nnfast's step (top 25 by own time)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the process's CPU time instead of wall time (steadier on a loaded machine; "
                         "at N > 1 threads it counts every thread, spin-waits included)")
    args = ap.parse_args()
    torch = torch_or_none()
    if torch is None:
        print("PyTorch is not installed: nothing to compare with")
        return 1
    nnfast.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    g = _example()
    data = g.CharData(nnfast.datasets.genesis_kjv())
    vocab = len(data.chars)
    peak = nnfast._C.fma_peak_gflops()
    print(("timing: process CPU time" if args.cpu_time else "timing: wall time") + "; ", end="")
    print(f"CPU: {cpu_name()}; threads: nnfast {nnfast.get_num_threads()}, torch {torch.get_num_threads()}; "
          f"measured FMA peak {peak:.0f} GFLOP/s per core (float32)")
    print("F.scaled_dot_product_attention: " + ("PLACEHOLDER composite (matmul + softmax + matmul)"
          if "PLACEHOLDER" in (nnfast.nn.functional._attention.__doc__ or "") else "fused kernel"))
    for name in args.only.split(","):
        L, H, C, T, B = CONFIGS[name]
        ours, theirs, step_n, step_t, opt_n, opt_t, x, y = build(torch, g, data, name)
        # correctness first: the loss, every gradient, and the parameters after one step
        ln, lt = step_n(), step_t()
        if abs(ln.item() - lt.item()) > 1e-5 * abs(lt.item()):
            print(f"{name}: loss differs: nnfast {ln.item()} torch {lt.item()}")
            return 1
        tp = dict(theirs.named_parameters())
        for k, p in ours.named_parameters():
            gn, gt = p.grad.numpy(), tp[k].grad.numpy()
            if not np.allclose(gn, gt, rtol=1e-3, atol=1e-3 * max(1e-6, np.abs(gt).max())):
                print(f"{name}: gradient of {k} differs (max abs diff {np.abs(gn - gt).max():.2e})")
                return 1
            # Adam's first step is lr * g / (|g| + eps): compare where |g| is not at rounding level
            sure = np.abs(gt) > 1e-4 * np.abs(gt).max()
            if not np.allclose(p.detach().numpy()[sure], tp[k].detach().numpy()[sure], rtol=1e-4, atol=1e-5):
                print(f"{name}: parameter {k} differs after one AdamW step")
                return 1
        for _ in range(3):
            step_n()
            step_t()
        tn, tt = [], []
        for _ in range(args.rounds):
            t0 = clock()
            step_n()
            t1 = clock()
            step_t()
            t2 = clock()
            tn.append(t1 - t0)
            tt.append(t2 - t1)
        fl = flops_per_step(L, C, T, B, vocab)
        n_params = sum(p.numel() for p in ours.parameters())
        print(f"\nGPT-{name}: {L} layers, {H} heads, {C} wide, block {T}, batch {B}, vocab {vocab}, "
              f"{n_params / 1e3:.0f}k params, {fl / 1e9:.3f} GFLOP per step (float32)")
        for who, ts in (("nnfast", tn), ("torch", tt)):
            best, med = min(ts), float(np.median(ts))
            print(f"  {who:7s} best {best * 1e3:8.2f} ms  median {med * 1e3:8.2f} ms  "
                  f"{fl / best / 1e9:6.1f} GFLOP/s ({100 * fl / best / 1e9 / (peak * args.threads):4.1f}% of "
                  f"{args.threads}-core peak)")
        print(f"  nnfast / torch step time: best {min(tn) / min(tt):.2f}x, median "
              f"{float(np.median(tn)) / float(np.median(tt)):.2f}x  (target <= 0.7x)")
        # the attention core alone (forward + backward of every layer's sdpa), same alternation
        q_np = np.random.default_rng(1).standard_normal((3, B, H, T, C // H)).astype(np.float32)
        qn = [nnfast.tensor(a, requires_grad=True) for a in q_np]
        qt = [torch.tensor(a, requires_grad=True) for a in q_np]
        sn, st = [], []
        for _ in range(args.rounds):
            t0 = clock()
            for _ in range(L):
                nnfast.nn.functional.scaled_dot_product_attention(*qn, is_causal=True).sum().backward()
            t1 = clock()
            for _ in range(L):
                torch.nn.functional.scaled_dot_product_attention(*qt, is_causal=True).sum().backward()
            t2 = clock()
            sn.append(t1 - t0)
            st.append(t2 - t1)
        print(f"  of which sdpa fwd+bwd x {L} layers: nnfast best {min(sn) * 1e3:.2f} ms, torch best "
              f"{min(st) * 1e3:.2f} ms; step without it: nnfast {(min(tn) - min(sn)) * 1e3:.2f} ms, torch "
              f"{(min(tt) - min(st)) * 1e3:.2f} ms ({(min(tn) - min(sn)) / (min(tt) - min(st)):.2f}x)")
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(5):
                step_n()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    print("\n(timings on a shared machine are noisy: best-of-rounds is the figure to compare)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
