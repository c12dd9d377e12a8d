"""Hinton's forward-forward algorithm on the digits, in the style of the well-known PyTorch
implementation: labels overlaid on the first pixels, per-layer goodness with a threshold, each layer
trained locally by Adam, prediction by the label with the highest total goodness. Only the import lines
and the data source differ from the PyTorch program."""
import json

import nnfast as torch  # port: import torch
import nnfast.nn as nn  # port: import torch.nn as nn
from nnfast.optim import Adam  # port: from torch.optim import Adam
from nnfast.datasets import mnist_5k  # data: the bundled digits


def overlay_y_on_x(x, y):
    x_ = x.clone()
    x_[:, :10] *= 0.0
    x_[range(x.shape[0]), y] = x.max()
    return x_


class Net(torch.nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.layers = []
        for d in range(len(dims) - 1):
            self.layers += [Layer(dims[d], dims[d + 1])]

    def predict(self, x):
        goodness_per_label = []
        for label in range(10):
            h = overlay_y_on_x(x, label)
            goodness = []
            for layer in self.layers:
                h = layer(h)
                goodness += [h.pow(2).mean(1)]
            goodness_per_label += [sum(goodness).unsqueeze(1)]
        goodness_per_label = torch.cat(goodness_per_label, 1)
        return goodness_per_label.argmax(1)

    def train(self, x_pos, x_neg):
        h_pos, h_neg = x_pos, x_neg
        for i, layer in enumerate(self.layers):
            print("training layer", i, "...")
            h_pos, h_neg = layer.train(h_pos, h_neg)


class Layer(nn.Linear):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.relu = torch.nn.ReLU()
        self.opt = Adam(self.parameters(), lr=0.03)
        self.threshold = 2.0
        self.num_epochs = 600

    def forward(self, x):
        x_direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
        return self.relu(torch.mm(x_direction, self.weight.T) + self.bias.unsqueeze(0))

    def train(self, x_pos, x_neg):
        for i in range(self.num_epochs):
            g_pos = self.forward(x_pos).pow(2).mean(1)
            g_neg = self.forward(x_neg).pow(2).mean(1)
            loss = torch.log(1 + torch.exp(torch.cat([-g_pos + self.threshold, g_neg - self.threshold]))).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        return self.forward(x_pos).detach(), self.forward(x_neg).detach()


if __name__ == "__main__":
    torch.manual_seed(1234)
    X, y, Xte, yte = mnist_5k()
    x, y = torch.from_numpy(X[:1000]), torch.from_numpy(y[:1000])
    x_te, y_te = torch.from_numpy(Xte), torch.from_numpy(yte)
    net = Net([784, 200, 200])
    x_pos = overlay_y_on_x(x, y)
    rnd = torch.randperm(x.size(0))
    x_neg = overlay_y_on_x(x, y[rnd])
    net.train(x_pos, x_neg)
    train_acc = net.predict(x).eq(y).float().mean().item()
    test_acc = net.predict(x_te).eq(y_te).float().mean().item()
    print("train error:", 1.0 - train_acc, "test error:", 1.0 - test_acc)
    print("RESULT", json.dumps({"train_accuracy": train_acc, "test_accuracy": test_acc}))
