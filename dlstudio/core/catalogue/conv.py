"""Convolution family: Conv1d/2d/3d and ConvTranspose1d/2d/3d.

Output sizes follow torch's formulas per spatial dimension (k kernel, s stride, p padding,
d dilation, op output_padding):

* Conv: ``(L + 2p - d(k-1) - 1) // s + 1``; ``padding='same'`` keeps L, ``'valid'`` is p=0.
* ConvTranspose: ``(L-1)s - 2p + d(k-1) + op + 1``.

FLOPs are the weight's multiply-adds for one sample, bias excluded, as torch's flop counter
counts them (it reports 2 x MACs): every output position (every input position for a
transposed convolution) times ``prod(kernel) * in_channels * out_channels / groups``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dlstudio.core.catalogue._rules import as_tuple, floordiv, offset, scale, shown
from dlstudio.core.spec import InferContext, LayerSpec, Param, layer, register, torch_module
from dlstudio.core.tensor import Dim, TensorType, is_known

_MODES = ("zeros", "reflect", "replicate", "circular")
_AXES = {1: "[N, C, L]", 2: "[N, C, H, W]", 3: "[N, C, D, H, W]"}


def _params(n: int, transposed: bool) -> tuple[Param, ...]:
    ints = {"kind": "ints", "length": n}
    padding = (
        Param("padding", default=0, min=0, help="Zeros removed from each side of the output.", **ints)
        if transposed else
        Param("padding", default=0, min=0, choices=("same", "valid"), **ints,
              help="Padding on each side: a number per dimension, 'same' (output size = input "
                   "size, stride 1 only) or 'valid' (no padding).")
    )
    extra = (
        (Param("output_padding", default=0, min=0, **ints,
               help="Extra size added to one side of the output; smaller than stride or dilation."),)
        if transposed else ()
    )
    mode = () if transposed else (
        Param("padding_mode", "choice", default="zeros", choices=_MODES,
              help="How the border is padded: zeros, reflect, replicate or circular."),
    )
    return (
        Param("in_channels", "int", min=1, inferred=True, help="Channels of the input (dim 1)."),
        Param("out_channels", "int", default=16, min=1, help="Channels of the output."),
        Param("kernel_size", default=3, min=1, help="Size of the sliding window.", **ints),
        Param("stride", default=1, min=1, help="Step between windows.", **ints),
        padding,
        *extra,
        Param("dilation", default=1, min=1, help="Spacing between kernel elements.", **ints),
        Param("groups", "int", default=1, min=1,
              help="Split channels into groups convolved separately; divides both channel counts."),
        Param("bias", "bool", default=True, help="Learn an additive bias per output channel."),
        *mode,
    )


def _channels(ctx: InferContext, n: int) -> None:
    x = ctx.input
    ctx.require_rank(x, (n + 2,))
    ctx.require_float(x)
    ctx.infer_param("in_channels", x.shape[1], "channel count")
    groups, c_in, c_out = ctx.params["groups"], ctx.params["in_channels"], ctx.params["out_channels"]
    if c_in % groups or c_out % groups:
        common = math.gcd(c_in, c_out)
        options = [g for g in range(1, common + 1) if common % g == 0]
        ctx.fail(f"{ctx.where} has groups={groups}, which must divide both in_channels ({c_in}) "
                 f"and out_channels ({c_out})",
                 "set groups to one of " + ", ".join(map(str, options[:12])))


def _conv_pads(ctx: InferContext, n: int) -> tuple[tuple[int, int], ...]:
    """Left and right padding per spatial dimension, as torch applies them."""
    p = ctx.params
    kernel, stride, dilation = (as_tuple(p[k], n) for k in ("kernel_size", "stride", "dilation"))
    if p["padding"] == "same":
        if any(s != 1 for s in stride):
            pads = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
            ctx.fail(f"{ctx.where} cannot use padding='same' with stride={shown(p['stride'])}: "
                     "torch supports it only for stride 1",
                     f"set stride to 1, or set padding to numbers such as {shown(pads)}")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return tuple((t // 2, t - t // 2) for t in totals)
    pad = (0,) * n if p["padding"] == "valid" else as_tuple(p["padding"], n)
    return tuple((q, q) for q in pad)


def _check_border(ctx: InferContext, size: int, left: int, right: int) -> None:
    mode = ctx.params["padding_mode"]
    widest = max(left, right)
    if mode == "reflect" and widest >= size:
        ctx.fail(f"{ctx.where} pads {widest} with padding_mode='reflect' but the input size is "
                 f"only {size}; reflect padding must be smaller than the input",
                 "use less padding, padding_mode='replicate' or 'zeros', or a larger input")
    if mode == "circular" and widest > size:
        ctx.fail(f"{ctx.where} pads {widest} with padding_mode='circular' but the input size is "
                 f"only {size}; circular padding cannot wrap around more than once",
                 "use less padding, padding_mode='replicate' or 'zeros', or a larger input")


def _conv_size(ctx: InferContext, size: Dim, kernel: int, stride: int, dilation: int,
               pads: tuple[int, int]) -> Dim:
    span = dilation * (kernel - 1) + 1
    if isinstance(size, int):
        if ctx.params["padding_mode"] != "zeros":
            _check_border(ctx, size, *pads)
        if size + sum(pads) < span:
            ctx.fail(f"{ctx.where}: the kernel spans {span} (kernel_size {kernel}, dilation "
                     f"{dilation}) but the padded input is only {size + sum(pads)}",
                     "use a smaller kernel or dilation, more padding, or a larger input")
    if ctx.params["padding"] == "same":
        return size
    return floordiv(offset(size, sum(pads) - span + stride), stride)


def _conv(n: int) -> Callable[[InferContext], TensorType]:
    def infer(ctx: InferContext) -> TensorType:
        _channels(ctx, n)
        p = ctx.params
        kernel, stride, dilation = (as_tuple(p[k], n) for k in ("kernel_size", "stride", "dilation"))
        pads = _conv_pads(ctx, n)
        x = ctx.input
        dims = zip(x.shape[2:], kernel, stride, dilation, pads, strict=True)
        return x.with_shape((x.shape[0], p["out_channels"], *(_conv_size(ctx, *d) for d in dims)))

    return infer


def _transposed(n: int) -> Callable[[InferContext], TensorType]:
    def infer(ctx: InferContext) -> TensorType:
        _channels(ctx, n)
        p = ctx.params
        names = ("kernel_size", "stride", "padding", "output_padding", "dilation")
        kernel, stride, pad, extra, dilation = (as_tuple(p[k], n) for k in names)
        if any(op >= s and op >= d for op, s, d in zip(extra, stride, dilation, strict=True)):
            ctx.fail(f"{ctx.where} has output_padding={shown(p['output_padding'])}, which must be "
                     f"smaller than stride={shown(p['stride'])} or dilation={shown(p['dilation'])} "
                     "in each dimension",
                     "lower output_padding, or raise stride")
        sizes = []
        dims = zip(ctx.input.shape[2:], kernel, stride, pad, extra, dilation, strict=True)
        for size, k, s, q, op, d in dims:
            out = offset(scale(size, s), d * (k - 1) + op + 1 - s - 2 * q)
            if isinstance(out, int) and out < 1:
                ctx.fail(f"{ctx.where} would output size {out} from input size {size}: padding "
                         f"{q} removes more than the kernel adds",
                         "use less padding, a larger kernel or stride, or a larger input")
            sizes.append(out)
        return ctx.input.with_shape((ctx.input.shape[0], p["out_channels"], *sizes))

    return infer


def _weights(ctx: InferContext, n: int) -> int:
    """Weight elements: one kernel per (input channel of a group, output channel) pair."""
    p = ctx.params
    return p["in_channels"] * p["out_channels"] // p["groups"] * math.prod(as_tuple(p["kernel_size"], n))


def _count(n: int) -> Callable[[InferContext], int]:
    def count(ctx: InferContext) -> int:
        return _weights(ctx, n) + (ctx.params["out_channels"] if ctx.params["bias"] else 0)

    return count


def _shapes(n: int, transposed: bool) -> Callable[[dict[str, Any]], dict[str, tuple[int, ...]]]:
    """The parameters' shapes as torch lays them out (a transposed one: in, out / groups, *k)."""
    def shapes(p: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        c_in, c_out, groups = p["in_channels"], p["out_channels"], p["groups"]
        pair = (c_in, c_out // groups) if transposed else (c_out, c_in // groups)
        found = {"weight": (*pair, *as_tuple(p["kernel_size"], n))}
        return {**found, "bias": (c_out,)} if p["bias"] else found

    return shapes


def _flops(n: int, transposed: bool) -> Callable[[InferContext], int | None]:
    def flops(ctx: InferContext) -> int | None:
        positions = (ctx.input if transposed else ctx.output).shape[2:]
        if not is_known(*positions):
            return None
        return math.prod(positions) * _weights(ctx, n)  # type: ignore[arg-type]

    return flops


def _spec(n: int, transposed: bool) -> LayerSpec:
    name = f"{'ConvTranspose' if transposed else 'Conv'}{n}d"
    what = ("Transposed convolution (learned upsampling)" if transposed else "Convolution")
    return layer(
        type=name, family="Convolution",
        summary=f"{what} over {n} spatial dimension{'s' if n > 1 else ''}: input {_AXES[n]}.",
        infer=_transposed(n) if transposed else _conv(n),
        count_params=_count(n), flops=_flops(n, transposed), weights=_shapes(n, transposed),
        module=torch_module(f"nn.{name}", positional=("in_channels", "out_channels", "kernel_size")),
        params=_params(n, transposed),
    )


register(*(_spec(n, transposed) for transposed in (False, True) for n in (1, 2, 3)))
