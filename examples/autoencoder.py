"""An encoder-decoder autoencoder on MNIST; writes originals vs reconstructions to a PNG.

    python examples/autoencoder.py [--epochs N] [--out reconstructions.png]
"""
import argparse

import numpy as np

import nnfast
import nnfast.nn as nn
from nnfast.utils.image import save_png, tile

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=15)
p.add_argument("--out", default="reconstructions.png")
args = p.parse_args()

nnfast.manual_seed(0)
X, _, Xte, _ = nnfast.datasets.mnist_5k()
encoder = nn.Sequential(nn.Linear(784, 256, activation="relu"), nn.Linear(256, 32))
decoder = nn.Sequential(nn.Linear(32, 256, activation="relu"), nn.Linear(256, 784, activation="sigmoid"))
model = nn.Sequential(encoder, decoder)
opt = nnfast.optim.Adam(model.parameters(), lr=2e-3)
h = nnfast.fit(model, nn.BCELoss(), opt, (X, X), (Xte, Xte), epochs=args.epochs, batch_size=128, verbose=False)
print(f"reconstruction BCE: train {h['loss'][0]:.4f} -> {h['loss'][-1]:.4f}, test {h['val_loss'][-1]:.4f}")

model.eval()
with nnfast.no_grad():
    recon = model(nnfast.tensor(Xte[:10])).numpy()
grid = tile(np.concatenate([Xte[:10], recon]).reshape(20, 28, 28), rows=2, cols=10)
save_png(grid, args.out)
print(f"wrote {args.out} (top: originals, bottom: reconstructions)")
