"""Adapters family: LoRALinear, a frozen Linear with a trainable low-rank update (LoRA).

The frozen weight and bias are buffers, not parameters (see
:class:`dlstudio.core.helpers.lora.LoRALinear`), so the parameter count, and with it the
``params`` and ``trainable_params`` of a summary, is what an optimizer trains: A and B.
"""

from __future__ import annotations

from dlstudio.core.spec import InferContext, Param, layer, numel, register, torch_module
from dlstudio.core.tensor import TensorType


def _lora(ctx: InferContext) -> TensorType:
    x = ctx.input
    ctx.require_rank(x, range(2, 9))
    ctx.require_float(x)
    p = ctx.params
    in_features = ctx.infer_param("in_features", x.shape[-1], "last dimension")
    smaller = min(in_features, p["out_features"])
    if p["r"] > smaller:
        ctx.warn(
            f"{ctx.where} has rank r={p['r']} over min(in_features, out_features)={smaller}, "
            f"so its update has more parameters than it can use",
            f"set r to at most {smaller}",
        )
    return x.with_shape((*x.shape[:-1], p["out_features"]))


def _lora_params(ctx: InferContext) -> int:
    """Only A [r, in] and B [out, r]: W and b are frozen buffers."""
    p = ctx.params
    return p["r"] * (p["in_features"] + p["out_features"])


def _lora_flops(ctx: InferContext) -> int | None:
    """The frozen product plus the two low-rank ones, per row of the input."""
    rows = numel(ctx.input.shape[:-1] + (1,))
    p = ctx.params
    macs = p["in_features"] * p["out_features"] + p["r"] * (p["in_features"] + p["out_features"])
    return None if rows is None else rows * macs


register(
    layer(
        type="LoRALinear",
        family="Adapters",
        summary="Frozen Linear x W^T + b plus a trainable rank-r update (alpha / r) x A^T B^T.",
        infer=_lora,
        count_params=_lora_params,
        flops=_lora_flops,
        module=torch_module("LoRALinear", positional=("in_features", "out_features")),
        support=("LoRALinear",),
        imports=frozenset({"F", "math"}),
        params=(
            Param(
                "in_features",
                "int",
                min=1,
                inferred=True,
                help="Size of the input's last dimension.",
            ),
            Param(
                "out_features",
                "int",
                default=64,
                min=1,
                help="Size of the output's last dimension.",
            ),
            Param("bias", "bool", default=True, help="Hold a (frozen) additive bias."),
            Param("r", "int", default=8, min=1, help="Rank of the trainable update B A."),
            Param(
                "lora_alpha",
                "float",
                default=16.0,
                min=0,
                help="Scale of the update: it is multiplied by lora_alpha / r.",
            ),
            Param(
                "lora_dropout",
                "float",
                default=0.0,
                min=0,
                max=1,
                help="Dropout on the input of the update (the frozen path sees it whole).",
            ),
        ),
    ),
)
