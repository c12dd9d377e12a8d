"""Exact resume: 30 steps in one go == 15 steps, checkpoint, new process, load, 15 steps."""
import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import nnfast, nnfast.nn as nn
    from nnfast.utils.data import DataLoader, TensorDataset

    mode, ckpt, out = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((15 * 8, 20)).astype(np.float32)   # 15 batches of 8 per epoch
    y = rng.integers(0, 5, len(X))

    nnfast.manual_seed(123)
    model = nn.Sequential(nn.Linear(20, 32, activation="relu"), nn.Dropout(0.3), nn.Linear(32, 5))
    opt = nnfast.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    sched = nnfast.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    def epoch():
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        sched.step()

    if mode == "full":
        epoch(); epoch()
    elif mode == "first":
        epoch()
        nnfast.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "rng": nnfast.get_rng_state(), "step": 15}, ckpt)
    else:
        ck = nnfast.load(ckpt)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        nnfast.set_rng_state(ck["rng"])
        assert ck["step"] == 15
        epoch()
    np.savez(out, **{k: v.numpy() for k, v in model.state_dict().items()})
    """
)


def run(tmp_path, *args):
    script = tmp_path / "resume.py"
    script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def test_resume_is_bit_identical(tmp_path):
    ck = str(tmp_path / "ck.safetensors")
    run(tmp_path, "full", ck, str(tmp_path / "full.npz"))
    run(tmp_path, "first", ck, str(tmp_path / "first.npz"))
    run(tmp_path, "second", ck, str(tmp_path / "second.npz"))
    full, resumed = np.load(tmp_path / "full.npz"), np.load(tmp_path / "second.npz")
    first = np.load(tmp_path / "first.npz")
    assert sorted(full.files) == sorted(resumed.files)
    for k in full.files:
        assert np.array_equal(full[k], resumed[k]), k
        assert not np.array_equal(full[k], first[k]), k
    assert os.path.exists(ck)
