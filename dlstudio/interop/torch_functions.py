"""Converters for torch functions, ``F.*`` functions, operators and tensor methods.

Shapes come from the example run: a ``view``/``reshape`` becomes Flatten or Unflatten when
it joins or splits neighbouring dimensions (so symbolic sizes keep flowing), else Reshape.
Pass-throughs (``contiguous``, ``clone``) map to their input's port, and an index into a
tuple to the element's port; both are counted as folded, not as layers.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Call, Positions, Unmappable, register
from dlstudio.interop.shapes import reshape_layer
from dlstudio.interop.torch_modules import positional_add

# --- element-wise arithmetic and products ---


@register(operator.add, operator.iadd, torch.add, "Tensor.add", "Tensor.add_")
def _add(call: Call) -> Port:
    left, right = call.arg(0, "input"), call.arg(1, "other")
    if call.kwargs.get("alpha", 1) != 1:
        raise Unmappable("alpha is not supported")
    if isinstance(left, Port) and isinstance(right, Positions):
        return positional_add(call, left, right)
    if isinstance(right, Port) and isinstance(left, Positions):
        return positional_add(call, right, left)
    return _variadic(call, "Add", left, right)


@register(operator.mul, operator.imul, torch.mul, "Tensor.mul")
def _multiply(call: Call) -> Port:
    left, right = call.arg(0, "input"), call.arg(1, "other")
    if isinstance(left, int | float) and isinstance(right, Port):
        left, right = right, left
    if isinstance(left, Port) and isinstance(right, int | float) and not isinstance(right, bool):
        return call.single("Scale", {"factor": float(right)}, left)
    return _variadic(call, "Multiply", left, right)


@register(operator.truediv, operator.itruediv, torch.div, "Tensor.div")
def _divide(call: Call) -> Port:
    divisor = call.arg(1, "other")
    if not isinstance(divisor, int | float) or isinstance(divisor, bool) or not divisor \
            or call.kwargs.get("rounding_mode") is not None:
        raise Unmappable("a division other than by a constant number")
    return call.single("Scale", {"factor": 1.0 / divisor})


def _variadic(call: Call, type_name: str, *operands: Any) -> Port:
    if not all(isinstance(operand, Port) for operand in operands):
        raise Unmappable("an operand that is a constant or a fixed tensor")
    return Port(call.add(type_name, {}, [(port, f"in{i}") for i, port in enumerate(operands)]))


@register(operator.matmul, torch.matmul, torch.bmm, "Tensor.matmul", "Tensor.bmm")
def _matmul(call: Call) -> Port:
    inputs = [(call.tensor(0, "input"), "input"), (call.tensor(1, "other"), "other")]
    return Port(call.add("MatMul", {}, inputs))


def _join(type_name: str) -> Any:
    def convert(call: Call) -> Port:
        tensors = call.arg(0, "tensors")
        if not isinstance(tensors, tuple | list) or not all(isinstance(t, Port) for t in tensors):
            raise Unmappable("joins tensors that are not all computed from the inputs")
        dim = call.arg(1, "dim", call.kwargs.get("axis", 0))
        if dim == 0:
            raise Unmappable("joins along the batch dimension")
        inputs = [(port, f"in{i}") for i, port in enumerate(tensors)]
        return Port(call.add(type_name, {"dim": dim}, inputs))

    return convert


register(torch.cat, torch.concat, torch.concatenate)(_join("Concat"))
register(torch.stack)(_join("Stack"))


# --- shape ---


@register(torch.flatten, "Tensor.flatten")
def _flatten(call: Call) -> Port:
    start, end = call.arg(1, "start_dim", 0), call.arg(2, "end_dim", -1)
    if start % len(call.shape_of()) == 0:
        raise Unmappable("flattens the batch dimension")
    return call.single("Flatten", {"start_dim": start, **({} if end == -1 else {"end_dim": end})})


@register("Tensor.view", "Tensor.reshape", torch.reshape)
def _reshape(call: Call) -> Port:
    before, after = call.shape_of(), call.shape
    if before[0] != after[0]:
        raise Unmappable("changes the batch dimension")
    if before == after:
        return _pass_through(call)
    return call.single(*reshape_layer(before, after))


def _dims(call: Call, name: str) -> list[int]:
    """A dims argument given as a list or as separate arguments (``x.permute(0, 2, 1)``)."""
    first = call.arg(1, name)
    return list(first) if isinstance(first, tuple | list) else list(call.args[1:])


@register(torch.permute, "Tensor.permute")
def _permute(call: Call) -> Port:
    return call.single("Permute", {"dims": _dims(call, "dims")})


@register(torch.transpose, "Tensor.transpose")
def _transpose(call: Call) -> Port:
    return call.single("Transpose", {"dim0": call.arg(1, "dim0"), "dim1": call.arg(2, "dim1")})


@register(torch.squeeze, "Tensor.squeeze")
def _squeeze(call: Call) -> Port:
    dim = call.arg(1, "dim", None)
    if dim is None:
        raise Unmappable("squeeze without dim")
    return call.single("Squeeze", {"dim": list(dim) if isinstance(dim, tuple | list) else dim})


@register(torch.unsqueeze, "Tensor.unsqueeze")
def _unsqueeze(call: Call) -> Port:
    return call.single("Unsqueeze", {"dim": call.arg(1, "dim")})


@register("Tensor.contiguous", "Tensor.clone", torch.clone)
def _pass_through(call: Call) -> Port:
    call.builder.folded += 1
    return call.tensor()


@register(operator.getitem)
def _getitem(call: Call) -> Any:
    source, index = call.args
    if isinstance(source, tuple | list):
        call.builder.folded += 1
        return source[index]
    if not isinstance(source, Port):
        raise Unmappable("indexes something other than a tensor")
    dim, picked = _select(index if isinstance(index, tuple) else (index,))
    return call.single("SelectIndex", {"dim": dim, "index": picked}, source)


def _select(index: tuple[Any, ...]) -> tuple[int, int]:
    """``(dim, index)`` for an index that picks one position of one dim: ``x[:, -1]``."""
    whole = slice(None)
    picks = [i for i, item in enumerate(index) if isinstance(item, int)]
    rest = [item for item in index if not isinstance(item, int)]
    if len(picks) != 1 or any(item is not Ellipsis and item != whole for item in rest):
        raise Unmappable("indexing other than picking one position of one dimension")
    position = picks[0]
    if Ellipsis in index[:position]:
        dim = position - len(index)
    else:
        dim = position
    if dim == 0:
        raise Unmappable("picks from the batch dimension")
    return dim, index[position]


@register(torch.chunk, "Tensor.chunk")
def _chunk(call: Call) -> tuple[Port, ...]:
    chunks, dim = call.arg(1, "chunks"), call.arg(2, "dim", 0)
    node = call.add("Chunk", {"chunks": chunks, "dim": dim}, [(call.tensor(), "input")])
    return tuple(Port(node, f"out{i}") for i in range(len(call.value)))


@register(torch.split, "Tensor.split")
def _split_call(call: Call) -> tuple[Port, ...]:
    dim = call.arg(2, "dim", 0)
    sections = [piece.shape[dim] for piece in call.value]
    node = call.add("Split", {"split_size_or_sections": sections, "dim": dim}, [(call.tensor(), "input")])
    return tuple(Port(node, f"out{i}") for i in range(len(sections)))


def _reduction(type_name: str) -> Any:
    def convert(call: Call) -> Port:
        dim, keep = call.arg(1, "dim", None), call.arg(2, "keepdim", False)
        if dim is None or call.kwargs.get("dtype") is not None:
            raise Unmappable("a reduction over all dimensions or with a dtype")
        params = {"dim": list(dim) if isinstance(dim, tuple | list) else dim, "keepdim": keep}
        return call.single(type_name, params)

    return convert


register(torch.mean, "Tensor.mean")(_reduction("Mean"))
register(torch.sum, "Tensor.sum")(_reduction("Sum"))

# --- activations ---


def _activation(type_name: str, **params: tuple[int, str, Any]) -> Any:
    """A converter reading ``params`` (name: (position, argument name, default))."""

    def convert(call: Call) -> Port:
        values = {name: call.arg(index, argument, default) for name, (index, argument, default) in params.items()}
        return call.single(type_name, {k: v for k, v in values.items() if v != params[k][2]})

    return convert


register(F.relu, torch.relu, "Tensor.relu")(_activation("ReLU"))
register(F.relu6)(_activation("ReLU6"))
register(F.silu)(_activation("SiLU"))
register(F.mish)(_activation("Mish"))
register(F.selu, torch.selu)(_activation("SELU"))
register(F.hardswish)(_activation("Hardswish"))
register(F.sigmoid, torch.sigmoid, "Tensor.sigmoid")(_activation("Sigmoid"))
register(F.tanh, torch.tanh, "Tensor.tanh")(_activation("Tanh"))
register(F.gelu)(_activation("GELU", approximate=(1, "approximate", "none")))
register(F.leaky_relu)(_activation("LeakyReLU", negative_slope=(1, "negative_slope", 0.01)))
register(F.elu)(_activation("ELU", alpha=(1, "alpha", 1.0)))
register(F.softplus)(_activation("Softplus", beta=(1, "beta", 1.0), threshold=(2, "threshold", 20.0)))


def _softmax(type_name: str) -> Any:
    def convert(call: Call) -> Port:
        dim = call.arg(1, "dim", None)
        if dim is None or call.kwargs.get("dtype") is not None:
            raise Unmappable("softmax without dim, or with a dtype")
        return call.single(type_name, {"dim": dim} if dim != -1 else {})

    return convert


register(F.softmax, torch.softmax, "Tensor.softmax")(_softmax("Softmax"))
register(F.log_softmax, torch.log_softmax, "Tensor.log_softmax")(_softmax("LogSoftmax"))


@register(F.dropout)
def _dropout(call: Call) -> Port:
    return call.single("Dropout", {"p": call.arg(1, "p", 0.5)})


# --- pooling, resizing, attention ---


def _pooling(type_name: str, *names: tuple[str, Any]) -> Any:
    """A converter for ``F.<pool>(input, *names)``; ``names`` pairs argument and default."""

    def convert(call: Call) -> Port:
        values = {name: call.arg(i + 1, name, default) for i, (name, default) in enumerate(names)}
        if values.pop("return_indices", False):
            raise Unmappable("return_indices is not supported")
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()
                  if v != dict(names)[k]}
        return call.single(type_name, params)

    return convert


_MAX = (("kernel_size", None), ("stride", None), ("padding", 0), ("dilation", 1),
        ("ceil_mode", False), ("return_indices", False))
_AVG = (("kernel_size", None), ("stride", None), ("padding", 0), ("ceil_mode", False),
        ("count_include_pad", True))
for _n in (1, 2, 3):
    register(getattr(F, f"max_pool{_n}d"))(_pooling(f"MaxPool{_n}d", *_MAX))
    register(getattr(F, f"avg_pool{_n}d"))(_pooling(f"AvgPool{_n}d", *_AVG, *(() if _n == 1 else (("divisor_override", None),))))
for _n in (1, 2):
    register(getattr(F, f"adaptive_avg_pool{_n}d"))(_pooling(f"AdaptiveAvgPool{_n}d", ("output_size", None)))
    register(getattr(F, f"adaptive_max_pool{_n}d"))(
        _pooling(f"AdaptiveMaxPool{_n}d", ("output_size", None), ("return_indices", False)))


@register(F.interpolate)
def _interpolate(call: Call) -> Port:
    names = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
    values = {name: call.arg(i + 1, name, None) for i, name in enumerate(names)}
    if values.pop("recompute_scale_factor") or values.pop("antialias"):
        raise Unmappable("recompute_scale_factor and antialias are not supported")
    factor = values["scale_factor"]
    if isinstance(factor, tuple | list):
        if len(set(factor)) != 1:
            raise Unmappable("a different scale factor per dimension")
        factor = factor[0]
    params = {"size": values["size"], "scale_factor": None if factor is None else float(factor),
              "mode": values["mode"] or "nearest", "align_corners": values["align_corners"]}
    if params["size"] is not None:
        params["size"] = list(params["size"]) if isinstance(params["size"], tuple | list) else params["size"]
    return call.single("Upsample", params)


@register(F.scaled_dot_product_attention)
def _attention(call: Call) -> Port:
    mask, dropout = call.arg(3, "attn_mask", None), call.arg(4, "dropout_p", 0.0)
    causal, scale = call.arg(5, "is_causal", False), call.kwargs.get("scale")
    if mask is not None or dropout or call.kwargs.get("enable_gqa"):
        raise Unmappable("attn_mask, dropout_p and enable_gqa are not supported")
    inputs = [(call.tensor(i, name), name) for i, name in enumerate(("query", "key", "value"))]
    params = {"causal": bool(causal), **({} if scale is None else {"scale": float(scale)})}
    return Port(call.add("ScaledDotProductAttention", params, inputs))

