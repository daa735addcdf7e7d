"""Helper ``nn.Module`` classes (and functions) for layers torch does not ship as one module.

The exporter copies a class's source from here into the generated file, so each class must
be self-contained: it may use only ``torch``, ``nn``, ``F`` and ``math``, and is formatted
the way ``ruff format`` writes it.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import torch
import torch.nn.functional as F  # noqa: F401, N812  (available to helpers, as in exported files)
from torch import nn

#: Helper classes (and functions) registered so far, by name; read the complete set as
#: :data:`dlstudio.core.helpers.SUPPORT`, which imports every family's helpers first.
REGISTERED: dict[str, Any] = {}

Helper = TypeVar("Helper")


def support(helper: Helper) -> Helper:
    """Register a helper class or function under its own name."""
    REGISTERED[helper.__name__] = helper  # type: ignore[attr-defined]
    return helper


@support
class PositionalEncoding(nn.Module):
    """Adds fixed sine and cosine waves, one per position, to [batch, time, d_model].

    The table follows from d_model and max_len, so it is not saved with the weights.
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0) -> None:
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        scale = -math.log(10000.0) / d_model
        frequency = torch.exp(torch.arange(0, d_model, 2) * scale)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * frequency)
        pe[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[: x.size(1)])


@support
class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned vector, one per position, to [batch, time, d_model]."""

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_len, d_model))
        nn.init.normal_(self.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.weight[: x.size(1)])


@support
def causal_mask(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """A mask that stops each position along ``dim`` from attending to later ones."""
    return nn.Transformer.generate_square_subsequent_mask(
        x.size(dim), device=x.device, dtype=x.dtype
    )


@support
class Transposed(nn.Module):
    """A parametrization that reads a weight as another one transposed (a tied decoder)."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.T
