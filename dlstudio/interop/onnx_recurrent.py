"""ONNX ``LSTM`` and ``GRU`` nodes as the catalogue's batch-first recurrent layers.

torch.onnx writes a batch-first ``nn.LSTM`` as ``Transpose`` to time-major, one ONNX ``LSTM``
per layer, then ``Squeeze`` (or ``Transpose`` and ``Reshape``) and ``Transpose`` back. Those
views are :class:`~dlstudio.interop.onnx_values.Laid` values of the batch-first sequence, so
no layer is made for them; the layers of one module stack into one node (``num_layers``).
Weights are reordered from ONNX's gates (LSTM ``i o f c``, GRU ``z r h``) to torch's
(``i f g o``, ``r z n``); ONNX's one bias per gate row pair becomes ``bias_ih`` and ``bias_hh``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlstudio.core.tensor import Dim
from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Unmappable
from dlstudio.interop.onnx_calls import OnnxCall, register
from dlstudio.interop.onnx_values import Laid, Symbolic

#: For each torch gate in torch's order, the index of that gate in ONNX's order.
_TORCH_GATES = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2)}
_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def laid(port: Port, layout: str, shape: tuple[Dim, ...] | None, directions: int = 1) -> Laid:
    """``port`` (batch-first) as ONNX lays it out; as a plain tensor it is refused."""

    def refuse() -> Port:
        raise Unmappable(f"its input is a sequence laid out {layout} (batch not first), which "
                         "only a recurrent layer takes")

    return Laid(refuse, _laid_shape(shape, layout, directions), base=port, layout=layout, directions=directions)


def _laid_shape(shape: tuple[Dim, ...] | None, layout: str, directions: int) -> tuple[Dim, ...] | None:
    if shape is None or len(shape) != 3:
        return None
    n, t, c = shape
    hidden = c // directions if isinstance(c, int) else c
    return {"TNC": (t, n, c), "TDNH": (t, directions, n, hidden), "TNDH": (t, n, directions, hidden)}[layout]


def transposed(call: OnnxCall, perm: list[int]) -> Any | None:
    """A Transpose that only changes how a sequence is laid out; None when it is no such."""
    value = call.inputs[0]
    if isinstance(value, Port) and perm == [1, 0, 2]:
        return laid(value, "TNC", _type_shape(call, value))
    if not isinstance(value, Laid):
        return None
    if value.layout == "TNC" and perm == [1, 0, 2]:
        return value.base
    if value.layout == "TDNH" and perm == [0, 2, 1, 3]:
        return laid(value.base, "TNDH", _type_shape(call, value.base), value.directions)
    raise Unmappable(f"reorders a sequence laid out {value.layout} in a way no layer takes")


def squeezed(call: OnnxCall, value: Laid, axes: list[int]) -> Laid:
    """An LSTM's Y ``[T, 1, N, hidden]`` without its direction axis."""
    if value.layout != "TDNH" or value.directions != 1 or axes != [1]:
        raise Unmappable(f"squeezes a sequence laid out {value.layout} in a way no layer takes")
    return laid(value.base, "TNC", _type_shape(call, value.base))


def reshaped(call: OnnxCall, value: Laid, target: list[Dim]) -> Laid:
    """``[T, N, directions, hidden]`` joined into ``[T, N, directions * hidden]``."""
    if value.layout != "TNDH" or len(target) != 3:
        raise Unmappable(f"reshapes a sequence laid out {value.layout} in a way no layer takes")
    return laid(value.base, "TNC", _type_shape(call, value.base))


def folded(call: OnnxCall, port: Any, lead: int) -> Laid:
    """``port`` reshaped with its first ``lead`` dims (the batch among them) joined into one,
    as the exporter does around a batched product; it must be unfolded before any layer."""

    def refuse() -> Port:
        raise Unmappable("joins the batch with other dimensions")

    return Laid(refuse, None, base=port, layout="folded", lead=lead)


def folded_transpose(call: OnnxCall, value: Laid, perm: list[int]) -> Laid:
    """A transpose of the trailing dims of a folded tensor: a Permute of the unfolded one."""
    if perm[0] != 0:
        raise Unmappable("reorders the joined batch dimension")
    dims = [*range(value.lead), *(p + value.lead - 1 for p in perm[1:])]
    return folded(call, call.unary("Permute", {"dims": dims}, value.base), value.lead)


def unfolded(call: OnnxCall, value: Laid, target: list[Dim]) -> Any:
    """A folded tensor reshaped back to its own shape."""
    shape = _type_shape(call, value.base)
    if shape is None or tuple(target) != tuple(shape):
        raise Unmappable(f"reshapes joined dimensions to {target}, not back to {shape}")
    return value.base


def _type_shape(call: OnnxCall, value: Any) -> tuple[Dim, ...] | None:
    tensor = call.type_of(value)
    return None if tensor is None else tensor.shape


def select(call: OnnxCall, value: Any, axis: int, index: np.ndarray) -> Port:
    """``Gather`` of one step: ``out[:, -1]`` (or ``out[-1]`` of a time-major sequence)."""
    if index.ndim != 0:
        raise Unmappable("a Gather of several indices along a computed tensor")
    if isinstance(value, Laid):
        if value.layout != "TNC" or axis != 0:
            raise Unmappable(f"picks from a sequence laid out {value.layout} in a way no layer takes")
        value, axis = value.base, 1
    if axis == 0:
        raise Unmappable("picks from the batch dimension")
    return call.add("SelectIndex", {"dim": axis, "index": int(index)}, [(value, "input")])


@register("LSTM", "GRU")
def _recurrent(call: OnnxCall) -> list[Any]:
    kind, sequence = call.node.op_type, call.inputs[0]
    _check_plain(call, kind)
    if not isinstance(sequence, Laid) or sequence.layout != "TNC":
        raise Unmappable("its input is not a batch-first sequence made time-major (Transpose [1, 0, 2])")
    weights_ih, weights_hh, bias = call.fixed(1), call.fixed(2), call.fixed(3)
    if weights_ih is None or weights_hh is None:
        raise Unmappable("weights that are not fixed")
    directions, hidden = weights_ih.shape[0], int(call.attrs["hidden_size"])
    states = _initial_states(call, kind)
    params = {"hidden_size": hidden, **({"bidirectional": True} if directions == 2 else {}),
              **({"bias": False} if bias is None else {})}
    stacked = _stack_onto(call, kind, sequence.base, params, states)
    layer = 0 if stacked is None else call.walker.builder_node(stacked).params.get("num_layers", 1)
    weights = _torch_weights(kind, weights_ih, weights_hh, bias, layer)
    if stacked is None:
        node = call.add(kind, params, [(sequence.base, "input"), *states], weights).node
    else:
        node = _add_layer(call, kind, stacked, weights)
    call.walker.recurrent[node] = (call.name, sequence.base if stacked is None else call.walker.recurrent[node][1],
                                   [name for name in call.node.output[1:] if name])
    output = laid(Port(node), "TDNH", _type_shape(call, Port(node)), directions)
    return [output, Port(node, "h_n"), *([Port(node, "c_n")] if kind == "LSTM" else [])]


def _check_plain(call: OnnxCall, kind: str) -> None:
    attrs = call.attrs
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    activations = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    if direction not in ("forward", "bidirectional"):
        raise Unmappable(f"direction={direction} (torch runs forward, or both ways)")
    if activations and activations != _ACTIVATIONS[kind] * (2 if direction == "bidirectional" else 1):
        raise Unmappable(f"activations {activations}")
    if "clip" in attrs or attrs.get("input_forget", 0) or attrs.get("layout", 0):
        raise Unmappable("clip, input_forget or layout=1 is set")
    if kind == "GRU" and not attrs.get("linear_before_reset", 0):
        raise Unmappable("linear_before_reset=0 (torch's GRU applies the reset after the product)")
    extra = [i for i in (4, 7) if i < len(call.inputs) and call.node.input[i]]
    if extra:
        raise Unmappable("sequence lengths or peepholes are given")


def _initial_states(call: OnnxCall, kind: str) -> list[tuple[Port, str]]:
    """The h_0 (and c_0) inputs: none where ONNX starts from zeros."""
    ports = ["h_0", "c_0"] if kind == "LSTM" else ["h_0"]
    given = [(call.inputs[i] if i < len(call.inputs) else None, port) for i, port in zip((5, 6), ports, strict=False)]
    if all(value is None or _zeros(value) for value, _ in given):
        return []
    return [(call.port(i), port) for i, (_, port) in zip((5, 6), given, strict=False)]


def _zeros(value: Any) -> bool:
    if isinstance(value, Symbolic):
        return all(not sample.any() for sample in value.samples)
    return isinstance(value, np.ndarray) and not value.any()


def _torch_weights(kind: str, weights_ih: np.ndarray, weights_hh: np.ndarray, bias: np.ndarray | None,
                   layer: int) -> dict[str, np.ndarray]:
    order, weights = _TORCH_GATES[kind], {}
    for direction in range(weights_ih.shape[0]):
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        weights[f"weight_ih{suffix}"] = _reorder(weights_ih[direction], order)
        weights[f"weight_hh{suffix}"] = _reorder(weights_hh[direction], order)
        if bias is not None:
            input_bias, hidden_bias = np.split(bias[direction], 2)
            weights[f"bias_ih{suffix}"] = _reorder(input_bias, order)
            weights[f"bias_hh{suffix}"] = _reorder(hidden_bias, order)
    return weights


def _reorder(rows: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    gates = np.split(rows, len(order))
    return np.ascontiguousarray(np.concatenate([gates[i] for i in order]))


def _stack_onto(call: OnnxCall, kind: str, base: Port, params: dict[str, Any],
                states: list[tuple[Port, str]]) -> str | None:
    """The node of the same module's previous layer, when this layer only continues it: its
    output feeds nothing else, neither layer's states are read or given."""
    previous = call.walker.recurrent.get(base.node)
    if previous is None or states or base.port != "output":
        return None
    module, _, state_outputs = previous
    node = call.walker.builder_node(base.node)
    same = {k: v for k, v in node.params.items() if k != "num_layers"} == params
    read = [name for name in (*state_outputs, *call.node.output[1:]) if name and call.walker.consumers[name]]
    used = any(edge.source.split(".")[0] == base.node for edge in call.walker.builder.edges)
    if module != call.name or node.type != kind or not same or read or used:
        return None
    return base.node


def _add_layer(call: OnnxCall, kind: str, node_id: str, weights: dict[str, np.ndarray]) -> str:
    import torch

    node = call.walker.builder_node(node_id)
    node.params["num_layers"] = node.params.get("num_layers", 1) + 1
    call.walker.builder.weights[node_id].update({k: torch.from_numpy(v) for k, v in weights.items()})
    first_input = call.walker.recurrent[node_id][1]
    call.walker.typed(kind, node_id, node.params, [(first_input, "input")])
    return node_id
