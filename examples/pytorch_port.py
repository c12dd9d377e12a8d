"""A PyTorch training script ported by changing one import line.

The original first line was `import torch`; everything below it is
unchanged PyTorch code (nn.Module subclass, DataLoader, CrossEntropyLoss,
Adam, a scheduler, state_dict).
"""
import nnfast as torch  # was: import torch
import nnfast.nn as nn  # was: import torch.nn as nn
import nnfast.nn.functional as F  # was: import torch.nn.functional as F
from nnfast.utils.data import DataLoader, TensorDataset  # was: from torch.utils.data import ...

torch.manual_seed(0)
X, y, Xte, yte = torch.datasets.mnist_5k()  # (the only nnfast-specific line: bundled data)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


model = MLP()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=64, shuffle=True)

for epoch in range(5):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
    scheduler.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.tensor(Xte)).argmax(dim=1) == torch.tensor(yte)).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f}  test accuracy {acc:.4f}")

state = model.state_dict()
print("state_dict keys:", list(state.keys()))
