"""The recurrent sequence ops under ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``."""
from __future__ import annotations

__all__: list[str] = []
