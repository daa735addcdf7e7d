"""ONNX ``LSTM`` and ``GRU`` nodes as the catalogue's batch-first recurrent layers.

torch.onnx writes a batch-first ``nn.LSTM`` as ``Transpose`` to time-major, one ONNX ``LSTM``
per layer, then ``Squeeze`` (or ``Transpose`` and ``Reshape``) and ``Transpose`` back: views
(:mod:`dlstudio.interop.onnx_views`) of the batch-first sequence, for which no layer is made.
The layers of one module stack into one node (``num_layers``) where nothing reads between them.
Weights are reordered from ONNX's gates (LSTM ``i o f c``, GRU ``z r h``) to torch's
(``i f g o``, ``r z n``); ONNX's one bias per gate row pair becomes ``bias_ih`` and ``bias_hh``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Unmappable
from dlstudio.interop.onnx_calls import OnnxCall, register
from dlstudio.interop.onnx_values import Laid, Symbolic
from dlstudio.interop.onnx_views import laid

#: For each torch gate in torch's order, the index of that gate in ONNX's order.
_TORCH_GATES = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2)}
_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


@dataclass(frozen=True)
class RecurrentNode:
    """A recurrent node made: what another layer of its module needs to stack onto it."""

    module: str
    first_input: Port
    state_outputs: tuple[str, ...]
    stateful: bool


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
    if stacked is None:
        weights = _torch_weights(kind, weights_ih, weights_hh, bias, 0)
        node = call.add(kind, params, [(sequence.base, "input"), *states], weights).node
        made = RecurrentNode(call.name, sequence.base, (), bool(states))
    else:
        node, made = _add_layer(call, kind, stacked, _torch_weights(kind, weights_ih, weights_hh, bias, stacked[1]))
    call.walker.recurrent[node] = RecurrentNode(made.module, made.first_input,
                                                tuple(name for name in call.node.output[1:] if name), made.stateful)
    output = laid(call, Port(node), "TDNH", directions)
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
                states: list[tuple[Port, str]]) -> tuple[str, int] | None:
    """The node of the same module's previous layer and the number of layers it has, when
    this layer only continues it: nothing else reads its output, no layer's states are given
    or read."""
    previous = call.walker.recurrent.get(base.node)
    if previous is None or states or previous.stateful or base.port != "output":
        return None
    node = call.walker.builder_node(base.node)
    same = {k: v for k, v in node.params.items() if k != "num_layers"} == params
    read = [name for name in (*previous.state_outputs, *call.node.output[1:]) if name and call.walker.consumers[name]]
    used = any(edge.source.split(".")[0] == base.node for edge in call.walker.builder.edges)
    if previous.module != call.name or node.type != kind or not same or read or used:
        return None
    return base.node, node.params.get("num_layers", 1)


def _add_layer(call: OnnxCall, kind: str, stacked: tuple[str, int],
               weights: dict[str, np.ndarray]) -> tuple[str, RecurrentNode]:
    """One more layer on the node ``stacked`` names: its parameters, weights and types."""
    import torch

    node_id, layers = stacked
    node, made = call.walker.builder_node(node_id), call.walker.recurrent[node_id]
    node.params["num_layers"] = layers + 1
    call.walker.builder.weights[node_id].update({k: torch.from_numpy(v) for k, v in weights.items()})
    call.walker.typed(kind, node_id, node.params, [(made.first_input, "input")])
    return node_id, made
