"""Pooling family: MaxPool, AvgPool and adaptive pooling over 1 to 3 spatial dimensions.

Pooling works per channel, so like torch these accept a batched input ``[N, C, *spatial]``
or one without channels ``[N, *spatial]``. Inputs must be floating point: torch's CPU kernels
pool integers only for some of these layers, and pooling token ids is rarely meant. Output sizes follow torch (k kernel, s stride,
p padding, d dilation, e = d(k-1)+1 the window's span): ``(L + 2p - e) // s + 1``, or with
``ceil_mode`` rounded up, except that the last window must start inside the input or the
left padding. Padding may be at most half the kernel.

FLOPs count the window elements each output reads (kernel volume, or the exact adaptive
window sizes), one comparison or addition each; torch's flop counter counts none for pooling.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from dlstudio.core.catalogue._rules import as_tuple, floordiv, offset, shown
from dlstudio.core.spec import InferContext, LayerSpec, Param, layer, numel, register, torch_module
from dlstudio.core.tensor import Dim, TensorType, is_known

_AXES = {1: "[N, C, L]", 2: "[N, C, H, W]", 3: "[N, C, D, H, W]"}


def _window_params(n: int, dilation: bool) -> tuple[Param, ...]:
    ints = {"kind": "ints", "length": n, "min": 1}
    spacing = Param("dilation", default=1, help="Spacing between window elements.", **ints)
    return (
        Param("kernel_size", default=2, help="Size of the pooling window.", **ints),
        Param("stride", default=None, optional=True, **ints,
              help="Step between windows; empty means kernel_size."),
        Param("padding", "ints", default=0, length=n, min=0,
              help="Implicit padding on each side; at most half the kernel size."),
        *((spacing,) if dilation else ()),
    )


_CEIL = Param("ceil_mode", "bool", default=False,
              help="Round the output size up, so a partial window at the end still counts.")


def _spatial_input(ctx: InferContext, n: int) -> TensorType:
    x = ctx.input
    ctx.require_rank(x, (n + 1, n + 2))
    ctx.require_float(x)
    return x


def _pooled_size(ctx: InferContext, size: Dim, k: int, s: int, p: int, d: int) -> Dim:
    span = d * (k - 1) + 1
    if not ctx.params["ceil_mode"]:
        out = floordiv(offset(size, 2 * p - span + s), s)
    elif span - p < s:  # the last-window rule can bite: the count is windows starting before L + p
        out = floordiv(offset(size, p + s - 1), s)
    else:  # every rounded-up window starts inside: plain ceil division
        out = floordiv(offset(size, 2 * p - span + 2 * s - 1), s)
    if isinstance(out, int) and out < 1:
        ctx.fail(f"{ctx.where}: the window spans {span} but the padded input is only {size + 2 * p}",
                 "use a smaller kernel_size, more padding, ceil_mode or a larger input")
    return out


def _check_avg3d(ctx: InferContext, sizes: tuple[Dim, ...], kernel: tuple[int, ...]) -> None:
    """AvgPool3d alone needs the unpadded input to hold a whole kernel, and on CPU 32/64 bits."""
    if ctx.input.dtype in ("float16", "bfloat16"):
        ctx.warn(f"{ctx.where} gets {ctx.input.dtype}, which torch's AvgPool3d supports on GPU "
                 "but not on CPU", "train on a GPU, or use float32")
    if any(isinstance(size, int) and size < k for size, k in zip(sizes, kernel, strict=True)):
        ctx.fail(f"{ctx.where} needs every input size to be at least kernel_size="
                 f"{shown(ctx.params['kernel_size'])} (torch checks this before padding) but gets "
                 f"{list(sizes)}", "use a smaller kernel_size, or a larger input")


def _window(n: int, avg3d: bool = False) -> Callable[[InferContext], TensorType]:
    def infer(ctx: InferContext) -> TensorType:
        x = _spatial_input(ctx, n)
        p = ctx.params
        kernel, pad = as_tuple(p["kernel_size"], n), as_tuple(p["padding"], n)
        stride = kernel if p["stride"] is None else as_tuple(p["stride"], n)
        dilation = as_tuple(p.get("dilation", 1), n)
        if any(2 * q > k for q, k in zip(pad, kernel, strict=True)):
            ctx.fail(f"{ctx.where} has padding={shown(p['padding'])} but padding may be at most half "
                     f"of kernel_size={shown(p['kernel_size'])}",
                     f"set padding to at most {shown(tuple(k // 2 for k in kernel))}, or enlarge the kernel")
        if avg3d:
            _check_avg3d(ctx, x.shape[-n:], kernel)
        dims = zip(x.shape[-n:], kernel, stride, pad, dilation, strict=True)
        return x.with_shape((*x.shape[:-n], *(_pooled_size(ctx, *d) for d in dims)))

    return infer


def _window_flops(n: int) -> Callable[[InferContext], int | None]:
    def flops(ctx: InferContext) -> int | None:
        outputs = numel(ctx.output.shape)
        return None if outputs is None else outputs * math.prod(as_tuple(ctx.params["kernel_size"], n))

    return flops


def _adaptive(n: int) -> Callable[[InferContext], TensorType]:
    def infer(ctx: InferContext) -> TensorType:
        x = _spatial_input(ctx, n)
        wanted = as_tuple(ctx.params["output_size"], n)
        sizes = [size if out is None else out for size, out in zip(x.shape[-n:], wanted, strict=True)]
        return x.with_shape((*x.shape[:-n], *sizes))

    return infer


def adaptive_window_total(size: int, out: int) -> int:
    """Input elements read along one dimension: window i covers [floor(iL/o), ceil((i+1)L/o)).

    Summed over i that is ``L + o - gcd(L, o)``: the window ends overshoot the starts by one
    for every i whose (i+1)L/o is not whole.
    """
    return size + out - math.gcd(size, out)


def _adaptive_flops(n: int) -> Callable[[InferContext], int | None]:
    def flops(ctx: InferContext) -> int | None:
        x, y = ctx.input, ctx.output
        lead = numel(x.shape[:-n])
        if lead is None or not is_known(*x.shape[-n:]):
            return None
        pairs = zip(x.shape[-n:], y.shape[-n:], strict=True)
        reads = math.prod(adaptive_window_total(size, out) for size, out in pairs)  # type: ignore[arg-type]
        return lead * reads

    return flops


def _max(n: int) -> LayerSpec:
    return layer(
        type=f"MaxPool{n}d", family="Pooling",
        summary=f"Maximum over sliding windows on {_AXES[n]} (channels optional).",
        infer=_window(n), flops=_window_flops(n),
        module=torch_module(f"nn.MaxPool{n}d", positional=("kernel_size",)),
        params=(*_window_params(n, dilation=True), _CEIL),
    )


def _avg(n: int) -> LayerSpec:
    divisor = () if n == 1 else (
        Param("divisor_override", "int", default=None, optional=True, min=1,
              help="Divide every window sum by this instead of the window size."),
    )
    return layer(
        type=f"AvgPool{n}d", family="Pooling",
        summary=f"Average over sliding windows on {_AXES[n]} (channels optional).",
        infer=_window(n, avg3d=n == 3), flops=_window_flops(n),
        module=torch_module(f"nn.AvgPool{n}d", positional=("kernel_size",)),
        params=(
            *_window_params(n, dilation=False), _CEIL,
            Param("count_include_pad", "bool", default=True,
                  help="Count padded zeros in the average's divisor."),
            *divisor,
        ),
    )


def _adaptive_spec(kind: str, n: int) -> LayerSpec:
    keep = "; null keeps that input size" if n > 1 else ""
    return layer(
        type=f"Adaptive{kind}Pool{n}d", family="Pooling",
        summary=f"{'Average' if kind == 'Avg' else 'Maximum'} pooling to a fixed output size on {_AXES[n]}.",
        infer=_adaptive(n), flops=_adaptive_flops(n),
        module=torch_module(f"nn.Adaptive{kind}Pool{n}d", positional=("output_size",)),
        params=(
            Param("output_size", "ints", default=1, length=n, min=1, none_items=n > 1,
                  help=f"Output size per spatial dimension{keep}."),
        ),
    )


register(
    *(_max(n) for n in (1, 2, 3)),
    *(_avg(n) for n in (1, 2, 3)),
    *(_adaptive_spec(kind, n) for kind in ("Avg", "Max") for n in (1, 2)),
)
