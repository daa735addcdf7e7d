"""Converters from ONNX operators to catalogue layers, one per operator type.

Fixed inputs (initialisers, ``Constant`` outputs) arrive as numpy arrays and become weights or
parameters; an operator whose inputs are all fixed and that :data:`FOLDABLE` lists is
evaluated instead (a weight transposed before a ``MatMul``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dlstudio.core.tensor import BATCH, Dim
from dlstudio.interop import onnx_attention, onnx_views
from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Unmappable
from dlstudio.interop.onnx_calls import OnnxCall, OnnxConverter, onnx_package, register
from dlstudio.interop.onnx_values import Laid, MaskedScores, Pending, Symbolic, counting
from dlstudio.interop.shapes import reshape_layer

# --- fixed values: constants and what is computed from them ---


def _constant(call: OnnxCall) -> list[Any]:
    onnx = onnx_package()
    if "value" not in call.attrs:
        raise Unmappable("a Constant other than a tensor")
    return [onnx.numpy_helper.to_array(call.attrs["value"])]


def _fixed_transpose(call: OnnxCall) -> list[Any]:
    return [np.transpose(call.inputs[0], call.attrs.get("perm"))]


#: Operators evaluated when all their inputs are fixed (a weight transposed before a MatMul).
FOLDABLE: dict[str, Callable[[OnnxCall], list[Any]]] = {
    "Constant": _constant,
    "Identity": lambda call: [call.inputs[0]],
    "Transpose": _fixed_transpose,
}


@register("Identity", "Dropout")
def _pass_through(call: OnnxCall) -> list[Any]:
    call.walker.builder.folded += 1
    return [call.inputs[0] if isinstance(call.inputs[0], Pending) else call.port()]


# --- layers with weights ---


def _symmetric_pads(call: OnnxCall, n: int) -> list[int]:
    if call.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise Unmappable("auto_pad is not supported")
    pads = list(call.attrs.get("pads", [0] * 2 * n))
    if pads[:n] != pads[n:]:
        raise Unmappable(f"asymmetric padding {pads}")
    return pads[:n]


def _compact(values: Sequence[int]) -> Any:
    """``[3, 3]`` -> ``3``; ``[3, 5]`` stays a list."""
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def _window(call: OnnxCall, n: int) -> dict[str, Any]:
    return {"kernel_size": _compact(call.attrs["kernel_shape"]),
            "stride": _compact(call.attrs.get("strides", [1] * n)),
            "padding": _compact(_symmetric_pads(call, n)),
            "dilation": _compact(call.attrs.get("dilations", [1] * n))}


@register("Conv", "ConvTranspose")
def _conv(call: OnnxCall) -> list[Port]:
    weight, bias = call.fixed(1), call.fixed(2)
    if weight is None:
        raise Unmappable("a convolution without a fixed weight")
    n, groups = weight.ndim - 2, int(call.attrs.get("group", 1))
    transposed = call.node.op_type == "ConvTranspose"
    if transposed and "output_shape" in call.attrs:
        raise Unmappable("output_shape is not supported")
    params = {"out_channels": weight.shape[1] * groups if transposed else weight.shape[0],
              **_window(call, n), "groups": groups, "bias": bias is not None}
    if transposed:
        params["output_padding"] = _compact(call.attrs.get("output_padding", [0] * n))
    weights = {"weight": weight, **({"bias": bias} if bias is not None else {})}
    type_name = f"{'ConvTranspose' if transposed else 'Conv'}{n}d"
    return [call.add(type_name, params, [(call.port(), "input")], weights)]


@register("Gemm")
def _gemm(call: OnnxCall) -> list[Port]:
    weight, bias = call.fixed(1), call.fixed(2)
    if weight is None or call.attrs.get("transA", 0) or call.attrs.get("alpha", 1.0) != 1.0 \
            or call.attrs.get("beta", 1.0) != 1.0:
        raise Unmappable("a Gemm other than x @ W^T + b with a fixed W")
    if not call.attrs.get("transB", 0):
        weight = weight.T
    return [_linear(call, weight, bias)]


def _linear(call: OnnxCall, weight: np.ndarray, bias: np.ndarray | None) -> Port:
    if bias is not None and bias.shape != (weight.shape[0],):
        raise Unmappable("a bias that is not one value per output")
    params = {"out_features": int(weight.shape[0]), "bias": bias is not None}
    weights = {"weight": weight, **({"bias": bias} if bias is not None else {})}
    return call.add("Linear", params, [(call.port(), "input")], weights)


@register("MatMul")
def _matmul(call: OnnxCall) -> list[Any]:
    if isinstance(call.inputs[0], MaskedScores):
        return [onnx_attention.attention(call, call.inputs[0])]
    if isinstance(call.inputs[1], Port | Pending):
        return [onnx_attention.product(call)]
    weight = call.fixed(1)
    if weight is None or weight.ndim != 2:
        raise Unmappable("a product with a fixed tensor that is not a matrix")
    add = _bias_add(call)
    if add is None:
        return [_linear(call, weight.T, None)]
    node, bias = add
    port = _linear(call, weight.T, bias)
    call.walker.values[node.output[0]] = port
    call.walker.skip.add(node.name)
    return [port]


def _bias_add(call: OnnxCall) -> tuple[Any, np.ndarray] | None:
    """The ``Add`` of a fixed vector that alone reads this MatMul's result, if there is one."""
    output = call.node.output[0]
    if call.walker.consumers[output] != 1:
        return None
    for node in call.walker.graph.node:
        if node.op_type == "Add" and output in node.input and node.name:
            other = node.input[1] if node.input[0] == output else node.input[0]
            value = call.walker.values.get(other)
            if isinstance(value, np.ndarray) and value.ndim == 1:
                return node, value
    return None


@register("BatchNormalization")
def _batch_norm(call: OnnxCall) -> list[Port]:
    scale, bias, mean, var = (call.fixed(i) for i in range(1, 5))
    if call.attrs.get("training_mode", 0) or len(call.node.output) > 1 and any(call.node.output[1:]):
        raise Unmappable("batch norm in training mode")
    n = {2: 1, 3: 1, 4: 2, 5: 3}.get(call.rank)
    if n is None:
        raise Unmappable("a batch norm input of rank other than 2 to 5")
    params = {"eps": float(np.float32(call.attrs.get("epsilon", 1e-5))),
              "momentum": round(1.0 - float(call.attrs.get("momentum", 0.9)), 6)}
    params = {k: v for k, v in params.items() if not np.isclose(v, {"eps": 1e-5, "momentum": 0.1}[k])}
    weights = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var,
               "num_batches_tracked": np.array(0, dtype=np.int64)}
    return [call.add(f"BatchNorm{n}d", params, [(call.port(), "input")], weights)]


@register("LayerNormalization")
def _layer_norm(call: OnnxCall) -> list[Port]:
    scale, bias = call.fixed(1), call.fixed(2)
    axis = int(call.attrs.get("axis", -1))
    if scale is None or axis % call.rank != call.rank - scale.ndim:
        raise Unmappable("a layer norm whose axis does not match its scale")
    params: dict[str, Any] = {"eps": float(np.float32(call.attrs.get("epsilon", 1e-5)))}
    if np.isclose(params["eps"], 1e-5):
        params = {}
    if scale.ndim > 1:
        params["normalized_shape"] = list(scale.shape)
    if bias is None:
        params["bias"] = False
    weights = {"weight": scale, **({"bias": bias} if bias is not None else {})}
    return [call.add("LayerNorm", params, [(call.port(), "input")], weights)]


@register("Gather")
def _gather(call: OnnxCall) -> list[Any]:
    """Rows of a fixed table (an Embedding, or learned positions), or one index of a tensor."""
    data, axis = call.inputs[0], int(call.attrs.get("axis", 0))
    if isinstance(data, np.ndarray):
        return [onnx_attention.positions(call) if counting(call.inputs[1]) else _embedding(call)]
    index = call.fixed(1)
    if index is None:
        raise Unmappable("a Gather at computed indices")
    if axis < 0:
        axis += call.rank
    return [onnx_views.select(call, data if isinstance(data, Laid) else call.port(), axis, index)]


def _embedding(call: OnnxCall) -> Port:
    table = call.fixed(0)
    if table is None or table.ndim != 2 or int(call.attrs.get("axis", 0)) != 0:
        raise Unmappable("a Gather other than looking rows up in a fixed table")
    params = {"num_embeddings": int(table.shape[0]), "embedding_dim": int(table.shape[1])}
    return call.add("Embedding", params, [(call.port(1), "input")], {"weight": table})


# --- element-wise, activations ---


def _variadic(type_name: str) -> OnnxConverter:
    def convert(call: OnnxCall) -> list[Port]:
        ports = [call.port(i) for i in range(len(call.inputs))]
        return [call.add(type_name, {}, [(port, f"in{i}") for i, port in enumerate(ports)])]

    return convert


register("Sum")(_variadic("Add"))


@register("Add")
def _add(call: OnnxCall) -> list[Any]:
    """A sum, the positions added to token embeddings, or a causal mask added to scores."""
    special = onnx_attention.positional_add(call) or onnx_attention.masked(call)
    return [special] if special is not None else _variadic("Add")(call)


@register("Mul", "Div")
def _multiply(call: OnnxCall) -> list[Port]:
    """Mul of two computed tensors, or Mul or Div by one fixed number (a Scale)."""
    fixed = [i for i, value in enumerate(call.inputs) if isinstance(value, np.ndarray)]
    if not fixed and call.node.op_type == "Mul":
        return _variadic("Multiply")(call)
    if fixed != [1] and not (fixed == [0] and call.node.op_type == "Mul") or call.inputs[fixed[0]].size != 1:
        raise Unmappable("an operation with a fixed tensor that is not one number")
    number = float(call.inputs[fixed[0]].reshape(()))
    if call.node.op_type == "Div" and number == 0:
        raise Unmappable("a division by zero")
    factor = 1.0 / number if call.node.op_type == "Div" else number
    base = call.inputs[1 - fixed[0]]
    return [call.unary("Scale", {"factor": factor}, base if isinstance(base, Pending) else call.port(1 - fixed[0]))]


def _activation(type_name: str, **attrs: tuple[str, Any]) -> OnnxConverter:
    """``attrs`` maps a layer parameter to (ONNX attribute, its default)."""

    def convert(call: OnnxCall) -> list[Port]:
        params = {name: call.attrs.get(attr, default) for name, (attr, default) in attrs.items()}
        params = {k: v.decode() if isinstance(v, bytes) else float(np.float32(v)) if isinstance(v, float) else v
                  for k, v in params.items()}
        return call.single(type_name, params)

    return convert


register("Relu")(_activation("ReLU"))
register("Sigmoid")(_activation("Sigmoid"))
register("Tanh")(_activation("Tanh"))
register("Selu")(_activation("SELU"))
register("Softplus")(_activation("Softplus"))
register("HardSwish")(_activation("Hardswish"))
register("Mish")(_activation("Mish"))
register("LeakyRelu")(_activation("LeakyReLU", negative_slope=("alpha", 0.01)))
register("Elu")(_activation("ELU", alpha=("alpha", 1.0)))
register("Gelu")(_activation("GELU", approximate=("approximate", "none")))


@register("Softmax", "LogSoftmax")
def _softmax(call: OnnxCall) -> list[Port]:
    opset = max((o.version for o in call.walker.model.opset_import if o.domain in ("", "ai.onnx")), default=13)
    axis = int(call.attrs.get("axis", -1 if opset >= 13 else 1))
    if opset < 13 and axis % call.rank != call.rank - 1:
        raise Unmappable("a softmax over flattened trailing dims (opset below 13)")
    if isinstance(call.inputs[0], MaskedScores) and call.node.op_type == "Softmax":
        return [onnx_attention.softmax(call, call.inputs[0], axis)]
    type_name = "Softmax" if call.node.op_type == "Softmax" else "LogSoftmax"
    return call.single(type_name, {"dim": axis} if axis != -1 else {})


# --- pooling ---


@register("MaxPool", "AveragePool")
def _pool(call: OnnxCall) -> list[Port]:
    if len(call.node.output) > 1 and call.node.output[1]:
        raise Unmappable("pooling indices are not supported")
    n = len(call.attrs["kernel_shape"])
    params = _window(call, n)
    params["ceil_mode"] = bool(call.attrs.get("ceil_mode", 0))
    if call.node.op_type == "AveragePool":
        params.pop("dilation")
        params["count_include_pad"] = bool(call.attrs.get("count_include_pad", 0))
    defaults = {"padding": 0, "dilation": 1, "ceil_mode": False, "count_include_pad": True}
    params = {k: v for k, v in params.items() if defaults.get(k, object()) != v}
    kind = "MaxPool" if call.node.op_type == "MaxPool" else "AvgPool"
    return call.single(f"{kind}{n}d", params)


@register("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(call: OnnxCall) -> list[Port]:
    n = call.rank - 2
    if n not in (1, 2):
        raise Unmappable("global pooling over other than 1 or 2 spatial dimensions")
    kind = "Avg" if call.node.op_type == "GlobalAveragePool" else "Max"
    return call.single(f"Adaptive{kind}Pool{n}d", {"output_size": 1})


# --- shape ---


@register("Concat")
def _concat(call: OnnxCall) -> list[Port]:
    axis = int(call.attrs["axis"])
    if axis % call.rank == 0:
        raise Unmappable("joins along the batch dimension")
    ports = [call.port(i) for i in range(len(call.inputs))]
    return [call.add("Concat", {"dim": axis}, [(port, f"in{i}") for i, port in enumerate(ports)])]


@register("Flatten")
def _flatten(call: OnnxCall) -> list[Port]:
    axis = int(call.attrs.get("axis", 1)) % call.rank
    if axis != 1:
        raise Unmappable(f"Flatten with axis={axis} folds other dims into the batch")
    return call.single("Flatten")


@register("Reshape")
def _reshape(call: OnnxCall) -> list[Any]:
    """A Flatten, Unflatten or Reshape to the target shape, evaluated from the input's sizes."""
    value, target = call.inputs[0], _target(call)
    if isinstance(value, Laid):
        return [_reshape_laid(call, value, target)]
    if target is None:
        return _reshape_inferred(call)
    before = call.shape(call.node.input[0])
    if before is None or None in before:
        raise Unmappable("a reshape of a tensor whose shape is not known")
    lead = len(before) - len(target) + 1  # dims joined into the first, where the rest are kept
    if target[0] == -1 and lead > 1 and len(target) > 1 and tuple(target[1:]) == tuple(before[lead:]):
        return [onnx_views.folded(call, value if isinstance(value, Pending) else call.port(), lead)]
    after = _resolved_target(before, target, bool(call.attrs.get("allowzero", 0)))
    if before[0] != after[0]:
        raise Unmappable("changes the batch dimension")
    try:
        type_name, params = reshape_layer(tuple(before), after)
    except TypeError:  # a symbolic size among those joined or split
        raise Unmappable(f"a reshape of {list(before)} to {list(after)} that no layer takes") from None
    if type_name == "Reshape" and not all(isinstance(d, int) for d in after[1:]):
        raise Unmappable(f"a reshape of {list(before)} to {list(after)} that no layer takes")
    return call.single(type_name, params)


def _target(call: OnnxCall) -> list[Dim] | None:
    """The Reshape's target sizes; the batch size a model was exported with stands for the batch."""
    value = call.inputs[1] if len(call.inputs) > 1 else None
    if isinstance(value, np.ndarray):
        dims: list[Dim] = [int(d) for d in value.reshape(-1)]
    elif isinstance(value, Symbolic):
        dims = value.dims()
    else:
        return None
    if dims and dims[0] == call.walker.batch_size:
        dims[0] = BATCH
    return dims


def _reshape_laid(call: OnnxCall, value: Laid, target: list[Dim] | None) -> Any:
    if target is None:
        raise Unmappable("a reshape to sizes that could not be evaluated")
    if value.layout == "folded":
        return onnx_views.unfolded(call, value, target)
    return onnx_views.reshaped(call, value, target)


def _resolved_target(before: Sequence[Dim], target: list[Dim], allowzero: bool) -> tuple[Dim, ...]:
    """``target`` with 0 (copy that dim) and -1 (whatever is left) filled in from ``before``."""
    dims = [before[i] if d == 0 and not allowzero else d for i, d in enumerate(target)]
    if -1 not in dims:
        return tuple(dims)
    left, known = list(before), 1
    for d in dims:
        if isinstance(d, str) and d in left:
            left.remove(d)
        elif isinstance(d, str):
            raise Unmappable(f"a reshape of {list(before)} to {target} that no layer takes")
        elif d != -1:
            known *= d
    symbols = [d for d in left if isinstance(d, str)]
    product = int(np.prod([d for d in left if isinstance(d, int)]))
    if product % known or symbols and (len(symbols) > 1 or product != known):
        raise Unmappable(f"a reshape of {list(before)} to {target} that no layer takes")
    dims[dims.index(-1)] = symbols[0] if symbols else product // known
    return tuple(dims)


def _reshape_inferred(call: OnnxCall) -> list[Port]:
    before, after = call.shape(call.node.input[0]), call.shape(call.node.output[0])
    if before is None or after is None or not all(isinstance(d, int) for d in (*before[1:], *after[1:])):
        raise Unmappable("a reshape whose sizes are not all known")
    if before[0] != after[0]:
        raise Unmappable("changes the batch dimension")
    return call.single(*reshape_layer(tuple(before), tuple(after)))


@register("Transpose")
def _transpose(call: OnnxCall) -> list[Any]:
    perm = [int(p) for p in call.attrs.get("perm", range(call.rank - 1, -1, -1))]
    if isinstance(call.inputs[0], Laid) and call.inputs[0].layout == "folded":
        return [onnx_views.folded_transpose(call, call.inputs[0], perm)]
    laid = onnx_views.transposed(call, perm)
    if laid is not None:
        return [laid]
    if perm[0] != 0:
        raise Unmappable("moves the batch dimension")
    base = call.inputs[0]
    return [call.unary("Permute", {"dims": perm}, base if isinstance(base, Pending) else call.port())]


def _axes(call: OnnxCall) -> list[int]:
    axes = call.attrs.get("axes")
    if axes is None and len(call.inputs) > 1:
        axes = call.fixed(1)
    if axes is None:
        raise Unmappable("without axes")
    return [int(a) for a in np.atleast_1d(axes)]


@register("Squeeze", "Unsqueeze")
def _squeeze(call: OnnxCall) -> list[Any]:
    axes = _axes(call)
    if isinstance(call.inputs[0], Laid) and call.node.op_type == "Squeeze":
        return [onnx_views.squeezed(call, call.inputs[0], axes)]
    if call.node.op_type == "Unsqueeze":
        if len(axes) != 1:
            raise Unmappable("unsqueezes several dims")
        return call.single("Unsqueeze", {"dim": axes[0]})
    return call.single("Squeeze", {"dim": axes[0] if len(axes) == 1 else axes})


@register("ReduceMean", "ReduceSum")
def _reduce(call: OnnxCall) -> list[Port]:
    axes = _axes(call)
    type_name = "Mean" if call.node.op_type == "ReduceMean" else "Sum"
    keep = bool(call.attrs.get("keepdims", 1))
    return call.single(type_name, {"dim": axes[0] if len(axes) == 1 else axes, "keepdim": keep})


@register("Split")
def _split(call: OnnxCall) -> list[Port]:
    """Pieces along a dim of fixed size: a Split with one output per piece."""
    shape, axis = call.shape(call.node.input[0]), int(call.attrs.get("axis", 0))
    if shape is None:
        raise Unmappable("the input's shape is unknown")
    axis %= len(shape)
    sizes = call.fixed(1) if len(call.inputs) > 1 else None
    if sizes is None:
        count, size = int(call.attrs.get("num_outputs", len(call.node.output))), shape[axis]
        if not isinstance(size, int):
            raise Unmappable(f"splits the variable size {size}")
        step = -(-size // count)
        sizes = [step] * (count - 1) + [size - step * (count - 1)]
    if axis == 0:
        raise Unmappable("splits the batch dimension")
    params = {"split_size_or_sections": [int(s) for s in sizes], "dim": axis}
    node = call.add("Split", params, [(call.port(), "input")]).node
    return [Port(node, f"out{i}") for i in range(len(sizes))]
