"""The ``nnfast`` command: train, evaluate, predict, bench, info."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np


class UserError(Exception):
    """A mistake in the command line or the data: printed as one line, exit status 2."""


# ---------------------------------------------------------------------- data
def _load_user_data(path: str, label_column: Optional[int], task: str) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.exists(path):
        raise UserError(f"data file not found: {path}")
    ext = path.lower()
    try:
        if ext.endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                keys = set(f.files)
                xk = next((k for k in ("X", "x", "data", "features") if k in keys), None)
                yk = next((k for k in ("y", "Y", "labels", "target", "targets") if k in keys), None)
                if xk is None or yk is None:
                    raise UserError(f"{path}: expected arrays named X and y in the .npz, found {sorted(keys)}")
                X, y = f[xk], f[yk]
        elif ext.endswith(".npy"):
            ypath = path[:-4] + "_y.npy" if not path.endswith("_X.npy") else path[:-6] + "_y.npy"
            if not os.path.exists(ypath):
                raise UserError(f"{path}: expected the labels beside it in {ypath}")
            X, y = np.load(path, allow_pickle=False), np.load(ypath, allow_pickle=False)
        elif ext.endswith(".csv") or ext.endswith(".csv.gz") or ext.endswith(".txt"):
            X, y = _load_csv(path, label_column)
        else:
            raise UserError(f"{path}: expected a .npz (X, y), .npy pair (name.npy + name_y.npy) or .csv file")
    except UserError:
        raise
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: could not read data ({exc})") from None
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    if len(X) != len(y):
        raise UserError(f"{path}: expected as many labels as rows, got {len(y)} labels for {len(X)} rows")
    if len(X) < 2:
        raise UserError(f"{path}: expected at least 2 rows of data")
    if not np.isfinite(X).all():
        bad = int(np.argwhere(~np.isfinite(X))[0][0])
        raise UserError(f"{path}: expected finite feature values, found NaN/Inf in row {bad}")
    y = np.asarray(y)
    if task == "classification":
        if y.dtype.kind == "f":
            if not np.isfinite(y).all() or not np.all(y == np.round(y)):
                raise UserError(f"{path}: expected integer class labels for classification (use --task regression)")
        y = y.astype(np.int64).reshape(-1)
        if y.min() < 0:
            raise UserError(f"{path}: expected class labels >= 0, got {y.min()}")
    else:
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise UserError(f"{path}: expected finite regression targets")
        y = y.reshape(len(y), -1)
    return X, y


def _load_csv(path: str, label_column: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    import gzip
    import io

    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rt") as f:
        text = f.read()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise UserError(f"{path}: the file is empty")
    delim = "," if "," in lines[0] else None
    first = lines[0].split(delim)

    def numeric(tok: str) -> bool:
        try:
            float(tok)
            return True
        except ValueError:
            return False

    header = not all(numeric(t.strip()) for t in first)
    try:
        data = np.loadtxt(io.StringIO("\n".join(lines[1:] if header else lines)), delimiter=delim, ndmin=2)
    except ValueError as exc:
        raise UserError(f"{path}: expected numeric CSV values ({exc})") from None
    ncol = data.shape[1]
    col = ncol - 1 if label_column is None else label_column
    if not -ncol <= col < ncol:
        raise UserError(f"{path}: --label-column {label_column} is out of range for {ncol} columns")
    col %= ncol
    y = data[:, col]
    X = np.delete(data, col, axis=1)
    if X.shape[1] == 0:
        raise UserError(f"{path}: expected at least one feature column besides the label")
    return X, y


# ---------------------------------------------------------------------- model
def build_mlp(in_features: int, hidden: Sequence[int], out_features: int, activation: str = "relu",
              norm: str = "none", dropout: float = 0.0) -> Any:
    """Linear layers with ``activation`` fused into each hidden GEMM (when no norm sits between)."""
    from . import nn

    layers: list[Any] = []
    prev = in_features
    for h in hidden:
        if norm == "none":
            layers.append(nn.Linear(prev, h, activation=activation))
        else:
            layers.append(nn.Linear(prev, h))
            layers.append(nn.BatchNorm1d(h) if norm == "batch" else nn.LayerNorm(h))
            layers.append(_activation_module(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = h
    layers.append(nn.Linear(prev, out_features))
    return nn.Sequential(*layers)


def build_cnn(in_features: int, hidden: Sequence[int], out_features: int, dropout: float = 0.0) -> Any:
    """A small CNN for square one-channel images given as flat rows of ``in_features`` pixels: two
    3x3 convolutions per resolution (the second strided by 2 instead of pooling), ReLU, then a
    Linear+ReLU of width ``hidden[0]`` (128 when empty) and the output Linear."""
    from . import nn

    side = math.isqrt(in_features)
    if side * side != in_features or side < 4:
        raise UserError(f"--model cnn expects square one-channel images (in_features = side^2, side >= 4), "
                        f"got {in_features} features")
    quarter = -(-(-(-side // 2)) // 2)  # two stride-2 convolutions with padding 1: ceil(ceil(side / 2) / 2)
    width = hidden[0] if hidden else 128
    layers: list[Any] = [
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * quarter * quarter, width, activation="relu"),
    ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def build_model(kind: str, in_features: int, hidden: Sequence[int], out_features: int, activation: str = "relu",
                norm: str = "none", dropout: float = 0.0) -> Any:
    """``--model mlp`` (build_mlp) or ``--model cnn`` (build_cnn: activation and norm do not apply)."""
    if kind == "cnn":
        return build_cnn(in_features, hidden, out_features, dropout)
    return build_mlp(in_features, hidden, out_features, activation, norm, dropout)


def _activation_module(name: str) -> Any:
    from . import nn

    table = {"relu": "ReLU", "gelu": "GELU", "tanh": "Tanh", "sigmoid": "Sigmoid", "silu": "SiLU",
             "elu": "ELU", "leaky_relu": "LeakyReLU", "softplus": "Softplus"}
    return getattr(nn, table[name])()


def _make_optimizer(name: str, params: Any, lr: float, weight_decay: float, momentum: float) -> Any:
    from . import optim

    name = name.lower()
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    cls = {"adagrad": "Adagrad", "rmsprop": "RMSprop", "adabound": "AdaBound", "lion": "Lion", "lamb": "LAMB"}.get(name)
    if cls is None or not hasattr(optim, cls):
        raise UserError(f"unknown optimizer {name!r}")
    return getattr(optim, cls)(params, lr=lr, weight_decay=weight_decay)


def _make_scheduler(name: str, opt: Any, lr: float, epochs: int, steps_per_epoch: int) -> Any:
    from .optim import lr_scheduler as S

    if name == "none":
        return None
    if name == "step":
        return S.StepLR(opt, step_size=max(epochs // 3, 1), gamma=0.3)
    if name == "cosine":
        return S.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    if name == "onecycle":
        return S.OneCycleLR(opt, max_lr=lr, epochs=max(epochs, 1), steps_per_epoch=max(steps_per_epoch, 1))
    if name == "plateau":
        return S.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    raise UserError(f"unknown schedule {name!r}")


# ---------------------------------------------------------------------- commands
def _parse_hidden(text: str) -> list[int]:
    if text.strip() in ("", "none"):
        return []
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--hidden expects comma-separated sizes such as 256,128, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise UserError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def _resolve_device(name: str) -> str:
    import nnfast

    if name == "auto":  # a GPU when there is one; the emulated cuda device only when asked for
        return "cuda" if nnfast.cuda.is_available() and not nnfast.cuda.is_emulated() else "cpu"
    if name == "cuda" and not nnfast.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available (see `nnfast info`)")
    return name


def _check_output_path(option: str, path: Optional[str]) -> None:
    """Fail before training, not after it, when an output file cannot be written."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{option} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise UserError(f"{option} {path}: is a folder; expected a file name")


def _check_can_plot() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plot needs matplotlib; install it with `pip install 'nnfast[plot]'` "
                        "(or `pip install matplotlib`)") from None


# ---------------------------------------------------------------------- data-parallel launch
# Variables MPI launchers (MPICH/Intel MPI Hydra, Open MPI, MVAPICH) and Slurm's srun set in each
# process: enough to know, before initializing MPI, whether this is one rank of several.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS")
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")


def launched_world() -> tuple[int, int]:
    """(rank, world size) announced by the launcher's environment; (0, 1) for a plain process."""
    for size_var, rank_var in zip(_SIZE_VARS, _RANK_VARS):
        size, rank = os.environ.get(size_var), os.environ.get(rank_var)
        if size and rank and size.isdigit() and rank.isdigit():
            return int(rank), int(size)
    return 0, 1


class _Parallel:
    """This process's place in a data-parallel ``nnfast train`` (rank 0 of 1 when not distributed)."""

    def __init__(self, rank: int = 0, world: int = 1, active: bool = False) -> None:
        self.rank, self.world, self.active = rank, world, active

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            from . import distributed as dist

            dist.barrier()


def _start_parallel(mode: str, device: str, threads: int) -> _Parallel:
    """Join the process group when launched as several ranks (``--distributed auto``) or when asked
    (``on``); give each rank its share of the node's cores unless --threads or NNFAST_NUM_THREADS say."""
    import nnfast

    _, world = launched_world()
    if mode == "off" or (mode == "auto" and world <= 1):
        return _Parallel()
    try:
        from . import distributed as dist
    except ImportError as exc:  # pragma: no cover - the package ships with nnfast
        raise UserError(f"--distributed needs nnfast.distributed ({exc})") from None
    if not getattr(dist, "is_mpi_available", dist.is_available)():
        raise UserError("--distributed needs MPI: install it with `pip install 'nnfast[distributed]'` "
                        "(mpi4py + mpich) or use the site's MPI, then launch with mpiexec or srun")
    backend = "nccl" if device == "cuda" and not nnfast.cuda.is_emulated() else "mpi"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    par = _Parallel(int(dist.get_rank()), int(dist.get_world_size()), True)
    if not threads and not os.environ.get("NNFAST_NUM_THREADS"):
        from mpi4py import MPI

        local = MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED)
        nnfast.set_num_threads(max(1, (os.cpu_count() or 1) // local.Get_size()))
        local.Free()
    return par


def _check_global_batch(batch: int, world: int) -> None:
    if batch % world:
        lo, hi = batch - batch % world, batch + world - batch % world
        raise UserError(f"--batch-size {batch} is the global batch and must be divisible by the {world} ranks "
                        f"(e.g. {lo if lo else hi} or {hi})")


def cmd_train(args: argparse.Namespace) -> int:
    import nnfast
    from . import nn
    from .training import Callback, EarlyStopping, LambdaCallback, evaluate, fit

    for option, path in (("--save", args.save), ("--plot", args.plot), ("--json", args.json)):
        _check_output_path(option, path)
    if args.plot:
        _check_can_plot()
    if args.threads < 0:
        raise UserError(f"--threads must be >= 0 (0 = default), got {args.threads}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.threads:
        nnfast.set_num_threads(args.threads)
    nnfast.manual_seed(args.seed)
    hidden = _parse_hidden(args.hidden)
    for name, v in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if v < 1:
            raise UserError(f"{name} must be >= 1, got {v}")
    if not 0 <= args.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {args.dropout}")
    if not (args.lr > 0 and np.isfinite(args.lr)):
        raise UserError(f"--lr must be a positive number, got {args.lr}")
    for name, v in (("--momentum", args.momentum), ("--weight-decay", args.weight_decay)):
        if not (v >= 0 and np.isfinite(v)):
            raise UserError(f"{name} must be a non-negative number, got {v}")
    if not 0 <= args.label_smoothing <= 1:
        raise UserError(f"--label-smoothing must be in [0, 1], got {args.label_smoothing}")
    if not 0 < args.val_split < 1:
        raise UserError(f"--val-split must be in (0, 1), got {args.val_split}")
    if args.early_stopping < 0:
        raise UserError(f"--early-stopping must be >= 0 (0 = off), got {args.early_stopping}")
    device = _resolve_device(args.device)
    task = args.task
    _check_global_batch(args.batch_size, launched_world()[1] if args.distributed != "off" else 1)

    if args.data in (None, "mnist_5k", "mnist"):
        Xtr, ytr, Xte, yte = nnfast.datasets.mnist_5k()
        data_name = "mnist_5k (bundled, 4000 train / 1000 test)"
        if task == "regression":
            raise UserError("the bundled mnist_5k data is a classification task")
    else:
        X, y = _load_user_data(args.data, args.label_column, task)
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(X))
        n_val = max(1, int(round(len(X) * args.val_split)))
        te, tr = order[:n_val], order[n_val:]
        mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-8
        X = (X - mu) / sd
        Xtr, ytr, Xte, yte = X[tr].astype(np.float32), y[tr], X[te].astype(np.float32), y[te]
        if task == "regression":
            ytr, yte = ytr.astype(np.float32), yte.astype(np.float32)
        data_name = f"{args.data} ({len(tr)} train / {len(te)} validation)"

    par = _start_parallel(args.distributed, device, args.threads)
    args._parallel = par  # from here on, main() aborts every rank when one fails
    _check_global_batch(args.batch_size, par.world)
    if device == "cuda" and par.world > 1 and not nnfast.cuda.is_emulated():
        import cupy  # one GPU per rank (unverified here: no GPU); ranks on a node are numbered consecutively

        cupy.cuda.Device(par.rank % max(nnfast.cuda.device_count(), 1)).use()
    n_out = int(max(ytr.max(), yte.max()) + 1) if task == "classification" else ytr.shape[1]
    model = build_model(args.model, Xtr.shape[1], hidden, n_out, args.activation, args.norm, args.dropout)
    if device != "cpu":
        model.to(device)
    train_data: Any = (Xtr, ytr)
    local_batch = args.batch_size // par.world
    if par.active:
        # Each rank trains on its DistributedSampler shard with batch_size / world rows per step:
        # the same global batch, steps per epoch and learning-rate schedule on any number of ranks.
        from .utils.data import DataLoader, TensorDataset
        from .utils.data.distributed import DistributedSampler

        ds = TensorDataset(Xtr, ytr)
        sampler = DistributedSampler(ds, num_replicas=par.world, rank=par.rank, shuffle=True, seed=args.seed)
        train_data = DataLoader(ds, batch_size=local_batch, sampler=sampler,
                                device=device if device == "cuda" else None)
    try:
        opt = _make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay, args.momentum)
        steps = len(train_data) if par.active else -(-len(Xtr) // args.batch_size)
        sched = _make_scheduler(args.schedule, opt, args.lr, args.epochs, steps)
    except (ValueError, TypeError) as exc:  # an option value the optimizer or schedule rejects
        raise UserError(str(exc)) from None
    loss_fn: nn.Module
    if task == "classification":
        loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
        metric_list: list[Any] = ["accuracy"]
    else:
        loss_fn = nn.MSELoss()
        metric_list = ["mae", "rmse"]

    start_epoch = 0
    if args.resume:
        if not os.path.exists(args.resume):
            raise UserError(f"checkpoint not found: {args.resume}")
        ck = nnfast.load(args.resume)
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise UserError(f"{args.resume}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
        if sched is not None and "scheduler" in ck:
            sched.load_state_dict(ck["scheduler"])
        if "rng" in ck:
            nnfast.set_rng_state(ck["rng"])
        start_epoch = int(ck.get("epoch", 0))

    # The checkpoint holds the plain module's state (no DDP "module." prefix) and one optimizer
    # state: the same on every rank, so it resumes on any number of ranks.
    net = model
    callbacks: list[Callback] = []
    if par.active:
        from .nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)  # broadcasts rank 0's parameters and buffers
        epoch_base = start_epoch

        class _ShuffleEachEpoch(Callback):
            def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
                sampler.set_epoch(epoch_base + epoch)

        callbacks.append(_ShuffleEachEpoch())
    quiet = args.quiet or not par.main  # progress, logs, plots, JSON and checkpoints: rank 0 only
    out = (lambda s: None) if quiet else print
    nthreads = nnfast.get_num_threads()
    ranks = f" | {par.world} ranks x {nthreads} thread{'s' if nthreads != 1 else ''}, batch {local_batch} per rank" \
        if par.active else f" | threads {nthreads}"
    out(f"nnfast {nnfast.__version__} | {data_name} | device {device} | simd {nnfast.info()['simd']}{ranks}")
    out(f"model: {'cnn ' if args.model == 'cnn' else ''}{Xtr.shape[1]}-" + "-".join(str(h) for h in hidden + [n_out]) +
        f" {args.activation}, norm {args.norm}, dropout {args.dropout}; optimizer {args.optimizer} lr {args.lr}"
        f", schedule {args.schedule}, batch {args.batch_size}, epochs {args.epochs}")
    if args.early_stopping:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=args.early_stopping))
    val_name = "test" if args.data in (None, "mnist_5k", "mnist") else "val"

    def print_epoch(epoch: int, logs: dict[str, Any]) -> None:
        parts = [f"epoch {epoch + start_epoch:3d}/{args.epochs + start_epoch}", f"loss {logs['loss']:.4f}"]
        for m in metric_list:
            parts.append(f"train_{m} {logs[m]:.4f}")
            parts.append(f"{val_name}_{m} {logs['val_' + m]:.4f}")
        parts.append(f"lr {logs['lr']:.2e}")
        parts.append(f"{logs['time']:.2f}s")
        out("  ".join(parts))

    callbacks.append(LambdaCallback(print_epoch))
    t0 = time.perf_counter()
    history = fit(net, loss_fn, opt, train_data, (Xte, yte), epochs=args.epochs, batch_size=args.batch_size,
                  scheduler=sched, callbacks=callbacks, metrics=metric_list, verbose=not quiet,
                  log=lambda line: None, precision=args.precision)
    total = time.perf_counter() - t0
    h = history.history
    final = evaluate(net, loss_fn, (Xte, yte), metrics=metric_list, distributed=par.active,
                     precision=args.precision)
    summary = {"epochs_run": len(history.epochs), "train_loss": h["loss"][-1] if h.get("loss") else None,
               f"{val_name}_loss": final["loss"], "seconds": round(total, 3), "world_size": par.world}
    for m in metric_list:
        summary[f"train_{m}"] = h[m][-1] if h.get(m) else None
        summary[f"{val_name}_{m}"] = final[m]
    if not quiet:
        print("summary:")
        for k, v in summary.items():
            print(f"  {k:<16} {v:.4f}" if isinstance(v, float) else f"  {k:<16} {v}")
    if args.save and par.main:
        nnfast.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                     **({"scheduler": sched.state_dict()} if sched is not None else {}),
                     "rng": nnfast.get_rng_state(), "epoch": start_epoch + len(history.epochs),
                     "config": {"in_features": int(Xtr.shape[1]), "hidden": hidden, "out_features": int(n_out),
                                "activation": args.activation, "norm": args.norm, "dropout": args.dropout,
                                "task": task, "model": args.model}}, args.save)
        out(f"saved checkpoint to {args.save}")
    if args.plot and par.main:
        history.plot(args.plot)
        out(f"wrote curves to {args.plot}")
    if args.json and par.main:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "history": history.to_dict()}, f, indent=2)
    par.barrier()  # no rank leaves before rank 0's files are complete
    return 0


def _model_from_checkpoint(path: str) -> tuple[Any, dict[str, Any]]:
    import nnfast

    if not os.path.exists(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        ck = nnfast.load(path)
        cfg = ck["config"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not an nnfast training checkpoint ({str(exc).splitlines()[0]})") from None
    model = build_model(cfg.get("model", "mlp"), cfg["in_features"], cfg["hidden"], cfg["out_features"],
                        cfg["activation"], cfg["norm"], cfg["dropout"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, cfg


def cmd_evaluate(args: argparse.Namespace) -> int:
    import nnfast
    from . import nn
    from .training import evaluate

    model, cfg = _model_from_checkpoint(args.checkpoint)
    if args.data in (None, "mnist_5k", "mnist"):
        _, _, X, y = nnfast.datasets.mnist_5k()
    else:
        X, y = _load_user_data(args.data, args.label_column, cfg["task"])
        X = X.astype(np.float32)
    if X.shape[1] != cfg["in_features"]:
        raise UserError(f"data has {X.shape[1]} features but the model expects {cfg['in_features']}")
    if cfg["task"] == "classification":
        res = evaluate(model, nn.CrossEntropyLoss(), (X, y), metrics=["accuracy"])
    else:
        res = evaluate(model, nn.MSELoss(), (X, y.astype(np.float32)), metrics=["mae", "rmse"])
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:<10} {v:.4f}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .training import predict

    _check_output_path("--out", args.out)
    model, cfg = _model_from_checkpoint(args.checkpoint)
    if not os.path.exists(args.data):
        raise UserError(f"data file not found: {args.data}")
    if args.data.endswith(".npy"):
        X = np.load(args.data, allow_pickle=False)
    elif args.data.endswith(".npz"):
        with np.load(args.data, allow_pickle=False) as f:
            X = f["X"] if "X" in f.files else f[f.files[0]]
    else:
        X, _ = _load_csv(args.data, None)
    X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    if X.shape[1] == cfg["in_features"] + 1:
        X = X[:, :-1]  # a labelled file: drop the label column
    if X.shape[1] != cfg["in_features"]:
        raise UserError(f"data has {X.shape[1]} features but the model expects {cfg['in_features']}")
    out = predict(model, X)
    preds = out.argmax(-1) if cfg["task"] == "classification" else out
    np.save(args.out, preds)
    print(f"wrote {len(preds)} predictions to {args.out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import nnfast

    info = nnfast.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:<18} {v}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    return bench.main(quick=args.quick, json_path=args.json, only=args.only)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` for options with a meaningful default not already described."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        text = action.help or ""
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS \
                or "default" in text:
            return text
        return super()._get_help_string(action)


def _print_or_write_table(args: argparse.Namespace, what: str, table: Callable[[], str],
                          rewrite: Callable[[str], str]) -> int:
    if args.write is None:
        sys.stdout.write(table())
        return 0
    try:
        with open(args.write, encoding="utf-8") as f:
            text = f.read()
        new = rewrite(text)
    except (OSError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if new != text:
        with open(args.write, "w", encoding="utf-8") as f:
            f.write(new)
    print(f"{args.write}: {what} table {'updated' if new != text else 'up to date'}")
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from . import _dispatch

    return _print_or_write_table(args, "ops", _dispatch.markdown_table, _dispatch.readme_with_table)


def cmd_api(args: argparse.Namespace) -> int:
    from . import _api

    return _print_or_write_table(args, "api", _api.markdown_table, _api.readme_with_table)


def build_parser() -> argparse.ArgumentParser:
    import nnfast

    p = argparse.ArgumentParser(prog="nnfast", description="Train and benchmark dense networks with nnfast.")
    p.add_argument("--version", action="version", version=f"nnfast {nnfast.__version__}")
    p.add_argument("--cmake-dir", action="store_true", help="print the CMake package folder and exit")
    p.add_argument("--include", action="store_true", help="print the C++ include folder and exit")
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train an MLP (default: on the bundled mnist_5k digits)",
                       description="Train an MLP with nnfast and print the loss and metrics per epoch.",
                       formatter_class=_HelpFormatter)
    t.add_argument("--data", default=None,
                   help="mnist_5k (the default: bundled digits) or a .npz (X, y), .npy or .csv file")
    t.add_argument("--label-column", type=int, default=None, help="CSV label column (default: the last)")
    t.add_argument("--task", choices=["classification", "regression"], default="classification",
                   help="loss and metrics: cross-entropy + accuracy, or MSE + MAE/RMSE")
    t.add_argument("--model", default="mlp", choices=["mlp", "cnn"],
                   help="mlp: Linear layers; cnn: 3x3 convolutions for square one-channel images (the "
                        "first --hidden size is its dense layer)")
    t.add_argument("--hidden", default="256,128", help="hidden layer sizes, comma-separated ('none': no hidden layer)")
    t.add_argument("--activation", default="relu",
                   choices=["relu", "gelu", "tanh", "sigmoid", "silu", "elu", "leaky_relu", "softplus"],
                   help="activation after each hidden layer")
    t.add_argument("--norm", default="none", choices=["none", "batch", "layer"],
                   help="normalization after each hidden layer")
    t.add_argument("--dropout", type=float, default=0.0, help="dropout probability after each hidden layer")
    t.add_argument("--optimizer", default="adam",
                   choices=["sgd", "adam", "adamw", "adagrad", "rmsprop", "adabound", "lion", "lamb"],
                   help="optimizer")
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    t.add_argument("--weight-decay", type=float, default=0.0, help="weight decay")
    t.add_argument("--schedule", default="none", choices=["none", "step", "cosine", "onecycle", "plateau"],
                   help="learning-rate schedule")
    t.add_argument("--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing, in [0, 1]")
    t.add_argument("--epochs", type=int, default=15, help="passes over the training data")
    t.add_argument("--batch-size", type=int, default=64,
                   help="samples per step (data-parallel: the global batch, split over the ranks)")
    t.add_argument("--val-split", type=float, default=0.2, help="validation fraction for user data")
    t.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation loss (0 = off)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train")
    t.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: mixed precision (nnfast.autocast; float32 master weights and optimizer state)")
    t.add_argument("--seed", type=int, default=0, help="random seed (initialization, shuffling, dropout)")
    t.add_argument("--threads", type=int, default=0, help="CPU threads (0 = NNFAST_NUM_THREADS, else all cores)")
    t.add_argument("--save", default=None, metavar="CKPT", help="write a checkpoint (safetensors)")
    t.add_argument("--resume", default=None, metavar="CKPT", help="continue from a checkpoint")
    t.add_argument("--plot", default=None, metavar="PNG", help="write loss/metric curves (needs matplotlib)")
    t.add_argument("--json", default=None, metavar="PATH", help="write metrics as JSON")
    t.add_argument("--quiet", action="store_true", help="print nothing but errors")
    t.add_argument("--distributed", default="auto", choices=["auto", "on", "off"],
                   help="data-parallel over MPI ranks: auto = when launched as several ranks by mpiexec/srun; "
                        "--batch-size is then the global batch, split over the ranks")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on data (default: mnist_5k test split)",
                       formatter_class=_HelpFormatter)
    e.add_argument("checkpoint", help="a checkpoint written by `nnfast train --save`")
    e.add_argument("data", nargs="?", default=None,
                   help="a .npz (X, y), .npy or .csv file (default: the mnist_5k test split)")
    e.add_argument("--label-column", type=int, default=None, help="CSV label column (default: the last)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="write predictions of a checkpoint for data to a .npy file",
                        formatter_class=_HelpFormatter)
    pr.add_argument("checkpoint", help="a checkpoint written by `nnfast train --save`")
    pr.add_argument("data", help="features as .npy, .npz (array X) or .csv (a trailing label column is dropped)")
    pr.add_argument("--out", default="preds.npy", help="output .npy: class indices, or values for regression")
    pr.set_defaults(func=cmd_predict)

    b = sub.add_parser("bench", help="benchmark kernels and training steps against NumPy (and PyTorch)")
    b.add_argument("--quick", action="store_true", help="about one minute")
    b.add_argument("--json", default=None, metavar="PATH")
    b.add_argument("--only", default=None, help="comma-separated subset: gemm,gemm_bf16,memory,overhead,step, or "
                        "distributed (data-parallel over `mpiexec -n 2`; only when named)")
    b.set_defaults(func=cmd_bench)

    o = sub.add_parser("ops", help="print which ops have kernels on which device (markdown)")
    o.add_argument("--write", default=None, metavar="README",
                   help="rewrite the table between the ops-table markers of this file instead")
    o.set_defaults(func=cmd_ops)
    a = sub.add_parser("api", help="print the PyTorch-surface names nnfast supports, by area (markdown)")
    a.add_argument("--write", default=None, metavar="README",
                   help="rewrite the table between the api-table markers of this file instead")
    a.set_defaults(func=cmd_api)

    i = sub.add_parser("info", help="print version, SIMD level, threads and CUDA status")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmake_dir or args.include:
        import nnfast

        print(nnfast.get_cmake_dir() if args.cmake_dir else nnfast.get_include())
        return 0
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        par = getattr(args, "_parallel", None)
        if par is None:  # before joining the ranks: every rank sees the same mistake; rank 0 says it
            if launched_world()[0] == 0:
                print(f"nnfast {args.command}: error: {exc}", file=sys.stderr)
            return 2
        where = f" (rank {par.rank} of {par.world})" if par.world > 1 else ""
        print(f"nnfast {args.command}: error{where}: {exc}", file=sys.stderr)
        _abort_ranks(par, 2)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:
        par = getattr(args, "_parallel", None)
        if par is not None and par.world > 1:  # the other ranks would wait in a collective forever
            import traceback

            traceback.print_exc()
            print(f"nnfast {args.command}: rank {par.rank} of {par.world} failed ({type(exc).__name__}); "
                  "aborting every rank", file=sys.stderr)
            _abort_ranks(par, 1)
        raise


def _abort_ranks(par: Any, code: int) -> None:
    """Stop every rank of a data-parallel job now: the others may be blocked in a collective."""
    if par.world > 1:
        from .distributed._backend import abort_job

        abort_job(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
