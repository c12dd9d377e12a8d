"""Sine-wave sequence prediction with two LSTMCells and a Linear head trained by LBFGS on a closure,
in double precision, in the style of the well-known time-sequence-prediction example (smaller: fewer
waves, shorter sequences, fewer steps). Only the import lines differ from the PyTorch program."""
import json

import numpy as np

import nnfast as torch  # port: import torch
import nnfast.nn as nn  # port: import torch.nn as nn
import nnfast.optim as optim  # port: import torch.optim as optim


class Sequence(nn.Module):
    def __init__(self):
        super(Sequence, self).__init__()
        self.lstm1 = nn.LSTMCell(1, 24)
        self.lstm2 = nn.LSTMCell(24, 24)
        self.linear = nn.Linear(24, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), 24, dtype=torch.double)
        c_t = torch.zeros(input.size(0), 24, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), 24, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), 24, dtype=torch.double)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.cat(outputs, dim=1)
        return outputs


if __name__ == "__main__":
    # the data the original generates with NumPy and loads with torch.load
    rs = np.random.RandomState(2)
    T, L, N = 20, 40, 12
    xs = np.empty((N, L), "int64")
    xs[:] = np.arange(L) + rs.randint(-4 * T, 4 * T, N).reshape(N, 1)
    data = np.sin(xs / 1.0 / T).astype("float64")

    np.random.seed(0)
    torch.manual_seed(0)
    input = torch.from_numpy(data[3:, :-1])
    target = torch.from_numpy(data[3:, 1:])
    test_input = torch.from_numpy(data[:3, :-1])
    test_target = torch.from_numpy(data[:3, 1:])
    seq = Sequence()
    seq.double()
    criterion = nn.MSELoss()
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    for i in range(3):
        print("STEP: ", i)

        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            print("loss:", loss.item())
            loss.backward()
            return loss
        optimizer.step(closure)
        with torch.no_grad():
            future = 20
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            print("test loss:", loss.item())
            y = pred.detach().numpy()
    final = criterion(seq(input), target).item()
    print("RESULT", json.dumps({"train_loss": final, "test_loss": loss.item(), "pred_shape": list(y.shape)}))
