"""Classify the bundled MNIST digits with an MLP, using nnfast.fit.

    python examples/mnist_mlp.py [--epochs N]
"""
import argparse

import nnfast
import nnfast.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=10)
args = p.parse_args()

nnfast.manual_seed(0)
X, y, Xte, yte = nnfast.datasets.mnist_5k()
model = nn.Sequential(
    nn.Linear(784, 256, activation="relu"),  # bias + ReLU fused into the GEMM
    nn.Dropout(0.1),
    nn.Linear(256, 128, activation="relu"),
    nn.Linear(128, 10),
)
opt = nnfast.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
sched = nnfast.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
history = nnfast.fit(model, nn.CrossEntropyLoss(label_smoothing=0.05), opt, (X, y), (Xte, yte),
                     epochs=args.epochs, batch_size=64, scheduler=sched, metrics=["accuracy"])
print(f"test accuracy: {history['val_accuracy'][-1]:.4f}")
