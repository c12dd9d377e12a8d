"""nn.init formulas (PyTorch's) and the EarlyStopping helper."""
import math

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
from nnfast.nn import init
from nnfast.training import EarlyStopping


def big(*shape):
    return nnfast.empty(*shape, dtype="float64")


@pytest.mark.parametrize("fn, expected_std", [
    (lambda t: init.xavier_uniform_(t), math.sqrt(2.0 / (400 + 300))),
    (lambda t: init.xavier_normal_(t, gain=2.0), 2.0 * math.sqrt(2.0 / (400 + 300))),
    (lambda t: init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2.0) / math.sqrt(400)),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2.0) / math.sqrt(300)),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), 1 / math.sqrt(400) / math.sqrt(3)),
    (lambda t: init.normal_(t, 0.0, 0.02), 0.02),
    (lambda t: init.uniform_(t, -1, 1), 1 / math.sqrt(3)),
])
def test_init_std(fn, expected_std):
    nnfast.manual_seed(0)
    t = fn(big(300, 400))
    assert abs(t.numpy().std() / expected_std - 1) < 0.02
    assert abs(t.numpy().mean()) < 0.05 * expected_std + 1e-3


def test_gain_table():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("sigmoid") == 1
    with pytest.raises(ValueError, match=r"^\[calculate_gain\]"):
        init.calculate_gain("nope")


def test_orthogonal_trunc_constant():
    nnfast.manual_seed(1)
    w = init.orthogonal_(big(50, 80), gain=1.5).numpy()
    np.testing.assert_allclose(w @ w.T, 2.25 * np.eye(50), atol=1e-10)
    t = init.trunc_normal_(big(20000), std=1.0, a=-0.5, b=1.0).numpy()
    assert t.min() >= -0.5 and t.max() <= 1.0
    assert init.constant_(big(3), 0.5).numpy().tolist() == [0.5] * 3
    assert init.zeros_(big(2)).numpy().sum() == 0 and init.ones_(big(2)).numpy().sum() == 2


def test_same_seed_same_init():
    nnfast.manual_seed(5)
    a = nn.Linear(10, 4).weight.detach().numpy().copy()
    nnfast.manual_seed(5)
    assert np.array_equal(a, nn.Linear(10, 4).weight.detach().numpy())


def test_early_stopping_restores_best_weights():
    model = nn.Linear(2, 1)
    es = EarlyStopping(patience=2, min_delta=0.01, mode="min")
    values = [1.0, 0.5, 0.499, 0.6, 0.7]
    best_w = None
    stopped_at = None
    for epoch, v in enumerate(values):
        with nnfast.no_grad():
            model.weight._data[...] = epoch
        if v == 0.5:
            best_w = model.weight.detach().numpy().copy()
        if es.step(v, model, epoch):
            stopped_at = epoch
            break
    assert stopped_at == 3  # 0.499 is not an improvement by min_delta; 0.6 is the second miss
    assert es.best == 0.5 and es.best_epoch == 1
    assert np.array_equal(model.weight.detach().numpy(), best_w)


def test_early_stopping_in_fit_and_max_mode():
    es = EarlyStopping(monitor="val_accuracy", patience=1)
    assert es.mode == "max"
    nnfast.manual_seed(0)
    X = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = nn.Linear(3, 2)
    opt = nnfast.optim.SGD(model.parameters(), lr=0.0)  # nothing improves: stops after patience
    h = nnfast.fit(model, nn.CrossEntropyLoss(), opt, (X, y), (X, y), epochs=10, callbacks=[es],
                   metrics=["accuracy"], verbose=False)
    assert len(h.epochs) == 2
    with pytest.raises(ValueError, match=r"^\[EarlyStopping\]"):
        EarlyStopping(mode="sideways")
