"""State space family: MambaBlock, a Mamba-style selective state-space block.

The layer is the helper class ``MambaBlock`` (dlstudio/core/helpers/ssm.py). Its parameters
carry the reference ``mamba_ssm.Mamba`` names (d_model, d_state, d_conv, expand, dt_rank,
bias, conv_bias) and so do its weights. It maps [N, T, d_model] to the same shape, causally:
the output at step t depends on the input up to t only. Like ``Mamba`` it holds no residual
and no norm; stack blocks as x + MambaBlock(LayerNorm(x)).
"""

from __future__ import annotations

import math
from typing import Any

from dlstudio.core.spec import InferContext, Param, layer, register, torch_module
from dlstudio.core.tensor import TensorType


def dt_rank(p: dict[str, Any]) -> int:
    """Rank of the step-size projection: dt_rank, or ceil(d_model / 16) when unset."""
    return p["dt_rank"] or math.ceil(p["d_model"] / 16)


def _mamba(ctx: InferContext) -> TensorType:
    x = ctx.input
    if x.rank != 3:
        ctx.fail(
            f"{ctx.where} expects a 3-D sequence [N, T, d_model] but gets {x.rank}-D {x} "
            f"from '{ctx.source_of()}'",
            "feed it token vectors from an Embedding, or Unsqueeze/Reshape the input to "
            "[N, T, features]",
        )
    ctx.require_float(x)
    ctx.infer_param("d_model", x.shape[-1], "feature size (last dimension)")
    return x


def _mamba_params(ctx: InferContext) -> int:
    """in_proj, depthwise conv1d, x_proj, dt_proj, A_log, D and out_proj."""
    p = ctx.params
    d_model, d_state, rank = p["d_model"], p["d_state"], dt_rank(p)
    d_inner = p["expand"] * d_model
    in_proj = d_model * 2 * d_inner + (2 * d_inner if p["bias"] else 0)
    conv = d_inner * p["d_conv"] + (d_inner if p["conv_bias"] else 0)
    x_proj = d_inner * (rank + 2 * d_state)
    dt_proj = rank * d_inner + d_inner
    out_proj = d_inner * d_model + (d_model if p["bias"] else 0)
    a_log, d = d_inner * d_state, d_inner
    return in_proj + conv + x_proj + dt_proj + a_log + d + out_proj


def scan_products(p: dict[str, Any]) -> int:
    """Per step, the element-wise products of the scan: dt A, exp(dt A) h, (dt x) B for each
    state and dt x, D x and the gate for each channel (C h, a matrix product, not counted)."""
    return p["expand"] * p["d_model"] * (3 * p["d_state"] + 3)


def _mamba_flops(ctx: InferContext) -> int | None:
    """Multiply-adds of one sequence: projections, causal conv, C h and the scan's products."""
    steps = ctx.input.shape[1]
    if not isinstance(steps, int):
        return None
    p = ctx.params
    d_model, d_state = p["d_model"], p["d_state"]
    d_inner = p["expand"] * d_model
    matrices = (
        3 * d_model * d_inner
        + d_inner * p["d_conv"]
        + d_inner * (dt_rank(p) + 2 * d_state)
        + dt_rank(p) * d_inner
        + d_inner * d_state
    )
    return steps * (matrices + scan_products(p))


register(
    layer(
        type="MambaBlock",
        family="State space",
        summary="Mamba selective state space: gated, causal, input-dependent linear recurrence.",
        infer=_mamba,
        count_params=_mamba_params,
        flops=_mamba_flops,
        module=torch_module("MambaBlock", positional=("d_model",)),
        support=("MambaBlock",),
        imports=frozenset({"F", "math"}),
        params=(
            Param(
                "d_model",
                "int",
                min=1,
                inferred=True,
                help="Features per time step (the input's last dimension), kept by the output.",
            ),
            Param(
                "d_state",
                "int",
                default=16,
                min=1,
                max=1024,
                help="States per channel (N): how much each channel remembers.",
            ),
            Param(
                "d_conv",
                "int",
                default=4,
                min=1,
                max=64,
                help="Width of the causal depthwise convolution before the scan.",
            ),
            Param(
                "expand",
                "int",
                default=2,
                min=1,
                max=16,
                help="Inner channels as a multiple of d_model (d_inner = expand * d_model).",
            ),
            Param(
                "dt_rank",
                "int",
                optional=True,
                min=1,
                help="Rank of the step-size (dt) projection; empty means ceil(d_model / 16).",
            ),
            Param("bias", "bool", default=False, help="Biases in the in and out projections."),
            Param("conv_bias", "bool", default=True, help="Bias in the depthwise convolution."),
        ),
    ),
)
