"""The classic perceptron (Rosenblatt): a unit step on w.x + b, trained two ways.

1. The perceptron learning rule, w += lr * (y - step(w.x + b)) * x, written out.
2. Gradient descent on the perceptron criterion, mean(max(0, -y * f(x))), with
   nn.PerceptronLoss and SGD: the same update, derived by autograd.

    python examples/perceptron.py
"""
import numpy as np

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F

rng = np.random.default_rng(0)
n = 400
X = rng.standard_normal((n, 2)).astype(np.float32)
true_w, true_b = np.array([2.0, -1.0], np.float32), 0.3
labels01 = (X @ true_w + true_b > 0).astype(np.float32)  # linearly separable

# 1. The learning rule with nnfast's step function as the activation.
w = nnfast.zeros(2)
b = nnfast.zeros(1)
for epoch in range(20):
    errors = 0
    for i in range(n):
        x = nnfast.tensor(X[i])
        pred = F.step((x * w).sum() + b)
        delta = float(labels01[i] - pred.item())
        if delta != 0:
            errors += 1
            w += 0.1 * delta * x
            b += 0.1 * delta
    if errors == 0:
        break
acc = float(((X @ w.numpy() + b.numpy() > 0) == labels01.astype(bool)).mean())
print(f"learning rule: converged after {epoch + 1} epochs, training accuracy {acc:.3f}")

# 2. The perceptron criterion, minimised by SGD.
nnfast.manual_seed(0)
model = nn.Linear(2, 1)
opt = nnfast.optim.SGD(model.parameters(), lr=0.1)
y_pm = nnfast.tensor(labels01 * 2 - 1)  # {-1, +1}
Xt = nnfast.tensor(X)
for epoch in range(100):
    opt.zero_grad()
    loss = nn.PerceptronLoss()(model(Xt).reshape(-1), y_pm)
    loss.backward()
    opt.step()
with nnfast.no_grad():
    acc = float(((model(Xt).numpy().reshape(-1) > 0) == labels01.astype(bool)).mean())
print(f"perceptron criterion + SGD: final loss {loss.item():.4f}, training accuracy {acc:.3f}")
