"""``nnfast.fit``: a training loop with history, callbacks and metrics."""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from . import metrics as _metrics
from ._progress import ProgressBar
from .autograd import no_grad
from .utils.data import DataLoader, TensorDataset

__all__ = ["fit", "evaluate", "predict", "History", "Callback", "EarlyStopping", "ModelCheckpoint",
           "LambdaCallback"]


class History:
    """Per-epoch records: ``history.history['loss']``, ``['val_loss']``, metrics, ``lr``, ``time``."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []

    def record(self, epoch: int, values: dict[str, float]) -> None:
        self.epochs.append(epoch)
        for k, v in values.items():
            self.history.setdefault(k, []).append(float(v))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def last(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.history.items() if v}

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs), **{k: list(v) for k, v in self.history.items()}}

    def plot(self, path: str) -> str:
        """Write a PNG with the loss curves and each metric (needs matplotlib: ``pip install 'nnfast[plot]'``)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise RuntimeError(
                "[History.plot] expected matplotlib to draw curves; install it with `pip install matplotlib` "
                "(or the plot extra: `pip install 'nnfast[plot]'`)"
            ) from exc
        keys = [k for k in self.history if not k.startswith("val_") and k not in ("lr", "time")]
        fig, axes = plt.subplots(1, len(keys) + 1, figsize=(4.5 * (len(keys) + 1), 3.6))
        axes = np.atleast_1d(axes)
        for ax, k in zip(axes, keys):
            ax.plot(self.epochs, self.history[k], marker="o", label=f"train {k}")
            if "val_" + k in self.history:
                ax.plot(self.epochs, self.history["val_" + k], marker="o", label=f"val {k}")
            ax.set_xlabel("epoch")
            ax.set_title(k)
            ax.grid(alpha=0.3)
            ax.legend()
        if "lr" in self.history:
            axes[-1].plot(self.epochs, self.history["lr"], marker=".", color="gray")
            axes[-1].set_title("learning rate")
            axes[-1].set_xlabel("epoch")
            axes[-1].grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


class Callback:
    """Hooks called by ``fit``; ``self.model``, ``self.optimizer`` are set before training."""

    model: Any = None
    optimizer: Any = None
    stop_training: bool = False

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        pass

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any]) -> None:
        pass


class LambdaCallback(Callback):
    def __init__(self, on_epoch_end: Optional[Callable[[int, dict[str, Any]], None]] = None) -> None:
        self._fn = on_epoch_end

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self._fn:
            self._fn(epoch, logs)


def _better(mode: str, value: float, best: float, min_delta: float) -> bool:
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``mode`` 'min' | 'max' | 'auto' (max for accuracy-like names). With
    ``restore_best_weights`` the model's parameters and buffers are reset to
    the best epoch's values when training stops.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = True) -> None:
        if mode not in ("min", "max", "auto"):
            raise ValueError(f"[EarlyStopping] expected mode 'min', 'max' or 'auto', got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.patience, self.min_delta, self.mode = monitor, int(patience), abs(min_delta), mode
        self.restore_best_weights = restore_best_weights
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.best_state: Optional[dict[str, Any]] = None
        self.stopped_epoch: Optional[int] = None

    def step(self, value: float, model: Any = None, epoch: int = 0) -> bool:
        """Record one value; returns True when training should stop (usable without ``fit``)."""
        if _better(self.mode, value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights and model is not None:
                self.best_state = {k: v._data.copy() for k, v in model.state_dict().items()}
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            if self.restore_best_weights and model is not None and self.best_state is not None:
                model.load_state_dict(self.best_state)
            return True
        return False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.monitor not in logs:
            raise KeyError(f"[EarlyStopping] expected '{self.monitor}' in the epoch logs, got {sorted(logs)}")
        if self.step(float(logs[self.monitor]), self.model, epoch):
            self.stop_training = True


class ModelCheckpoint(Callback):
    """Save a checkpoint (model, optimizer, epoch) with ``nnfast.save`` each epoch or on improvement."""

    def __init__(self, path: str, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto") -> None:
        self.path, self.monitor, self.save_best_only = path, monitor, save_best_only
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        from .io import save

        if self.save_best_only:
            v = logs.get(self.monitor)
            if v is None or not _better(self.mode, float(v), self.best, 0.0):
                return
            self.best = float(v)
        save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "epoch": epoch,
              "logs": {k: float(v) for k, v in logs.items()}}, self.path)


def _as_loader(data: Any, batch_size: int, shuffle: bool, device: Any) -> Optional[DataLoader]:
    if data is None:
        return None
    if isinstance(data, DataLoader):
        if device is not None and data.device is None:
            data.device = device
        return data
    if isinstance(data, (tuple, list)):
        data = TensorDataset(*data)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, device=device)


def _model_device(model: Any) -> Any:
    for p in model.parameters():
        return p.device
    return None


def _world() -> tuple[int, int]:
    """(rank, world size) of an initialized ``nnfast.distributed`` process group, else (0, 1)."""
    try:
        from . import distributed as dist
    except ImportError:
        return 0, 1
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return int(dist.get_rank()), int(dist.get_world_size())


def _unwrap(model: Any) -> Any:
    """The module inside a ``DistributedDataParallel`` wrapper (whose forward is a collective)."""
    from .nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def _weighted(name: str, value: float) -> float:
    # RMSE does not average: the ranks' mean squares do.
    return value * value if name == "rmse" else value


def _average_over_ranks(values: dict[str, float], count: int) -> tuple[dict[str, float], int]:
    """Sample-weighted mean of each local value over all ranks (one all_reduce of a float64 vector):
    exact for the loss, accuracy, top5, MAE, MSE and RMSE; user metrics are weighted means."""
    from . import distributed as dist
    from .tensor import tensor

    names = list(values)
    vec = tensor(np.array([float(count)] + [_weighted(k, values[k]) * count for k in names], dtype=np.float64))
    dist.all_reduce(vec)
    tot = np.asarray(vec.detach().numpy(), dtype=np.float64)
    n = int(round(tot[0]))
    out = {k: float(tot[i + 1] / max(n, 1)) for i, k in enumerate(names)}
    if "rmse" in out:
        out["rmse"] = math.sqrt(max(out["rmse"], 0.0))
    return out, n


def _precision(op: str, precision: str, model: Any) -> Any:
    """The autocast region of ``precision``: "bf16" (nnfast.autocast on the model's device) or "fp32" (off)."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"[{op}] expected precision 'fp32' or 'bf16', got {precision!r}")
    from .amp import autocast

    dev = _model_device(model)
    return autocast("cuda" if dev is not None and dev.type == "cuda" else "cpu", enabled=precision == "bf16")


def evaluate(model: Any, loss_fn: Any, data: Any, batch_size: int = 256, metrics: Sequence[Any] = (),
             distributed: bool = False, precision: str = "fp32") -> dict[str, float]:
    """Mean loss and metrics over ``data`` ((X, y) arrays, a Dataset or a DataLoader), in eval mode;
    ``precision="bf16"`` runs the forward under ``nnfast.autocast``.

    ``distributed=True`` (every rank of an initialized process group calls it with the same
    ``(X, y)``): each rank evaluates rows ``rank::world_size`` and the results are averaged over
    the ranks, weighted by their row counts, so every rank returns the whole set's values.
    """
    rank, world = _world() if distributed else (0, 1)
    model = _unwrap(model) if world > 1 else model
    if world > 1:
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise TypeError(f"[evaluate] expected (X, y) arrays with distributed=True, got {type(data).__name__}")
        data = (data[0][rank::world], data[1][rank::world])
    dev = _model_device(model)
    loader = _as_loader(data, batch_size, False, dev if dev is not None and dev.type == "cuda" else None)
    assert loader is not None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    outs, tgts = [], []
    with no_grad(), _precision("evaluate", precision, model):
        for xb, yb in loader:
            out = model(xb)
            n = len(xb)
            total += float(loss_fn(out, yb).item()) * n
            count += n
            if metrics:
                outs.append(np.asarray(out))
                tgts.append(np.asarray(yb))
    model.train(was_training)
    res = {"loss": total / max(count, 1)}
    if metrics and outs:
        o, t = np.concatenate(outs), np.concatenate(tgts)
        for m in metrics:
            name, fn = _metrics.get(m)
            res[name] = fn(o, t)
    elif metrics:  # a rank with no rows (more ranks than rows) adds nothing to the weighted mean
        res.update({_metrics.get(m)[0]: 0.0 for m in metrics})
    if world > 1:
        res, _ = _average_over_ranks(res, count)
    return res


def predict(model: Any, X: Any, batch_size: int = 1024) -> np.ndarray:
    """Model outputs for every row of ``X`` (eval mode, no grad) as a NumPy array."""
    was_training = model.training
    model.eval()
    chunks = []
    dev = _model_device(model)
    with no_grad():
        for (xb,) in DataLoader(TensorDataset(X), batch_size=batch_size,
                                device=dev if dev is not None and dev.type == "cuda" else None):
            chunks.append(np.asarray(model(xb)))
    model.train(was_training)
    return np.concatenate(chunks) if chunks else np.empty((0,))


def fit(model: Any, loss_fn: Any, optimizer: Any, train_data: Any, val_data: Any = None, epochs: int = 10,
        batch_size: int = 64, scheduler: Any = None, callbacks: Iterable[Callback] = (),
        metrics: Sequence[Any] = (), shuffle: bool = True, verbose: bool = True,
        log: Optional[Callable[[str], None]] = None, distributed: Optional[bool] = None,
        precision: str = "fp32") -> History:
    """Train ``model`` and return its ``History``.

    ``train_data``/``val_data``: ``(X, y)`` arrays or tensors, a Dataset, or a
    DataLoader. Each batch moves to the model's device. ``scheduler`` steps
    once per batch for OneCycleLR (``per_batch`` attribute), with the
    validation loss for ReduceLROnPlateau, and once per epoch otherwise.
    ``metrics``: names ('accuracy', 'top5', 'mse', 'mae', 'rmse') or
    callables ``fn(output, target) -> float``, computed on train and val sets.

    Data-parallel (``nnfast.distributed`` initialized with several ranks, ``model``
    usually a ``DistributedDataParallel``, ``train_data`` a DataLoader over a
    ``DistributedSampler``): every rank calls ``fit``; the train loss and metrics are
    averaged over all ranks' samples, validation runs sharded (``evaluate(...,
    distributed=True)``), so every rank logs the same values and takes the same
    scheduler and early-stopping decisions. ``distributed``: None (the default) does
    this whenever such a group exists; False keeps ``fit`` local to this rank (for a
    model that is not shared by the ranks, e.g. trained by rank 0 alone).
    ``precision``: "fp32", or "bf16" for mixed precision (forward and loss under ``nnfast.autocast``;
    parameters, gradients and optimizer state stay float32).
    """
    amp_region = _precision("fit", precision, model)
    if epochs < 0:
        raise ValueError(f"[fit] expected epochs >= 0, got {epochs}")
    dev = _model_device(model)
    cuda_dev = dev if dev is not None and dev.type == "cuda" else None
    train_loader = _as_loader(train_data, batch_size, shuffle, cuda_dev)
    val_loader = _as_loader(val_data, max(batch_size, 256), False, cuda_dev)
    assert train_loader is not None
    callbacks = list(callbacks)
    for cb in callbacks:
        cb.model, cb.optimizer, cb.stop_training = model, optimizer, False
    per_batch = scheduler is not None and getattr(
        scheduler, "per_batch", type(scheduler).__name__ in ("OneCycleLR", "CyclicLR"))
    on_plateau = scheduler is not None and type(scheduler).__name__ == "ReduceLROnPlateau"
    say = log if log is not None else (print if verbose else None)
    world = _world()[1] if distributed is not False else 1
    history = History()
    named = [_metrics.get(m) for m in metrics]
    for cb in callbacks:
        cb.on_train_begin({})
    for epoch in range(1, epochs + 1):
        model.train()
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {})
        t0 = time.perf_counter()
        bar = ProgressBar(len(train_loader), prefix=f"epoch {epoch}/{epochs}", enabled=verbose)
        total, count = 0.0, 0
        outs: list[np.ndarray] = []
        tgts: list[np.ndarray] = []
        for step, (xb, yb) in enumerate(train_loader, 1):
            optimizer.zero_grad()
            with amp_region:
                out = model(xb)
                loss = loss_fn(out, yb)
            loss.backward()
            optimizer.step()
            if per_batch:
                scheduler.step()
            lv = float(loss.item())
            n = len(xb)
            total += lv * n
            count += n
            if named:
                outs.append(np.asarray(out.detach()))
                tgts.append(np.asarray(yb))
            bar.update(step, f"loss {total / count:.4f}")
            for cb in callbacks:
                cb.on_batch_end(step, {"loss": lv})
        bar.close()
        logs: dict[str, float] = {"loss": total / max(count, 1)}
        if named:
            o, t = np.concatenate(outs), np.concatenate(tgts)
            for name, fn in named:
                logs[name] = fn(o, t)
        if world > 1:
            logs, _ = _average_over_ranks(logs, count)
        if val_loader is not None and world > 1 and isinstance(val_data, (tuple, list)):
            vres = evaluate(model, loss_fn, val_data, max(batch_size, 256), metrics=metrics, distributed=True,
                            precision=precision)
        elif val_loader is not None:
            vres = evaluate(_unwrap(model) if world > 1 else model, loss_fn, val_loader, metrics=metrics,
                            precision=precision)
        if val_loader is not None:
            for k, v in vres.items():
                logs["val_" + k] = v
        logs["lr"] = float(optimizer.param_groups[0]["lr"])
        logs["time"] = time.perf_counter() - t0
        if scheduler is not None and not per_batch:
            if on_plateau:
                scheduler.step(logs.get("val_loss", logs["loss"]))
            else:
                scheduler.step()
        history.record(epoch, logs)
        if say is not None:
            say(f"epoch {epoch:3d}/{epochs}  " + "  ".join(
                f"{k} {v:.4f}" if k != "time" else f"{v:.2f}s" for k, v in logs.items()))
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if any(cb.stop_training for cb in callbacks):
            break
    for cb in callbacks:
        cb.on_train_end(history.last())
    return history
