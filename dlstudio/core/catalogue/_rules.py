"""Shared helpers for shape rules: per-dimension parameters and symbolic size arithmetic.

The arithmetic helpers compute with ints and, for a symbolic size, write an expression that
:func:`dlstudio.core.tensor.resolve_dim` evaluates (``+``, ``-``, ``*``, ``//``, brackets).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from dlstudio.core.spec import InferContext
from dlstudio.core.tensor import INT_DTYPES, Dim, TensorType


def as_tuple(value: Any, n: int) -> tuple[Any, ...]:
    """An int-or-tuple parameter as a tuple of ``n`` items: ``3 -> (3, 3)`` for n=2."""
    return tuple(value) if isinstance(value, tuple | list) else (value,) * n


def shown(value: Any) -> str:
    """A per-dimension value the way a user writes it: ``3`` for ``3`` or ``(3, 3)``, else ``[3, 5]``."""
    if isinstance(value, tuple | list):
        return str(value[0]) if len(set(value)) == 1 else str(list(value))
    return str(value)


def _wrap(dim: str) -> str:
    return f"({dim})" if "+" in dim or "-" in dim else dim


def offset(dim: Dim, n: int) -> Dim:
    """``dim + n``."""
    if isinstance(dim, int):
        return dim + n
    if n == 0:
        return dim
    return f"{dim} + {n}" if n > 0 else f"{dim} - {-n}"


def scale(dim: Dim, n: int) -> Dim:
    """``dim * n``."""
    if isinstance(dim, int):
        return dim * n
    return dim if n == 1 else f"{_wrap(dim)}*{n}"


def floordiv(dim: Dim, n: int) -> Dim:
    """``dim // n`` (floor division, as torch's output-size formulas use)."""
    if isinstance(dim, int):
        return dim // n
    return dim if n == 1 else f"{_wrap(dim)}//{n}"


# --- dimensions, broadcasting and dtype promotion (shape, merge, sequence, attention) ---


def axis(ctx: InferContext, dim: int, tensor: TensorType, name: str = "dim", extra: int = 0) -> int:
    """``dim`` as an index from 0, counting from the end when negative, as torch does.

    ``extra`` widens the range for a dim that inserts one (Unsqueeze, Stack: ``extra=1``).
    """
    rank = tensor.rank + extra
    if not -rank <= dim < rank:
        ctx.fail(f"{ctx.where} has {name}={dim} but its input {tensor} has {tensor.rank} "
                 "dimensions (the batch is dim 0)", f"use a {name} between {-rank} and {rank - 1}")
    return dim % rank


def axes(ctx: InferContext, dims: Any, tensor: TensorType, name: str = "dim") -> tuple[int, ...]:
    """An int-or-list ``dims`` parameter as distinct indices from 0 (torch refuses repeats)."""
    found = tuple(axis(ctx, d, tensor, name) for d in as_tuple(dims, 1))
    if not found:
        ctx.fail(f"{ctx.where} needs at least one {name}", f"set {name}, e.g. 1")
    repeated = sorted({d for d in found if found.count(d) > 1})
    if repeated:
        ctx.fail(f"{ctx.where} names dim {repeated[0]} twice in {name}={shown(as_tuple(dims, 1))}",
                 "list each dimension once")
    return found


def dim_sum(dims: Sequence[Dim]) -> Dim:
    """Sum of dims; symbolic terms are kept (``T + S + 4``, ``T*2``)."""
    known = sum(d for d in dims if isinstance(d, int))
    counts: dict[str, int] = {}
    for d in dims:
        if isinstance(d, str):
            counts[d] = counts.get(d, 0) + 1
    if not counts:
        return known
    terms = " + ".join(scale(d, n) if n > 1 else d for d, n in counts.items())
    return offset(terms, known)


def exact_div(dim: Dim, n: int) -> Dim | None:
    """``dim / n`` where n surely divides dim: ``12 -> 3``, ``"16*T" -> "4*T"``; else None.

    A symbolic size counts as divisible only through a factor it is written with, since its
    value is unknown until run time (``"T"`` by 4 gives None).
    """
    if isinstance(dim, int):
        return dim // n if dim % n == 0 else None
    if n == 1:
        return dim
    match = re.fullmatch(r"(\d+)\*([A-Za-z_]\w*(?:\*[A-Za-z_]\w*)*)", dim)
    if match and int(match.group(1)) % n == 0:
        factor = int(match.group(1)) // n
        return match.group(2) if factor == 1 else f"{factor}*{match.group(2)}"
    return None


def broadcast(ctx: InferContext, ports: Sequence[str]) -> tuple[Dim, ...]:
    """The shape torch broadcasting gives the inputs on ``ports``, or fail naming both shapes.

    Sizes line up from the right; each pair must be equal or one of them 1. A symbolic size
    only matches itself or 1 (its value is unknown until run time).
    """
    rank = max(ctx.inputs[p].rank for p in ports)
    shape: list[Dim] = []
    for i in range(1, rank + 1):
        size: Dim = 1
        first = ports[0]
        for port in ports:
            tensor = ctx.inputs[port]
            if tensor.rank < i or tensor.shape[-i] == 1:
                continue
            if size != 1 and tensor.shape[-i] != size:
                ctx.fail(f"{ctx.where} cannot broadcast {ctx.inputs[first]} with {tensor}: sizes "
                         f"{size} and {tensor.shape[-i]} differ at dim {-i}",
                         "make the sizes equal, or 1 in one input (Reshape, Unsqueeze)", port)
            if size == 1:
                size, first = tensor.shape[-i], port
        shape.insert(0, size)
    return tuple(shape)


_FLOAT_JOIN = {frozenset({"float16", "bfloat16"}): "float32"}
_DTYPE_RANK = {"bool": 0, "int32": 1, "int64": 2, "float16": 3, "bfloat16": 3, "float32": 4,
               "float64": 5}


def promote(*tensors: TensorType) -> str:
    """The dtype torch's type promotion gives an operation on ``tensors`` (``torch.result_type``).

    Zero-dimensional tensors only count when they are of a higher kind (bool < int < float).
    """
    shaped = [t.dtype for t in tensors if t.rank > 0]
    scalars = [t.dtype for t in tensors if t.rank == 0]
    if not shaped:
        return _join(scalars)
    result = _join(shaped)
    if scalars and _kind(_join(scalars)) > _kind(result):
        return _join(scalars)
    return result


def _kind(dtype: str) -> int:
    return 0 if dtype == "bool" else 1 if dtype in INT_DTYPES else 2


def _join(dtypes: Sequence[str]) -> str:
    result = dtypes[0] if dtypes else "float32"
    for dtype in dtypes[1:]:
        pair = frozenset({result, dtype})
        result = _FLOAT_JOIN.get(pair) or max(pair, key=_DTYPE_RANK.__getitem__)
    return result


def require_min_rank(ctx: InferContext, tensor: TensorType, rank: int) -> None:
    """Fail unless ``tensor`` has at least ``rank`` dimensions (batch included)."""
    if tensor.rank < rank:
        ctx.fail(f"{ctx.where} expects at least a {rank}-D input (batch included) but gets "
                 f"{tensor.rank}-D {tensor} from '{ctx.source_of()}'",
                 "reshape the input (Unsqueeze or Reshape) before this node")
