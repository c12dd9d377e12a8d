"""Regression with MSE, MAE and RMSE losses on a synthetic smooth function.

    python examples/regression.py [--epochs N]
"""
import argparse

import numpy as np

import nnfast
import nnfast.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=40)
args = p.parse_args()

rng = np.random.default_rng(0)
X = rng.uniform(-2, 2, (2000, 3)).astype(np.float32)
y = (np.sin(X[:, :1] * 2) + X[:, 1:2] * X[:, 2:3] + 0.05 * rng.standard_normal((2000, 1))).astype(np.float32)
Xtr, ytr, Xva, yva = X[:1600], y[:1600], X[1600:], y[1600:]

for name, loss_fn in [("MSE", nn.MSELoss()), ("MAE", nn.L1Loss()), ("RMSE", nn.RMSELoss())]:
    nnfast.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 64, activation="gelu"), nn.Linear(64, 64, activation="gelu"), nn.Linear(64, 1))
    opt = nnfast.optim.Adam(model.parameters(), lr=3e-3)
    h = nnfast.fit(model, loss_fn, opt, (Xtr, ytr), (Xva, yva), epochs=args.epochs, batch_size=64,
                   metrics=["mse", "mae", "rmse"], verbose=False)
    print(f"{name:>4} loss: val mse {h['val_mse'][-1]:.4f}  val mae {h['val_mae'][-1]:.4f}  "
          f"val rmse {h['val_rmse'][-1]:.4f}  (predicting the mean: rmse {yva.std():.4f})")
