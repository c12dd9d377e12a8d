"""A character-level LSTM language model trained with truncated backpropagation through time.

Text: the source of a Python standard-library module (default ``textwrap``; PSF License, shipped with
every Python, so nothing is bundled). The characters are split 90 / 10 into train / validation, laid out
as ``batch`` parallel streams, and cut into chunks of ``bptt`` steps; the hidden state is carried from
chunk to chunk but detached, so gradients flow back at most ``bptt`` steps. Gradients are clipped by
global norm. Perplexity (exp of the mean cross-entropy per character) is printed per epoch.

    python examples/lstm_lm.py [--epochs 3] [--hidden 128] [--layers 2] [--bptt 35] [--batch 16]
                               [--module textwrap] [--max-chars 0]
"""
import argparse
import inspect
import importlib
import json
import math
import time
from typing import Any, Optional

import numpy as np

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--hidden", type=int, default=128)
p.add_argument("--embed", type=int, default=32)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--dropout", type=float, default=0.1)
p.add_argument("--bptt", type=int, default=35)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--clip", type=float, default=1.0)
p.add_argument("--module", default="textwrap", help="standard-library module whose source is the corpus")
p.add_argument("--max-chars", type=int, default=0, help="use only the first N characters (0: all)")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

nnfast.manual_seed(args.seed)
source = inspect.getsourcefile(importlib.import_module(args.module))
if source is None:
    raise SystemExit(f"no source file for module {args.module!r}")
text = open(source, encoding="utf-8").read()
if args.max_chars:
    text = text[:args.max_chars]
vocab = sorted(set(text))
ids = np.array([vocab.index(c) for c in text], dtype=np.int64)
split = int(0.9 * len(ids))


def streams(a: np.ndarray, batch: int) -> np.ndarray:
    """(T, batch) int64: the text cut into `batch` contiguous streams, one per column."""
    T = len(a) // batch
    return np.ascontiguousarray(a[:T * batch].reshape(batch, T).T)


train, val = streams(ids[:split], args.batch), streams(ids[split:], max(1, min(args.batch, 4)))


class CharLSTM(nn.Module):
    def __init__(self, V: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(V, args.embed)
        self.lstm = nn.LSTM(args.embed, args.hidden, num_layers=args.layers, dropout=args.dropout)
        self.head = nn.Linear(args.hidden, V)

    def forward(self, x: nnfast.Tensor, state: Optional[Any] = None) -> tuple[nnfast.Tensor, Any]:
        y, state = self.lstm(self.embed(x), state)
        return self.head(y), state


model = CharLSTM(len(vocab))
opt = nnfast.optim.Adam(model.parameters(), lr=args.lr)


def run_epoch(data: np.ndarray, training: bool) -> float:
    model.train(training)
    state: Optional[Any] = None
    total, count = 0.0, 0
    for i in range(0, data.shape[0] - 1, args.bptt):
        n = min(args.bptt, data.shape[0] - 1 - i)
        x, y = nnfast.tensor(data[i:i + n]), nnfast.tensor(data[i + 1:i + 1 + n].reshape(-1))
        if state is not None:  # truncated BPTT: keep the state's values, drop its history
            state = tuple(s.detach() for s in state)
        if training:
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
        else:
            with nnfast.no_grad():
                logits, state = model(x, state)
                loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y)
        total += loss.item() * y.shape[0]
        count += y.shape[0]
    return math.exp(total / max(count, 1))


print(f"corpus: {args.module}.py, {len(text)} characters, vocabulary {len(vocab)}; "
      f"LSTM {args.layers}x{args.hidden}, bptt {args.bptt}, batch {args.batch}")
history: dict[str, list[float]] = {"train_ppl": [], "val_ppl": []}
for epoch in range(1, args.epochs + 1):
    t0 = time.perf_counter()
    tr = run_epoch(train, True)
    va = run_epoch(val, False)
    history["train_ppl"].append(tr)
    history["val_ppl"].append(va)
    print(f"epoch {epoch}: train perplexity {tr:.2f}, validation perplexity {va:.2f} "
          f"({time.perf_counter() - t0:.1f} s)")
print("RESULT " + json.dumps(history))
