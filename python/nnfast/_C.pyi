"""Type stubs for ``nnfast._C``, the pybind11 module over the C++ kernel library (csrc/bindings/).

Conventions of every kernel binding: outputs first, then inputs and saved tensors, then sizes and
options; arrays are NumPy arrays of float32 or float64 (int64 class targets) checked at the boundary
(dtype, shape, strides, aliasing), and a bad argument raises ``TypeError``/``ValueError("[op] ...")``.
An ``Optional`` output (``grad_input=None``...) is skipped. ``act``/``kind``/``reduction`` are the
integer codes of ``Act`` (read by ``nnfast.nn.functional._act_codes``) and ``_loss``. Optimizer steps take one list of
arrays per role (params, grads, each state) for a whole param group; an unused state list is None.

tests/test_typing.py checks that this file names every function of the built module with the same
parameters and defaults.
"""
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Optional, SupportsFloat, SupportsIndex, SupportsInt, overload

import numpy as np
from numpy.typing import NDArray

__version__: str
compiler: str  # the C++ compiler's version string
sanitized: bool  # True in an ASan/UBSan build (NNFAST_SANITIZE=ON)

class Act:
    """nnfast::Act activation codes (csrc/include/nnfast/common.h); ``act`` arguments take int(code)."""

    Identity: ClassVar[Act]
    ReLU: ClassVar[Act]
    LeakyReLU: ClassVar[Act]
    ELU: ClassVar[Act]
    Sigmoid: ClassVar[Act]
    Tanh: ClassVar[Act]
    GELU: ClassVar[Act]
    GELUTanh: ClassVar[Act]
    SiLU: ClassVar[Act]
    Softplus: ClassVar[Act]
    Hardtanh: ClassVar[Act]
    __members__: ClassVar[dict[str, Act]]
    def __init__(self, value: SupportsInt | SupportsIndex) -> None: ...
    def __int__(self) -> int: ...
    def __index__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

ACT_COUNT: int  # activation codes are [0, ACT_COUNT)
ACT_GRAD_FROM_OUTPUT: tuple[int, ...]  # codes whose backward takes the saved output, not the input

def _sanitizer_selftest(arg0: SupportsInt | SupportsIndex, /) -> None:
    """Sanitizer builds only: a deliberate heap overflow that AddressSanitizer must report."""

def act_backward(
    grad_input: NDArray[Any],
    grad: NDArray[Any],
    saved: NDArray[Any],
    act: SupportsInt | SupportsIndex,
    a: SupportsFloat | SupportsIndex = 0.0,
    b: SupportsFloat | SupportsIndex = 0.0,
) -> None: ...
def act_forward(
    out: NDArray[Any],
    input: NDArray[Any],
    act: SupportsInt | SupportsIndex,
    a: SupportsFloat | SupportsIndex = 0.0,
    b: SupportsFloat | SupportsIndex = 0.0,
) -> None: ...
def adabound_step(
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any]],
    exp_avgs: Sequence[NDArray[Any]],
    exp_avg_sqs: Sequence[NDArray[Any]],
    max_exp_avg_sqs: Optional[Sequence[NDArray[Any]]],
    steps: Sequence[SupportsInt | SupportsIndex],
    lr: SupportsFloat | SupportsIndex,
    base_lr: SupportsFloat | SupportsIndex,
    beta1: SupportsFloat | SupportsIndex,
    beta2: SupportsFloat | SupportsIndex,
    final_lr: SupportsFloat | SupportsIndex,
    gamma: SupportsFloat | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
    weight_decay: SupportsFloat | SupportsIndex,
    amsbound: bool,
    maximize: bool,
) -> None: ...
def adagrad_step(
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any]],
    state_sums: Sequence[NDArray[Any]],
    steps: Sequence[SupportsInt | SupportsIndex],
    lr: SupportsFloat | SupportsIndex,
    lr_decay: SupportsFloat | SupportsIndex,
    weight_decay: SupportsFloat | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
    maximize: bool,
) -> None: ...
def adam_step(
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any]],
    exp_avgs: Sequence[NDArray[Any]],
    exp_avg_sqs: Sequence[NDArray[Any]],
    max_exp_avg_sqs: Optional[Sequence[NDArray[Any]]],
    steps: Sequence[SupportsInt | SupportsIndex],
    lr: SupportsFloat | SupportsIndex,
    beta1: SupportsFloat | SupportsIndex,
    beta2: SupportsFloat | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
    weight_decay: SupportsFloat | SupportsIndex,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None: ...
def batch_norm_backward(
    grad_input: Optional[NDArray[Any]],
    grad_weight: Optional[NDArray[Any]],
    grad_bias: Optional[NDArray[Any]],
    grad: NDArray[Any],
    input: NDArray[Any],
    mean: NDArray[Any],
    rstd: NDArray[Any],
    weight: Optional[NDArray[Any]],
    training: bool,
) -> None: ...
def batch_norm_forward(
    out: NDArray[Any],
    mean: NDArray[Any],
    rstd: NDArray[Any],
    running_mean: Optional[NDArray[Any]],
    running_var: Optional[NDArray[Any]],
    input: NDArray[Any],
    weight: Optional[NDArray[Any]],
    bias: Optional[NDArray[Any]],
    training: bool,
    momentum: SupportsFloat | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
) -> None: ...
def bias_grad(dbias: NDArray[Any], grad: NDArray[Any], accumulate: bool = True) -> None: ...
def cpu_isa() -> str: ...
def cpu_isa_supported(arg0: str, /) -> bool: ...
def cross_entropy(
    loss: NDArray[Any],
    grad_input: Optional[NDArray[Any]],
    input: NDArray[Any],
    target: NDArray[Any],
    weight: Optional[NDArray[Any]],
    ignore_index: SupportsInt | SupportsIndex,
    label_smoothing: SupportsFloat | SupportsIndex,
    reduction: SupportsInt | SupportsIndex,
) -> None: ...
def cross_entropy_prob(
    loss: NDArray[Any],
    grad_input: Optional[NDArray[Any]],
    grad_target: Optional[NDArray[Any]],
    input: NDArray[Any],
    target: NDArray[Any],
    weight: Optional[NDArray[Any]],
    label_smoothing: SupportsFloat | SupportsIndex,
    reduction: SupportsInt | SupportsIndex,
) -> None: ...
def cuda_compiled() -> bool: ...
def cuda_emulated() -> bool: ...
def cuda_device_count() -> int: ...
def cuda_device_name(arg0: SupportsInt | SupportsIndex, /) -> str: ...
def dropout_backward(
    grad_input: NDArray[Any],
    grad: NDArray[Any],
    p: SupportsFloat | SupportsIndex,
    seed: SupportsInt | SupportsIndex,
    offset: SupportsInt | SupportsIndex,
) -> None: ...
def dropout_forward(
    out: NDArray[Any],
    input: NDArray[Any],
    p: SupportsFloat | SupportsIndex,
    seed: SupportsInt | SupportsIndex,
    offset: SupportsInt | SupportsIndex,
) -> None: ...
def fma_peak_gflops(f64: bool = False, seconds: float = 0.2) -> float:
    """Measured single-core FMA peak (GFLOP/s) with the SIMD level in use."""
def gemm(
    out: NDArray[Any],
    A: NDArray[Any],
    B: NDArray[Any],
    alpha: SupportsFloat | SupportsIndex = 1.0,
    beta: SupportsFloat | SupportsIndex = 0.0,
    bias: Optional[NDArray[Any]] = None,
    act: SupportsInt | SupportsIndex = 0,
    act_a: SupportsFloat | SupportsIndex = 0.0,
    act_b: SupportsFloat | SupportsIndex = 0.0,
    aux: Optional[NDArray[Any]] = None,
    dact_src: Optional[NDArray[Any]] = None,
) -> None: ...
def get_num_threads() -> int: ...
def glu_backward(
    grad_input: NDArray[Any],
    grad: NDArray[Any],
    input: NDArray[Any],
    dim: SupportsInt | SupportsIndex,
    act: SupportsInt | SupportsIndex,
    gate_first: bool,
) -> None: ...
def glu_forward(
    out: NDArray[Any],
    input: NDArray[Any],
    dim: SupportsInt | SupportsIndex,
    act: SupportsInt | SupportsIndex,
    gate_first: bool,
) -> None: ...
def group_norm_backward(
    grad_input: Optional[NDArray[Any]],
    grad_weight: Optional[NDArray[Any]],
    grad_bias: Optional[NDArray[Any]],
    grad: NDArray[Any],
    input: NDArray[Any],
    mean: NDArray[Any],
    rstd: NDArray[Any],
    weight: Optional[NDArray[Any]],
    num_groups: SupportsInt | SupportsIndex,
) -> None: ...
def group_norm_forward(
    out: NDArray[Any],
    mean: NDArray[Any],
    rstd: NDArray[Any],
    input: NDArray[Any],
    weight: Optional[NDArray[Any]],
    bias: Optional[NDArray[Any]],
    num_groups: SupportsInt | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
) -> None: ...
def instance_norm_update_running(
    running_mean: Optional[NDArray[Any]],
    running_var: Optional[NDArray[Any]],
    mean: NDArray[Any],
    rstd: NDArray[Any],
    L: SupportsInt | SupportsIndex,
    momentum: SupportsFloat | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
) -> None: ...
def lamb_step(
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any]],
    exp_avgs: Sequence[NDArray[Any]],
    exp_avg_sqs: Sequence[NDArray[Any]],
    steps: Sequence[SupportsInt | SupportsIndex],
    lr: SupportsFloat | SupportsIndex,
    beta1: SupportsFloat | SupportsIndex,
    beta2: SupportsFloat | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
    weight_decay: SupportsFloat | SupportsIndex,
    bias_correction: bool,
    maximize: bool,
) -> NDArray[np.float64]: ...
def layer_norm_backward(
    grad_input: Optional[NDArray[Any]],
    grad_weight: Optional[NDArray[Any]],
    grad_bias: Optional[NDArray[Any]],
    grad: NDArray[Any],
    input: NDArray[Any],
    mean: Optional[NDArray[Any]],
    rstd: NDArray[Any],
    weight: Optional[NDArray[Any]],
    rms: bool = False,
) -> None: ...
def layer_norm_forward(
    out: NDArray[Any],
    mean: Optional[NDArray[Any]],
    rstd: NDArray[Any],
    input: NDArray[Any],
    weight: Optional[NDArray[Any]],
    bias: Optional[NDArray[Any]],
    eps: SupportsFloat | SupportsIndex,
    rms: bool = False,
) -> None: ...
def linear_cross_entropy(
    loss: NDArray[Any],
    lse: NDArray[Any],
    input: NDArray[Any],
    weight: NDArray[Any],
    bias: Optional[NDArray[Any]],
    target: NDArray[Any],
    ignore_index: SupportsInt | SupportsIndex,
    label_smoothing: SupportsFloat | SupportsIndex,
    reduction: SupportsInt | SupportsIndex,
    chunk_size: SupportsInt | SupportsIndex,
) -> None: ...
def linear_cross_entropy_backward(
    grad_input: Optional[NDArray[Any]],
    grad_weight: Optional[NDArray[Any]],
    grad_bias: Optional[NDArray[Any]],
    grad: NDArray[Any] | float,
    lse: NDArray[Any],
    input: NDArray[Any],
    weight: NDArray[Any],
    bias: Optional[NDArray[Any]],
    target: NDArray[Any],
    ignore_index: SupportsInt | SupportsIndex,
    label_smoothing: SupportsFloat | SupportsIndex,
    reduction: SupportsInt | SupportsIndex,
    chunk_size: SupportsInt | SupportsIndex,
) -> None: ...
def lion_step(
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any]],
    exp_avgs: Sequence[NDArray[Any]],
    lr: SupportsFloat | SupportsIndex,
    beta1: SupportsFloat | SupportsIndex,
    beta2: SupportsFloat | SupportsIndex,
    weight_decay: SupportsFloat | SupportsIndex,
    maximize: bool,
) -> None: ...
def loss_scale_grad(grad_input: NDArray[Any], saved: NDArray[Any], grad: NDArray[Any] | float) -> None: ...
def multi_tensor_all_finite(tensors: Sequence[NDArray[Any]]) -> bool: ...
def multi_tensor_clamp(
    tensors: Sequence[NDArray[Any]],
    min: SupportsFloat | SupportsIndex,
    max: SupportsFloat | SupportsIndex,
) -> None: ...
@overload
def multi_tensor_norm(
    tensors: Sequence[NDArray[Any]],
    norm_type: SupportsFloat | SupportsIndex = 2.0,
    per_tensor: Literal[False] = False,
) -> float: ...
@overload
def multi_tensor_norm(
    tensors: Sequence[NDArray[Any]],
    norm_type: SupportsFloat | SupportsIndex,
    per_tensor: Literal[True],
) -> tuple[float, NDArray[np.float64]]: ...
@overload
def multi_tensor_norm(
    tensors: Sequence[NDArray[Any]],
    norm_type: SupportsFloat | SupportsIndex = 2.0,
    *,
    per_tensor: Literal[True],
) -> tuple[float, NDArray[np.float64]]: ...
@overload
def multi_tensor_norm(
    tensors: Sequence[NDArray[Any]],
    norm_type: SupportsFloat | SupportsIndex = 2.0,
    per_tensor: bool = False,
) -> float | tuple[float, NDArray[np.float64]]: ...
def multi_tensor_scale(tensors: Sequence[NDArray[Any]], scale: SupportsFloat | SupportsIndex) -> None: ...
def nll_loss(
    loss: NDArray[Any],
    input: NDArray[Any],
    target: NDArray[Any],
    weight: Optional[NDArray[Any]],
    ignore_index: SupportsInt | SupportsIndex,
    reduction: SupportsInt | SupportsIndex,
) -> None: ...
def nll_loss_backward(
    grad_input: NDArray[Any],
    grad: NDArray[Any] | float,
    target: NDArray[Any],
    weight: Optional[NDArray[Any]],
    ignore_index: SupportsInt | SupportsIndex,
    reduction: SupportsInt | SupportsIndex,
) -> None: ...
def openmp_enabled() -> bool: ...
def penalty_backward(
    grads: Sequence[NDArray[Any]],
    params: Sequence[NDArray[Any]],
    kind: SupportsInt | SupportsIndex,
    scale: SupportsFloat | SupportsIndex,
) -> None: ...
def penalty_sum(params: Sequence[NDArray[Any]], kind: SupportsInt | SupportsIndex) -> float: ...
def pointwise_loss(
    out: NDArray[Any],
    input: NDArray[Any],
    target: NDArray[Any],
    weight: Optional[NDArray[Any]],
    pos_weight: Optional[NDArray[Any]],
    kind: SupportsInt | SupportsIndex,
    param: SupportsFloat | SupportsIndex,
    reduction: SupportsInt | SupportsIndex,
    out_scale: SupportsFloat | SupportsIndex,
    op: str = 'pointwise_loss',
) -> None: ...
def pointwise_loss_backward(
    grad_input: Optional[NDArray[Any]],
    grad_target: Optional[NDArray[Any]],
    grad: NDArray[Any] | float,
    grad_scale: SupportsFloat | SupportsIndex,
    input: NDArray[Any],
    target: NDArray[Any],
    weight: Optional[NDArray[Any]],
    pos_weight: Optional[NDArray[Any]],
    kind: SupportsInt | SupportsIndex,
    param: SupportsFloat | SupportsIndex,
    op: str = 'pointwise_loss',
) -> None: ...
def prelu_backward(
    grad_input: Optional[NDArray[Any]],
    grad_weight: Optional[NDArray[Any]],
    grad: NDArray[Any],
    input: NDArray[Any],
    weight: NDArray[Any],
) -> None: ...
def prelu_forward(out: NDArray[Any], input: NDArray[Any], weight: NDArray[Any]) -> None: ...
def rmse_loss(out: NDArray[Any], input: NDArray[Any], target: NDArray[Any]) -> None: ...
def rmsprop_step(
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any]],
    square_avgs: Sequence[NDArray[Any]],
    grad_avgs: Optional[Sequence[NDArray[Any]]],
    momentum_buffers: Optional[Sequence[NDArray[Any]]],
    lr: SupportsFloat | SupportsIndex,
    alpha: SupportsFloat | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
    weight_decay: SupportsFloat | SupportsIndex,
    momentum: SupportsFloat | SupportsIndex,
    centered: bool,
    maximize: bool,
) -> None: ...
def set_cpu_isa(arg0: str, /) -> None: ...
def set_num_threads(arg0: SupportsInt | SupportsIndex, /) -> None: ...
def sgd_step(
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any]],
    momentum_buffers: Optional[Sequence[NDArray[Any]]],
    init_buffer: Sequence[bool],
    lr: SupportsFloat | SupportsIndex,
    momentum: SupportsFloat | SupportsIndex,
    dampening: SupportsFloat | SupportsIndex,
    weight_decay: SupportsFloat | SupportsIndex,
    nesterov: bool,
    maximize: bool,
) -> None: ...
def softmax_backward(
    grad_input: NDArray[Any],
    grad: NDArray[Any],
    output: NDArray[Any],
    dim: SupportsInt | SupportsIndex,
    log: bool = False,
) -> None: ...
def softmax_forward(
    out: NDArray[Any],
    input: NDArray[Any],
    dim: SupportsInt | SupportsIndex,
    log: bool = False,
) -> None: ...
def spectral_norm_backward(
    grad_weight: NDArray[Any],
    grad: NDArray[Any],
    weight: NDArray[Any],
    u: NDArray[Any],
    v: NDArray[Any],
    sigma: SupportsFloat | SupportsIndex,
) -> None: ...
def spectral_norm_forward(
    out: NDArray[Any],
    weight: NDArray[Any],
    u: NDArray[Any],
    v: NDArray[Any],
) -> float: ...
def spectral_norm_power_iteration(
    u: NDArray[Any],
    v: NDArray[Any],
    weight: NDArray[Any],
    n_power_iterations: SupportsInt | SupportsIndex,
    eps: SupportsFloat | SupportsIndex,
) -> None: ...
def step_forward(
    out: NDArray[Any],
    input: NDArray[Any],
    sign: bool = False,
    threshold: SupportsFloat | SupportsIndex = 0.0,
) -> None: ...
def swish_backward(
    grad_input: Optional[NDArray[Any]],
    grad_beta: Optional[NDArray[Any]],
    grad: NDArray[Any],
    input: NDArray[Any],
    beta: SupportsFloat | SupportsIndex,
) -> None: ...
def swish_forward(out: NDArray[Any], input: NDArray[Any], beta: SupportsFloat | SupportsIndex) -> None: ...
def weight_norm_backward(
    grad_v: Optional[NDArray[Any]],
    grad_g: Optional[NDArray[Any]],
    grad: NDArray[Any],
    v: NDArray[Any],
    g: NDArray[Any],
    norm: NDArray[Any],
) -> None: ...
def weight_norm_forward(out: NDArray[Any], norm: NDArray[Any], v: NDArray[Any], g: NDArray[Any]) -> None: ...
