"""``nnfast.optim``: optimizers with PyTorch's API, each step one fused C++ kernel per param group.

PyTorch names: ``Optimizer``, ``SGD``, ``Adam``, ``AdamW``, ``Adagrad``, ``RMSprop``,
``Adadelta``, ``Adamax``, ``NAdam``, ``RAdam``, ``ASGD``, ``LBFGS`` and ``lr_scheduler``. nnfast additions: ``AdaBound``, ``Lion``, ``LAMB``, and the
``skip_nonfinite`` option of every optimizer.
"""
from . import lr_scheduler
from .adabound import AdaBound
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .lamb import LAMB
from .lbfgs import LBFGS
from .lion import Lion
from .nadam import NAdam, RAdam
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD",
           "LBFGS", "AdaBound", "Lion", "LAMB", "lr_scheduler"]
