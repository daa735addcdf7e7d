"""Attention and learned positions as torch.onnx writes them, back to catalogue layers.

``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` exports as ``MatMul(q, k^T)``,
the ``Add`` of a causal mask built from the length (``Trilu``, ``Where``), ``Softmax`` and
``MatMul`` by ``v``: the product waits (:class:`~dlstudio.interop.onnx_values.Product`) until
the mask and softmax show it is attention, then becomes one ScaledDotProductAttention (the
exporter's scaling of q and k by ``d ** -0.25`` each and its transposing of k, waiting as
:class:`~dlstudio.interop.onnx_values.Unary` layers, go into it).
Without a causal mask the product is a plain MatMul. ``wpe(arange(T))`` added to the token
embeddings becomes a LearnedPositionalEmbedding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlstudio.core.tensor import Dim
from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Unmappable
from dlstudio.interop.onnx_calls import OnnxCall
from dlstudio.interop.onnx_values import (
    MaskedScores,
    Pending,
    Positions,
    Product,
    Unary,
    causal,
)


def product(call: OnnxCall) -> Product:
    """``a @ b`` of two computed tensors, built as a MatMul unless attention consumes it."""
    left, right = call.inputs[0], call.inputs[1]

    def build() -> Port:
        return call.add("MatMul", {}, [(call.port(0), "input"), (call.port(1), "other")])

    return Product(build, _product_shape(call, left, right), left=left, right=right)


def _product_shape(call: OnnxCall, left: Any, right: Any) -> tuple[Dim, ...] | None:
    a, b = call.type_of(left), call.type_of(right)
    if a is None or b is None or a.rank != b.rank or a.rank < 3:
        return None
    return (*a.shape[:-1], b.shape[-1])


def masked(call: OnnxCall) -> MaskedScores | None:
    """``scores + causal mask``; None when the Add is no such."""
    first, second = call.inputs[:2]
    scores, mask = (first, second) if isinstance(first, Product) else (second, first)
    if not isinstance(scores, Product) or not causal(mask):
        return None

    def refuse() -> Port:
        raise Unmappable("adds a causal mask to a product that is not attention scores")

    return MaskedScores(refuse, scores.shape, scores=scores)


def softmax(call: OnnxCall, value: MaskedScores, axis: int) -> MaskedScores:
    if value.softmax or axis not in (-1, len(value.shape or ()) - 1):
        raise Unmappable("a softmax over masked scores along other than the keys")
    return MaskedScores(value.build, value.shape, scores=value.scores, softmax=True)


def attention(call: OnnxCall, weights: MaskedScores) -> Port:
    """``softmax(q k^T + causal) @ v``: one ScaledDotProductAttention with causal on, taking
    in the scaling of q and k and the transposing of k."""
    if not weights.softmax or weights.scores is None:
        raise Unmappable("multiplies masked scores that no softmax normalised")
    scores, value = weights.scores, call.port(1)
    query, query_factor = _unscaled(scores.left)
    keys_t, key_factor = _unscaled(scores.right)
    query_type = call.type_of(query)
    inputs = [(_built(query), "query"), (_transposed_back(call, keys_t), "key"), (value, "value")]
    scale = query_factor * key_factor
    if query_type is not None and isinstance(query_type.shape[-1], int) and \
            np.isclose(scale, query_type.shape[-1] ** -0.5, rtol=1e-6, atol=0):
        return call.add("ScaledDotProductAttention", {"causal": True}, inputs)
    return call.add("ScaledDotProductAttention", {"causal": True, "scale": float(scale)}, inputs)


def _unscaled(value: Any) -> tuple[Any, float]:
    """``value`` without a pending Scale, and that Scale's factor (1 without one)."""
    if isinstance(value, Unary) and value.type_name == "Scale":
        return value.base, float(value.params["factor"])
    return value, 1.0


def _built(value: Any) -> Port:
    return value.port() if isinstance(value, Pending) else value


def _transposed_back(call: OnnxCall, keys_t: Any) -> Port:
    """k from k^T: the pending Permute that made k^T with its last two dims swapped back
    (nothing when that is the identity), else a Transpose."""
    if isinstance(keys_t, Unary) and keys_t.type_name == "Permute":
        dims = list(keys_t.params["dims"])
        dims[-2], dims[-1] = dims[-1], dims[-2]
        if dims == sorted(dims):
            return _built(keys_t.base)
        return call.add("Permute", {"dims": dims}, [(_built(keys_t.base), "input")])
    return call.add("Transpose", {"dim0": -2, "dim1": -1}, [(_built(keys_t), "input")])


def positions(call: OnnxCall) -> Positions:
    """A fixed table's rows at ``arange(T)``, T a symbolic length or one fixed at export."""
    table, indices = call.fixed(0), call.inputs[1]
    if table is None or table.ndim != 2 or int(call.attrs.get("axis", 0)) != 0:
        raise Unmappable("a Gather other than looking rows up in a fixed table")
    if isinstance(indices, np.ndarray):  # a length fixed at export
        length: Dim | None = len(indices) if np.array_equal(indices, np.arange(len(indices))) else None
    else:
        length = next((s for s in indices.symbols if indices.follows(lambda sizes, s=s: np.arange(sizes[s]))), None)
    if length is None:
        raise Unmappable("looks a fixed table up at positions other than 0..T-1")

    def refuse() -> Port:
        raise Unmappable("positions 0..T-1 of a table used other than added to a sequence")

    return Positions(refuse, (length, int(table.shape[1])), table=table, label=call.name)


def positional_add(call: OnnxCall) -> Port | None:
    """``tokens + table[arange(T)]``: a LearnedPositionalEmbedding; None when the Add is no
    such. Where the exporter folded the lookup (a length fixed at export), the rows it added
    are the table, ``max_len`` that length."""
    first, second = call.inputs[:2]
    tokens, rows = (first, second) if isinstance(second, Positions | np.ndarray) else (second, first)
    if isinstance(rows, np.ndarray) and isinstance(tokens, Port):
        rows = _folded_positions(call, tokens, rows)
    if not isinstance(rows, Positions) or not isinstance(tokens, Port):
        return None
    shape = call.type_of(tokens)
    if shape is None or shape.rank != 3 or rows.shape is None or tuple(shape.shape[1:]) != rows.shape:
        raise Unmappable("positions added to something other than a [N, T, features] sequence")
    params = {"max_len": int(rows.table.shape[0])}
    node = call.walker.builder.add("LearnedPositionalEmbedding", rows.label, params, [(tokens, "input")],
                                   rows.label, {"weight": _tensor(rows.table)})
    call.walker.typed("LearnedPositionalEmbedding", node, params, [(tokens, "input")])
    return Port(node)


def _folded_positions(call: OnnxCall, tokens: Port, rows: np.ndarray) -> Positions | None:
    """A fixed [T, features] tensor added to a [N, T, features] sequence of fixed length T."""
    tensor = call.type_of(tokens)
    table = rows.reshape(rows.shape[-2:]) if rows.ndim == 3 and rows.shape[0] == 1 else rows
    if tensor is None or table.ndim != 2 or tuple(tensor.shape[1:]) != table.shape or not table.dtype.kind == "f":
        return None

    def refuse() -> Port:
        raise Unmappable("unreachable: these rows were added")

    return Positions(refuse, table.shape, table=table, label=call.name)


def _tensor(array: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.array(array))
