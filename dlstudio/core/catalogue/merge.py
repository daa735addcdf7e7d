"""Merge family: layers that join or split tensors, and reductions over dimensions.

Add and Multiply take any number of inputs (``in0``, ``in1``, ...) and broadcast them the way
torch does; Split and Chunk have one output port per piece (``out0``, ``out1``, ...), as many
as their parameters say. All emit one line of plain torch in ``forward``.
"""

from __future__ import annotations

import math
from typing import Any

from dlstudio.core.catalogue._rules import as_tuple, axes, axis, broadcast, dim_sum, promote
from dlstudio.core.naming import literal
from dlstudio.core.spec import InferContext, LayerSpec, Param, layer, numel, register
from dlstudio.core.tensor import Dim, TensorType

_DIM = "Dimension index; the batch is dim 0, negative counts from the end."


def _inputs(ctx: InferContext) -> list[str]:
    return list(ctx.spec.input_ports(len(ctx.inputs)))


# --- element-wise Add and Multiply ---


def _elementwise(ctx: InferContext) -> TensorType:
    ports = _inputs(ctx)
    shape = broadcast(ctx, ports)
    return TensorType(shape, promote(*(ctx.inputs[p] for p in ports)))


def _elementwise_flops(ctx: InferContext) -> int | None:
    count = numel(ctx.output.shape)
    return None if count is None else count * (len(ctx.inputs) - 1)


def _scale(ctx: InferContext) -> TensorType:
    ctx.require_float(ctx.input)
    return ctx.input


def _operator(symbol: str) -> Any:
    def call(p: dict[str, Any], args: list[str], attr: str) -> str:
        return f" {symbol} ".join(args)

    return call


# --- Concat and Stack ---


def _concat(ctx: InferContext) -> TensorType:
    ports = _inputs(ctx)
    first = ctx.inputs[ports[0]]
    d = axis(ctx, ctx.params["dim"], first)
    for port in ports[1:]:
        other = ctx.inputs[port]
        if other.rank != first.rank:
            ctx.fail(f"{ctx.where} joins tensors of different ranks: {first} and {other}",
                     "give every input the same number of dimensions (Reshape, Unsqueeze)", port)
        for i, (a, b) in enumerate(zip(first.shape, other.shape, strict=True)):
            if i != d and a != b:
                ctx.fail(f"{ctx.where} joins along dim {d}, so the other sizes must match, but "
                         f"{first} and {other} differ at dim {i}",
                         f"make dim {i} equal, or join along dim {i}", port)
    size = dim_sum([ctx.inputs[p].shape[d] for p in ports])
    return TensorType((*first.shape[:d], size, *first.shape[d + 1:]), promote(*ctx.inputs.values()))


def _stack(ctx: InferContext) -> TensorType:
    ports = _inputs(ctx)
    first = ctx.inputs[ports[0]]
    d = axis(ctx, ctx.params["dim"], first, extra=1)
    for port in ports[1:]:
        if ctx.inputs[port].shape != first.shape:
            ctx.fail(f"{ctx.where} needs inputs of equal shape, but gets {first} and {ctx.inputs[port]}",
                     "make the shapes equal before stacking, or use Concat", port)
    shape = (*first.shape[:d], len(ports), *first.shape[d:])
    return TensorType(shape, promote(*ctx.inputs.values()))


def _join_call(function: str) -> Any:
    def call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
        return function, [f"[{', '.join(args)}]", f"dim={p['dim']}"]

    return call


# --- MatMul ---


def _matmul(ctx: InferContext) -> TensorType:
    a, b = ctx.inputs["input"], ctx.inputs["other"]
    for tensor, port in ((a, "input"), (b, "other")):
        if not tensor.is_float:
            ctx.fail(f"{ctx.where} needs floating-point inputs but '{port}' is {tensor.dtype}",
                     "feed it float tensors", port)
    if a.dtype != b.dtype:
        ctx.fail(f"{ctx.where} needs inputs of one dtype but gets {a.dtype} and {b.dtype}",
                 "make both inputs the same float type", "other")
    if a.rank == 0 or b.rank == 0:
        ctx.fail(f"{ctx.where} needs inputs with at least one dimension, gets {a} and {b}",
                 "use Multiply for scalars")
    left = a.shape if a.rank > 1 else (1, *a.shape)
    right = b.shape if b.rank > 1 else (*b.shape, 1)
    if left[-1] != right[-2]:
        ctx.fail(f"{ctx.where} cannot multiply {a} by {b}: the last size of input ({left[-1]}) "
                 f"must equal the {'only' if b.rank == 1 else 'second-to-last'} size of other "
                 f"({right[-2]})", "Transpose one input, or change its size", "other")
    batch = _batch_broadcast(ctx, left[:-2], right[:-2], a, b)
    rows = (left[-2],) if a.rank > 1 else ()
    columns = (right[-1],) if b.rank > 1 else ()
    return TensorType((*batch, *rows, *columns), a.dtype)


def _batch_broadcast(ctx: InferContext, x: tuple[Dim, ...], y: tuple[Dim, ...],
                     a: TensorType, b: TensorType) -> tuple[Dim, ...]:
    """Broadcast the leading (batch) dims of a matmul's operands, as torch.matmul does."""
    out: list[Dim] = []
    for i in range(1, max(len(x), len(y)) + 1):
        s = x[-i] if i <= len(x) else 1
        t = y[-i] if i <= len(y) else 1
        if s != t and 1 not in (s, t):
            ctx.fail(f"{ctx.where} cannot broadcast the leading dims of {a} and {b}: "
                     f"{s} and {t} differ", "make them equal, or 1 in one input", "other")
        out.insert(0, t if s == 1 else s)
    return tuple(out)


def _matmul_flops(ctx: InferContext) -> int | None:
    a = ctx.inputs["input"]
    inner = a.shape[-1]
    count = numel(ctx.output.shape) if ctx.output.rank else 1
    return None if count is None or not isinstance(inner, int) else count * inner


# --- Split, Chunk, SelectIndex ---


def _pieces(ctx: InferContext, sizes: tuple[int, ...], d: int) -> dict[str, TensorType]:
    x = ctx.input
    return {f"out{i}": x.with_shape((*x.shape[:d], s, *x.shape[d + 1:])) for i, s in enumerate(sizes)}


def _split(ctx: InferContext) -> dict[str, TensorType]:
    x, sections = ctx.input, ctx.params["split_size_or_sections"]
    d = axis(ctx, ctx.params["dim"], x)
    if len(sections) < 2:
        ctx.fail(f"{ctx.where} needs at least two sections, gets {list(sections)}",
                 "list the size of each piece, e.g. [16, 16]")
    if not isinstance(x.shape[d], int):
        ctx.fail(f"{ctx.where} cannot cut the variable size {x.shape[d]} of {x} into fixed sizes",
                 "split a dimension of fixed size")
    if sum(sections) != x.shape[d]:
        ctx.fail(f"{ctx.where} splits dim {d} of {x} into {list(sections)}, which add up to "
                 f"{sum(sections)}, not {x.shape[d]}", f"use sizes that add up to {x.shape[d]}")
    return _pieces(ctx, sections, d)


def _chunk(ctx: InferContext) -> dict[str, TensorType]:
    x, chunks = ctx.input, ctx.params["chunks"]
    d = axis(ctx, ctx.params["dim"], x)
    size = x.shape[d]
    if not isinstance(size, int):
        ctx.fail(f"{ctx.where} cannot cut the variable size {size} of {x} into fixed sizes",
                 "chunk a dimension of fixed size")
    step = math.ceil(size / chunks)
    count = math.ceil(size / step)
    if count != chunks:
        ctx.fail(f"{ctx.where} would give {count} pieces, not {chunks}: torch.chunk cuts dim {d} "
                 f"of size {size} into pieces of {step}",
                 f"use a size divisible by {chunks}, or Split with explicit sizes")
    return _pieces(ctx, (step,) * (count - 1) + (size - step * (count - 1),), d)


def _select(ctx: InferContext) -> TensorType:
    x, index = ctx.input, ctx.params["index"]
    d = axis(ctx, ctx.params["dim"], x)
    size = x.shape[d]
    if isinstance(size, int) and not -size <= index < size:
        ctx.fail(f"{ctx.where} picks index {index} of dim {d}, which has size {size} in {x}",
                 f"use an index between {-size} and {size - 1}")
    if not isinstance(size, int) and index not in (0, -1):
        ctx.fail(f"{ctx.where} picks index {index} of dim {d}, whose size {size} is only known "
                 "at run time", "use 0 (the first) or -1 (the last), which always exist")
    return x.with_shape(x.shape[:d] + x.shape[d + 1:])


def _select_call(p: dict[str, Any], args: list[str], attr: str) -> str:
    dim, index = p["dim"], str(p["index"])
    slots = [":"] * dim + [index] if dim >= 0 else ["...", index] + [":"] * (-dim - 1)
    return f"{args[0]}[{', '.join(slots)}]"


def _pieces_call(method: str, key: str) -> Any:
    def call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
        return f"{args[0]}.{method}", [literal(p[key]), f"dim={p['dim']}"]

    return call


# --- reductions ---


def _reduce(ctx: InferContext) -> TensorType:
    x, keep = ctx.input, ctx.params["keepdim"]
    dims = axes(ctx, ctx.params["dim"], x)
    if ctx.spec.type == "Mean" and not x.is_float:
        ctx.fail(f"{ctx.where} needs a floating-point input but gets {x.dtype}",
                 "use Sum, or feed it a float tensor")
    shape = [1 if i in dims else s for i, s in enumerate(x.shape) if keep or i not in dims]
    dtype = x.dtype if x.is_float else "int64"
    return TensorType(tuple(shape), dtype)


def _reduce_flops(ctx: InferContext) -> int | None:
    return numel(ctx.input.shape)


def _reduce_call(method: str) -> Any:
    def call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
        dims = as_tuple(p["dim"], 1)
        keep = ["keepdim=True"] if p["keepdim"] else []
        return f"{args[0]}.{method}", [literal(dims[0] if len(dims) == 1 else dims), *keep]

    return call


def _merge(type_name: str, summary: str, infer: Any, call: Any, *params: Param, **fields: Any) -> LayerSpec:
    fields.setdefault("flops", lambda ctx: 0)
    return layer(type=type_name, family="Merge", summary=summary, params=params, infer=infer,
                 call=call, **fields)


def _numbered(key: str) -> Any:
    def ports(p: dict[str, Any]) -> tuple[str, ...]:
        count = p[key] if isinstance(p[key], int) else len(p[key])
        return tuple(f"out{i}" for i in range(count))

    return ports


_JOIN_DIM = Param("dim", "int", default=1, min=-8, max=8, help="Dimension to join along. " + _DIM)
_PIECE_DIM = Param("dim", "int", default=1, min=-8, max=8, help="Dimension to cut. " + _DIM)
_REDUCE = (
    Param("dim", "ints", default=1, min=-8, max=8, help="A dim or a list of dims to reduce. " + _DIM),
    Param("keepdim", "bool", default=False, help="Keep reduced dims with size 1."),
)

register(
    _merge("Add", "Element-wise sum of two or more inputs (broadcast as torch does).",
           _elementwise, _operator("+"), variadic=2, flops=_elementwise_flops),
    _merge("Multiply", "Element-wise product of two or more inputs (broadcast as torch does).",
           _elementwise, _operator("*"), variadic=2, flops=_elementwise_flops),
    _merge("Scale", "Multiplies by a constant: x * factor (attention's 1/sqrt(d), a residual's weight).",
           _scale, lambda p, args, attr: f"{args[0]} * {literal(p['factor'])}",
           Param("factor", "float", default=1.0, min=-1e6, max=1e6, help="The constant to multiply by."),
           flops=lambda ctx: numel(ctx.input.shape)),
    _merge("Concat", "Joins inputs along an existing dim: dim=1 joins channels or features.",
           _concat, _join_call("torch.cat"), _JOIN_DIM, variadic=2),
    _merge("Stack", "Joins equal-shaped inputs along a new dim.",
           _stack, _join_call("torch.stack"),
           Param("dim", "int", default=1, min=-9, max=8, help="Position of the new dim. " + _DIM),
           variadic=2),
    _merge("MatMul", "Matrix product input @ other, batched and broadcast as torch.matmul.",
           _matmul, _operator("@"), inputs=("input", "other"), flops=_matmul_flops),
    _merge("Split", "Cuts a dim into pieces of the given sizes, one output each.",
           _split, _pieces_call("split", "split_size_or_sections"),
           Param("split_size_or_sections", "ints", default=(1, 1), min=1, scalar_ok=False,
                 help="Size of each piece along dim, e.g. [16, 16]; one output per piece."),
           _PIECE_DIM, outputs=("out0", "out1"), output_rule=_numbered("split_size_or_sections")),
    _merge("Chunk", "Cuts a dim into equal pieces, one output each.",
           _chunk, _pieces_call("chunk", "chunks"),
           Param("chunks", "int", default=2, min=2, max=16, help="Number of pieces (and outputs)."),
           _PIECE_DIM, outputs=("out0", "out1"), output_rule=_numbered("chunks")),
    _merge("SelectIndex", "Picks one index of a dim and drops it: dim=1, index=-1 is the last step.",
           _select, _select_call,
           Param("dim", "int", default=1, min=-8, max=8, help="Dimension to pick from. " + _DIM),
           Param("index", "int", default=-1, min=-(2**31), help="Index along dim; -1 is the last.")),
    _merge("Mean", "Average over the given dims.", _reduce, _reduce_call("mean"), *_REDUCE,
           flops=_reduce_flops),
    _merge("Sum", "Sum over the given dims.", _reduce, _reduce_call("sum"), *_REDUCE,
           flops=_reduce_flops),
)
