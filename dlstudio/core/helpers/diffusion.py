"""Diffusion family helpers: TimestepEmbedding, the sinusoidal embedding of a noise level.

torch, nn, F and math come through :mod:`dlstudio.core.modules`, the one module that imports
torch for the helpers, so the names match those of an exported file.
"""

from __future__ import annotations

from dlstudio.core.modules import math, nn, support, torch


@support
class TimestepEmbedding(nn.Module):
    """Timesteps [batch] (ints or floats) as [batch, embedding_dim] sines and cosines.

    The transformer's and DDPM's formula: for i < half = embedding_dim // 2, frequency
    f_i = max_period ** (-i / half); the output is [sin(t f_0), ..., cos(t f_0), ...],
    with a zero column after them when embedding_dim is odd. It has no weights.
    """

    def __init__(self, embedding_dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        half = embedding_dim // 2
        steps = torch.arange(half, dtype=torch.float32) / half
        frequency = torch.exp(-math.log(max_period) * steps)
        self.register_buffer("frequency", frequency, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t.float()[:, None] * self.frequency[None, :]
        embedding = torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
        if self.embedding_dim % 2:
            embedding = nn.functional.pad(embedding, (0, 1))
        return embedding
