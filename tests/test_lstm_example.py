"""examples/lstm_lm.py, tiny: a character LSTM language model with truncated BPTT must learn (perplexity falls
well below the vocabulary size and keeps falling)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lstm_lm_perplexity_falls():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "lstm_lm.py"), "--epochs", "3", "--hidden", "48",
                        "--layers", "2", "--max-chars", "5000", "--bptt", "20"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    h = json.loads(line[len("RESULT "):])
    tr, va = h["train_ppl"], h["val_ppl"]
    assert len(tr) == 3 and all(t == t for t in tr)
    assert tr[-1] < tr[0] and va[-1] < va[0], h
    assert va[-1] < 40, h  # a uniform guess over ~80 characters would be ~80
