"""An MLP digit classifier in the classic MNIST-example style: a map-style Dataset with a transform,
DataLoader, nn.Module with Flatten/Dropout, log_softmax + nll_loss, SGD with momentum, StepLR, a test
loop counting correct predictions. Only the import lines and the data source (the digits bundled with
nnfast instead of torchvision's download) differ from the PyTorch program."""
import json

import numpy as np

import nnfast as torch  # port: import torch
import nnfast.nn as nn  # port: import torch.nn as nn
import nnfast.nn.functional as F  # port: import torch.nn.functional as F
import nnfast.optim as optim  # port: import torch.optim as optim
from nnfast.optim.lr_scheduler import StepLR  # port: from torch.optim.lr_scheduler import StepLR
from nnfast.utils.data import DataLoader, Dataset  # port: from torch.utils.data import DataLoader, Dataset
from nnfast.datasets import mnist_5k  # data: the bundled digits


class Digits(Dataset):
    def __init__(self, images, labels, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = self.images[i]
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])


def to_tensor(img):
    return (torch.from_numpy(img).float().unsqueeze(0) - 0.1307) / 0.3081


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(28 * 28, 256)
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.flatten(x)
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def train(model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % 40 == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)}]\tLoss: {loss.item():.6f}")


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    print(f"Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)}")
    return test_loss, correct / len(test_loader.dataset)


def main():
    torch.manual_seed(1)
    device = torch.device("cpu")
    X, y, Xte, yte = mnist_5k(flatten=False)
    train_loader = DataLoader(Digits(X, y, to_tensor), batch_size=64, shuffle=True)
    test_loader = DataLoader(Digits(Xte, yte, to_tensor), batch_size=1000)
    model = Net().to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    for epoch in range(1, 5):
        train(model, device, train_loader, optimizer, epoch)
        test_loss, acc = test(model, device, test_loader)
        scheduler.step()
    print("RESULT", json.dumps({"test_loss": test_loss, "accuracy": acc}))


if __name__ == "__main__":
    main()
