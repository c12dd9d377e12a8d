"""``nn.utils``: gradient clipping and weight reparametrizations."""
from . import rnn as rnn  # noqa: F401
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .spectral_norm import remove_spectral_norm, spectral_norm
from .weight_norm import remove_weight_norm, weight_norm

__all__: list[str] = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
                      "clip_grads_with_norm_", "weight_norm", "remove_weight_norm", "spectral_norm",
                      "remove_spectral_norm"]
