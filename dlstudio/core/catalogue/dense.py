"""Dense family: Linear and Bilinear."""

from __future__ import annotations

from typing import Any

from dlstudio.core.spec import InferContext, Param, layer, numel, register, torch_module

_BIAS = Param("bias", "bool", default=True, help="Learn an additive bias.")


def _linear(ctx: InferContext) -> object:
    x = ctx.input
    ctx.require_rank(x, range(2, 9))
    ctx.require_float(x)
    ctx.infer_param("in_features", x.shape[-1], "last dimension")
    return x.with_shape((*x.shape[:-1], ctx.params["out_features"]))


def _linear_weights(params: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    shapes = {"weight": (params["out_features"], params["in_features"])}
    return {**shapes, "bias": (params["out_features"],)} if params["bias"] else shapes


def _linear_params(ctx: InferContext) -> int:
    p = ctx.params
    return p["in_features"] * p["out_features"] + (p["out_features"] if p["bias"] else 0)


def _linear_flops(ctx: InferContext) -> int | None:
    rows = numel(ctx.input.shape[:-1] + (1,))
    return None if rows is None else rows * ctx.params["in_features"] * ctx.params["out_features"]


def _bilinear(ctx: InferContext) -> object:
    a, b = ctx.inputs["input1"], ctx.inputs["input2"]
    for port, tensor, name in (("input1", a, "in1_features"), ("input2", b, "in2_features")):
        ctx.require_float(tensor)
        ctx.infer_param(name, tensor.shape[-1], f"last dimension of {port}", port)
    if a.shape[:-1] != b.shape[:-1]:
        ctx.fail(f"{ctx.where} needs inputs with equal leading dimensions, got {a} and {b}",
                 "reshape one input to match the other")
    return a.with_shape((*a.shape[:-1], ctx.params["out_features"]))


def _bilinear_params(ctx: InferContext) -> int:
    p = ctx.params
    return p["in1_features"] * p["in2_features"] * p["out_features"] + (p["out_features"] if p["bias"] else 0)


def _bilinear_flops(ctx: InferContext) -> int | None:
    rows = numel(ctx.inputs["input1"].shape[:-1] + (1,))
    p = ctx.params
    return None if rows is None else rows * p["in1_features"] * p["in2_features"] * p["out_features"]


register(
    layer(
        type="Linear", family="Dense", summary="Fully connected layer: y = x W^T + b on the last dimension.",
        infer=_linear, count_params=_linear_params, flops=_linear_flops, weights=_linear_weights,
        module=torch_module("nn.Linear", positional=("in_features", "out_features")),
        params=(
            Param("in_features", "int", min=1, inferred=True, help="Size of the input's last dimension."),
            Param("out_features", "int", default=64, min=1, help="Size of the output's last dimension."),
            _BIAS,
        ),
    ),
    layer(
        type="Bilinear", family="Dense", summary="Bilinear form of two inputs: y = x1^T A x2 + b.",
        inputs=("input1", "input2"),
        infer=_bilinear, count_params=_bilinear_params, flops=_bilinear_flops,
        module=torch_module("nn.Bilinear", positional=("in1_features", "in2_features", "out_features")),
        params=(
            Param("in1_features", "int", min=1, inferred=True, help="Last dimension of input1."),
            Param("in2_features", "int", min=1, inferred=True, help="Last dimension of input2."),
            Param("out_features", "int", default=64, min=1, help="Size of the output's last dimension."),
            _BIAS,
        ),
    ),
)
