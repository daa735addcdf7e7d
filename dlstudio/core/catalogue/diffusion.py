"""Diffusion family: TimestepEmbedding, a noise level [N] as sinusoidal features [N, dim].

A diffusion network reads the image and its timestep; the timestep Input (shape [], one number
per sample) goes through this layer and, usually, a Linear, to be added to the feature maps.
"""

from __future__ import annotations

from dlstudio.core.spec import InferContext, Param, layer, register, torch_module
from dlstudio.core.tensor import TensorType


def _timestep_embedding(ctx: InferContext) -> TensorType:
    t = ctx.input
    ctx.require_rank(t, (1,), "timestep input, one number per sample,")
    if t.dtype == "bool":
        ctx.fail(f"{ctx.where} needs timesteps as numbers but gets bool", "use an int64 or float32 Input")
    return TensorType((t.shape[0], ctx.params["embedding_dim"]), "float32")


register(
    layer(
        type="TimestepEmbedding", family="Diffusion",
        summary="Timesteps [N] (int or float) as [N, embedding_dim] sines and cosines (DDPM, transformer).",
        infer=_timestep_embedding,
        flops=lambda ctx: None,
        module=torch_module("TimestepEmbedding", positional=("embedding_dim",)),
        support=("TimestepEmbedding",), imports=frozenset({"math"}),
        params=(
            Param("embedding_dim", "int", default=64, min=1, max=1_000_000, help="Features per timestep."),
            Param("max_period", "float", default=10000.0, min=1,
                  help="Longest wave's period: frequencies run from 1 down to 1 / max_period."),
        ),
    ),
)
