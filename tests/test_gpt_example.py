"""examples/char_gpt.py: a tiny GPT trained on the bundled Genesis text learns (the loss falls
well below ln(vocab), the loss of a uniform guess), and generate() returns valid tokens."""
import importlib.util
import math
import os
import sys

import numpy as np
import pytest

import nnfast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example():
    spec = importlib.util.spec_from_file_location("char_gpt", os.path.join(ROOT, "examples", "char_gpt.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["char_gpt"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # One thread: the model is tiny, and on a shared, oversubscribed CI machine OpenMP barriers
    # dominate such small kernels. Results do not depend on the thread count.
    before = nnfast.get_num_threads()
    nnfast.set_num_threads(1)
    yield
    nnfast.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(one_thread):
    g = _example()
    return g, g.train(iters=200, n_layer=2, n_head=2, n_embd=32, block=32, batch=16, lr=5e-3, warmup=20,
                      eval_every=200, log=False)


def test_corpus_is_bundled():
    text = nnfast.datasets.genesis_kjv()
    assert text.startswith("CHAPTER 1\nIn the beginning God created the heaven and the earth.")
    assert 150_000 < len(text) <= 200_000 and len(set(text)) == 70


def test_loss_falls_well_below_uniform(trained):
    g, r = trained
    vocab = len(r["data"].chars)
    first, last = r["history"][0], r["history"][-1]
    assert abs(first["val"] - math.log(vocab)) < 0.3  # starts near a uniform guess
    assert last["train"] < 0.7 * math.log(vocab) and last["val"] < 0.7 * math.log(vocab), r["history"]


def test_generate_returns_valid_tokens(trained):
    g, r = trained
    model, data = r["model"], r["data"]
    model.eval()
    vocab = len(data.chars)
    prompt = nnfast.tensor([data.encode("And God said"), data.encode("CHAPTER 2\nTh")])
    nnfast.manual_seed(3)
    out = model.generate(prompt, 40, temperature=0.9, top_k=5)
    ids = out.numpy()
    assert ids.shape == (2, 52) and ids.dtype == np.int64
    assert np.array_equal(ids[:, :12], prompt.numpy())
    assert ids.min() >= 0 and ids.max() < vocab
    assert isinstance(data.decode(ids[0]), str)
    # top_k=1 is greedy: each new token is the argmax of the logits of the sequence so far
    greedy = model.generate(prompt[:1], 5, top_k=1).numpy()[0]
    seq = prompt[:1]
    for t in range(5):
        with nnfast.no_grad():
            nxt = int(np.argmax(model(seq).numpy()[0]))
        assert greedy[12 + t] == nxt
        seq = nnfast.tensor(greedy[None, :13 + t])
    # sequences longer than block_size are cropped to the last block_size tokens
    long = model.generate(nnfast.tensor(np.zeros((1, 40), np.int64)), 2, top_k=3)
    assert long.shape == (1, 42)


def test_weight_decay_groups():
    g = _example()
    model = g.GPT(g.GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    groups = g.param_groups(model, 0.1)
    assert [gr["weight_decay"] for gr in groups] == [0.1, 0.0]
    decay, rest = groups[0]["params"], groups[1]["params"]
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in decay) == sorted(
        ["h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight", "h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight"])
    assert decay and all(p.ndim == 2 for p in decay) and rest[0] is model.wte.weight
    assert len(decay) + len(rest) == len(list(model.parameters()))
    with pytest.raises(ValueError, match=r"^\[GPT\] expected at most block_size=8"):
        model(nnfast.tensor(np.zeros((1, 9), np.int64)))
