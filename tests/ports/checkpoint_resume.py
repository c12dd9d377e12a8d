"""Train, checkpoint {model, optimizer, scheduler, epoch, loss} with torch.save, restore into fresh
objects with torch.load and continue: the resumed run must match the uninterrupted one exactly. Also
AdamW + CosineAnnealingLR + gradient clipping + BatchNorm1d running statistics in the state. Only the
import lines and the data source differ from the PyTorch program."""
import json
import os
import tempfile

import nnfast as torch  # port: import torch
import nnfast.nn as nn  # port: import torch.nn as nn
import nnfast.nn.functional as F  # port: import torch.nn.functional as F
from nnfast.utils.data import DataLoader, TensorDataset  # port: from torch.utils.data import DataLoader, TensorDataset
from nnfast.datasets import mnist_5k  # data: the bundled digits


def make():
    model = nn.Sequential(nn.Linear(784, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    return model, opt, sched


def run_epoch(model, opt, loader):
    model.train()
    total = 0.0
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=2.0)
        opt.step()
        total += loss.item() * len(xb)
    return total / len(loader.dataset)


def evaluate(model, X, y):
    model.eval()
    with torch.no_grad():
        out = model(X)
        return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


X, y, Xte, yte = mnist_5k()
X, y, Xte, yte = torch.tensor(X[:2000]), torch.tensor(y[:2000]), torch.tensor(Xte), torch.tensor(yte)
loader = DataLoader(TensorDataset(X, y), batch_size=100, shuffle=False)

torch.manual_seed(0)
model, opt, sched = make()
for epoch in range(4):
    run_epoch(model, opt, loader)
    sched.step()
straight = evaluate(model, Xte, yte)

torch.manual_seed(0)
model, opt, sched = make()
for epoch in range(2):
    loss = run_epoch(model, opt, loader)
    sched.step()
path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "epoch": epoch, "loss": loss}, path)
del model, opt, sched

ckpt = torch.load(path)
model, opt, sched = make()
model.load_state_dict(ckpt["model"])
opt.load_state_dict(ckpt["optimizer"])
sched.load_state_dict(ckpt["scheduler"])
for epoch in range(ckpt["epoch"] + 1, 4):
    run_epoch(model, opt, loader)
    sched.step()
resumed = evaluate(model, Xte, yte)
print("straight", straight, "resumed", resumed)
assert resumed == straight, (resumed, straight)
print("RESULT", json.dumps({"test_loss": resumed[0], "accuracy": resumed[1], "epoch_saved": ckpt["epoch"]}))
