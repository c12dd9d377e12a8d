"""A PyTorch DistributedDataParallel script ported by changing the imports.

Everything below the imports is unchanged PyTorch code: init_process_group, a DistributedSampler
shard per rank with set_epoch, the model wrapped in DDP, an all_reduce of the epoch's loss, and
rank 0 alone evaluating, printing and saving. Launch it with MPI:

    mpiexec -n 2 python examples/ddp_mnist.py            # one machine, 2 ranks
    mpiexec -n 8 -f hosts python examples/ddp_mnist.py   # several machines (a hostfile)
    srun -n 8 python examples/ddp_mnist.py                # Slurm

Run plainly (`python examples/ddp_mnist.py`) it is a world of one rank. nnfast's CPU backend is
"mpi" (PyTorch's name for the same thing; a ported script's "gloo" runs as "mpi"), "nccl" for GPUs.
"""
import argparse

import nnfast as torch  # was: import torch
import nnfast.distributed as dist  # was: import torch.distributed as dist
import nnfast.nn as nn  # was: import torch.nn as nn
import nnfast.nn.functional as F  # was: import torch.nn.functional as F
from nnfast.nn.parallel import DistributedDataParallel as DDP  # was: from torch.nn.parallel import ...
from nnfast.utils.data import DataLoader, TensorDataset  # was: from torch.utils.data import ...
from nnfast.utils.data.distributed import DistributedSampler  # was: from torch.utils.data.distributed import ...


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()

    dist.init_process_group(backend="mpi")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    X, y, Xte, yte = torch.datasets.mnist_5k()  # (the only nnfast-specific line: bundled data)
    dataset = TensorDataset(torch.tensor(X), torch.tensor(y))
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)

    model = DDP(MLP())  # rank 0's initial weights are broadcast to every rank
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a different shuffle each epoch, the same on every rank
        model.train()
        total = torch.zeros(2, dtype=torch.float64)
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()  # gradients are averaged over the ranks during backward
            optimizer.step()
            total += torch.tensor([loss.item() * len(xb), len(xb)], dtype=torch.float64)
        dist.all_reduce(total)  # the loss over every rank's samples
        if rank == 0:
            model.eval()
            with torch.no_grad():
                pred = model.module(torch.tensor(Xte)).argmax(dim=1)
                acc = (pred == torch.tensor(yte)).float().mean().item()
            print(f"epoch {epoch}: loss {(total[0] / total[1]).item():.4f}  test accuracy {acc:.4f}  "
                  f"({world_size} ranks)")

    if rank == 0 and args.save:
        torch.save(model.module.state_dict(), args.save)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
