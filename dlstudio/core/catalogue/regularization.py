"""Regularization family: Dropout, channel-wise Dropout1d/2d/3d and AlphaDropout.

All keep their input's shape and cost nothing at inference (FLOPs 0, like torch's counter).
Training draws a random mask, which needs a float input (and Dropout2d a 2-D one), except
at p=0 and p=1, where torch passes the input through or zeroes it without a mask.
The channel-wise variants follow torch's handling of ranks: a rank torch refuses is an
error; a rank torch accepts with a warning (or reads as one unbatched sample, so that whole
samples of the batch are dropped together) is a warning here.
"""

from __future__ import annotations

from collections.abc import Callable

from dlstudio.core.spec import InferContext, LayerSpec, Param, layer, register, torch_module
from dlstudio.core.tensor import TensorType

_P = Param("p", "float", default=0.5, min=0, max=1, help="Probability of zeroing an element (or channel).")
_INPLACE = Param("inplace", "bool", default=False, help="Overwrite the input to save memory.")


def _random(ctx: InferContext) -> bool:
    """Whether training draws a mask: at p=0 and p=1 torch takes a shortcut that needs none."""
    return 0 < ctx.params["p"] < 1


def _float(ctx: InferContext) -> TensorType:
    if _random(ctx):
        ctx.require_float(ctx.input)
    return ctx.input


def _dropout1d(ctx: InferContext) -> TensorType:
    x = _float(ctx)
    ctx.require_rank(x, (2, 3))
    if x.rank == 2:
        ctx.warn(f"{ctx.where} reads the 2-D input {x} as one unbatched [C, L] sample, so it "
                 "zeroes whole samples of the batch",
                 "feed it [N, C, L], or use Dropout to zero single elements")
    return x


def _deprecated(ctx: InferContext, name: str, rank: int) -> None:
    ctx.warn(f"{ctx.where} gets a {ctx.input.rank}-D input; torch deprecates {name} on anything "
             f"but {rank - 1}-D or {rank}-D inputs and will refuse it in a future release",
             f"use Dropout, or feed {name} a {rank}-D input")


def _dropout2d(ctx: InferContext) -> TensorType:
    x = _float(ctx)
    if x.rank == 1 and _random(ctx):
        ctx.fail(f"{ctx.where} needs at least a 2-D input but gets {x} from '{ctx.source_of()}' "
                 "(torch refuses it when training)", "use Dropout instead")
    if x.rank == 3:
        ctx.warn(f"{ctx.where} gets the 3-D input {x}; torch treats it as [N, C, L] and drops "
                 "whole channels, and warns that it will read it as one unbatched [C, H, W] "
                 "sample in a future release", "use Dropout1d for [N, C, L] inputs")
    elif x.rank != 4:
        _deprecated(ctx, "Dropout2d", 4)
    return x


def _dropout3d(ctx: InferContext) -> TensorType:
    x = _float(ctx)
    if x.rank == 4:
        ctx.warn(f"{ctx.where} reads the 4-D input {x} as one unbatched [C, D, H, W] sample, so "
                 "it zeroes whole samples of the batch",
                 "feed it [N, C, D, H, W], or use Dropout2d for [N, C, H, W] inputs")
    elif x.rank != 5:
        _deprecated(ctx, "Dropout3d", 5)
    return x


def _dropout(type_name: str, summary: str, infer: Callable[[InferContext], TensorType] = _float) -> LayerSpec:
    return layer(
        type=type_name, family="Regularization", summary=summary, infer=infer,
        params=(_P, _INPLACE), module=torch_module(f"nn.{type_name}"),
    )


register(
    _dropout("Dropout", "Zeroes random elements with probability p while training; "
                        "scales the rest by 1/(1-p)."),
    _dropout("Dropout1d", "Zeroes whole channels of [N, C, L] while training.", _dropout1d),
    _dropout("Dropout2d", "Zeroes whole channels of [N, C, H, W] while training.", _dropout2d),
    _dropout("Dropout3d", "Zeroes whole channels of [N, C, D, H, W] while training.", _dropout3d),
    _dropout("AlphaDropout", "Dropout that keeps zero mean and unit variance, for SELU networks."),
)
