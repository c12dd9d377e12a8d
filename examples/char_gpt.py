"""A character-level GPT on the bundled Book of Genesis (KJV, public domain), all on nnfast.

    python examples/char_gpt.py [--iters 2000] [--n-layer 4 --n-head 4 --n-embd 128 --block 64]
                                [--batch 16] [--sample 300] [--threads N]

The model is nanoGPT's shape: token + position ``nn.Embedding``, pre-norm blocks of causal
self-attention (one packed q/k/v GEMM, ``F.packed_self_attention(is_causal=True)``: the fused
attention kernel reading the heads in place) and a GELU MLP (GELU fused in the first GEMM's
epilogue), a final LayerNorm and a language-model head
tied to the token embedding, whose loss runs in nnfast's fused linear + cross-entropy (the logits
are never stored). Training: AdamW with weight-decay parameter groups (no decay on biases,
LayerNorm weights or embeddings), ``clip_grad_norm_``, linear warmup then cosine decay.
It prints train / val loss (in nats; ln(vocab) is the loss of a uniform guess) and a sample
drawn with ``generate(idx, max_new_tokens, temperature, top_k)`` (nnfast's topk / multinomial).
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 70
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v in one GEMM
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.n_head, self.dropout = cfg.n_head, cfg.dropout

    def forward(self, x: nnfast.Tensor) -> nnfast.Tensor:
        # The packed (B, T, 3C) projection goes to the attention kernel as strided per-head views
        # and comes back with the heads merged, (B, T, C): F.scaled_dot_product_attention on
        # (B, H, T, D) heads, without the split / merge reshapes in the graph.
        y = F.packed_self_attention(self.c_attn(x), self.n_head, is_causal=True,
                                    dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias, activation="gelu")  # fused GELU
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: nnfast.Tensor) -> nnfast.Tensor:
        return self.dropout(self.c_proj(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: nnfast.Tensor) -> nnfast.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        # GPT-2's initialisation: N(0, 0.02), zero biases, residual projections scaled by depth
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))
            elif name.endswith(".weight") and p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith(".bias") and "ln_" not in name:
                nn.init.zeros_(p)

    def hidden(self, idx: nnfast.Tensor) -> nnfast.Tensor:
        T = idx.shape[1]
        if T > self.cfg.block_size:
            raise ValueError(f"[GPT] expected at most block_size={self.cfg.block_size} tokens, got {T}")
        pos = nnfast.arange(T, dtype=nnfast.int64)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)

    def forward(self, idx: nnfast.Tensor, targets: Optional[nnfast.Tensor] = None) -> Any:
        """Logits of the last position (B, vocab) without targets; the mean cross-entropy with
        them (the tied head and the loss run fused: no (B, T, vocab) logits are stored)."""
        x = self.hidden(idx)
        if targets is None:
            return F.linear(x[:, -1], self.wte.weight)
        return F.linear_cross_entropy(x, self.wte.weight, None, targets)

    def generate(self, idx: nnfast.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: Optional[int] = None) -> nnfast.Tensor:
        """Append ``max_new_tokens`` tokens sampled from softmax(logits / temperature), keeping the
        ``top_k`` most likely ones when given (nnfast.topk, nnfast.multinomial)."""
        with nnfast.no_grad():
            for _ in range(max_new_tokens):
                logits = self(idx[:, -self.cfg.block_size:]) / temperature
                if top_k is not None:
                    kth = nnfast.topk(logits, min(top_k, logits.shape[-1]))[0][:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = nnfast.multinomial(F.softmax(logits, dim=-1), 1)
                idx = nnfast.cat([idx, nxt], 1)
        return idx


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay the Linear weights only; biases, LayerNorm weights and embeddings are not decayed."""
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    decay = [p for p in model.parameters() if id(p) in linear_weights]
    rest = [p for p in model.parameters() if id(p) not in linear_weights]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def lr_lambda(warmup: int, total: int, min_ratio: float = 0.1) -> Any:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    return f


class CharData:
    """The corpus as int64 token ids (one per character), 90 % train / 10 % val."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        ids = np.array([self.stoi[c] for c in text], dtype=np.int64)
        n = int(0.9 * len(ids))
        self.train, self.val = ids[:n], ids[n:]

    def encode(self, s: str) -> list[int]:
        return [self.stoi[c] for c in s]

    def decode(self, ids: Any) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def batch(self, split: str, batch: int, block: int,
              rng: np.random.Generator) -> tuple[nnfast.Tensor, nnfast.Tensor]:
        data = self.train if split == "train" else self.val
        start = rng.integers(0, len(data) - block - 1, batch)
        x = np.stack([data[s:s + block] for s in start])
        y = np.stack([data[s + 1:s + 1 + block] for s in start])
        return nnfast.tensor(x), nnfast.tensor(y)


def evaluate(model: GPT, data: CharData, batch: int, block: int, iters: int = 8) -> dict[str, float]:
    model.eval()
    rng = np.random.default_rng(1234)  # the same evaluation batches every time
    out = {}
    with nnfast.no_grad():
        for split in ("train", "val"):
            out[split] = float(np.mean([model(*data.batch(split, batch, block, rng)).item() for _ in range(iters)]))
    model.train()
    return out


def train(iters: int = 2000, n_layer: int = 4, n_head: int = 4, n_embd: int = 128, block: int = 64, batch: int = 16,
          lr: float = 3e-3, weight_decay: float = 0.1, warmup: int = 100, grad_clip: float = 1.0, dropout: float = 0.0,
          eval_every: int = 250, seed: int = 0, text: Optional[str] = None, log: bool = True) -> dict[str, Any]:
    """Train a GPT on ``text`` (default: the bundled Genesis); returns the model, the data and the
    loss history ({"step", "train", "val"} at each evaluation)."""
    nnfast.manual_seed(seed)
    data = CharData(nnfast.datasets.genesis_kjv() if text is None else text)
    cfg = GPTConfig(vocab_size=len(data.chars), block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                    dropout=dropout)
    model = GPT(cfg)
    opt = nnfast.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.99))
    sched = nnfast.optim.lr_scheduler.LambdaLR(opt, lr_lambda(warmup, iters))
    rng = np.random.default_rng(seed)
    history: list[dict[str, float]] = []
    if log:
        n_params = sum(p.numel() for p in model.parameters())
        print(f"vocab {cfg.vocab_size} (ln vocab = {math.log(cfg.vocab_size):.3f}), {n_params / 1e3:.1f}k parameters, "
              f"{len(data.train)} train / {len(data.val)} val characters")
    t0 = time.perf_counter()
    for step in range(iters + 1):
        if step % eval_every == 0 or step == iters:
            losses = evaluate(model, data, batch, block)
            history.append({"step": step, **losses})
            if log:
                print(f"step {step:5d}  train loss {losses['train']:.4f}  val loss {losses['val']:.4f}  "
                      f"({time.perf_counter() - t0:.1f} s)", flush=True)
        if step == iters:
            break
        x, y = data.batch("train", batch, block, rng)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sched.step()
    return {"model": model, "data": data, "history": history}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--sample", type=int, default=300, help="characters to generate at the end")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        nnfast.set_num_threads(a.threads)
    r = train(a.iters, a.n_layer, a.n_head, a.n_embd, a.block, a.batch, a.lr, dropout=a.dropout,
              eval_every=a.eval_every)
    model, data = r["model"], r["data"]
    model.eval()
    prompt = nnfast.tensor([data.encode("And God said")])
    out = model.generate(prompt, a.sample, temperature=a.temperature, top_k=a.top_k)
    print("--- sample ---")
    print(data.decode(out[0].tolist()))


if __name__ == "__main__":
    main()
