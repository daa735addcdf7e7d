"""What every importer builds: a flat graph of catalogue nodes, their weights, and a tally.

An importer (:mod:`dlstudio.interop.pytorch`, :mod:`dlstudio.interop.onnx`) walks a model and
calls :class:`GraphBuilder` once per node; the builder makes the node ids legal and unique,
keeps each node's weights under its module's own keys, turns what cannot be mapped into an
``Unsupported`` node, and lays the result out. :func:`write_weights` then keys the weights
the way the compiled graph's ``state_dict`` names them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlstudio.core.catalogue import BUILTINS
from dlstudio.core.graph import MAX_ID_LENGTH, Edge, Graph, Node
from dlstudio.core.layout import layered_layout

#: Longest id the builder makes before adding a ``_2`` style suffix.
_STEM_LENGTH = MAX_ID_LENGTH - 6


@dataclass(frozen=True)
class Port:
    """An output port of a node in the graph being built."""

    node: str
    port: str = "output"



@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, its shape without the batch (a name is a variable size), dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"


@dataclass
class ImportResult:
    """An imported graph, each node's weights (by the node's module keys) and what was mapped."""

    graph: Graph
    weights: dict[str, dict[str, torch.Tensor]]
    mapped: Counter[str]
    unsupported: list[str]
    folded: int = 0
    shared: dict[str, int] = field(default_factory=dict)
    #: Of ``shared``, the modules whose later calls tie to the first call's parameters.
    tied: set[str] = field(default_factory=set)
    #: What the graph keeps of the model's structure (its blocks), for the summary.
    structure: str = ""

    def summary(self) -> str:
        """One line: how many operations became which layers, and which could not be mapped."""
        total = sum(self.mapped.values())
        kinds = ", ".join(f"{name} {count}" for name, count in self.mapped.most_common())
        text = f"mapped {total} operations to layers ({kinds})"
        if self.folded:
            text += f", folded {self.folded} shape computations"
        if not self.unsupported:
            text += "; nothing unsupported"
        else:
            shown = "; ".join(self.unsupported[:3]) + ("; ..." if len(self.unsupported) > 3 else "")
            text += f"; {len(self.unsupported)} unsupported, shown as Unsupported nodes: {shown}"
        for name, calls in self.shared.items():
            how = "tied: one tensor each" if name in self.tied else "copied to each"
            text += f"; the weights of {name}, shared by {calls} calls, are {how}"
        return f"{text}; {self.structure}" if self.structure else text


def node_id_from(name: str) -> str:
    """A legal node id from a source name: ``layer1.0.conv1`` -> ``layer1_0_conv1``."""
    cleaned = re.sub(r"[^0-9A-Za-z_]", "_", name, flags=re.ASCII).strip("_") or "node"
    if cleaned[0].isdigit():
        cleaned = "n" + cleaned
    return cleaned[:_STEM_LENGTH]


@dataclass
class GraphBuilder:
    """Collects nodes and edges in the order an importer visits them."""

    name: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    weights: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    mapped: Counter[str] = field(default_factory=Counter)
    unsupported: list[str] = field(default_factory=list)
    folded: int = 0
    _taken: set[str] = field(default_factory=set)
    _types: dict[str, str] = field(default_factory=dict)
    _weighted: Counter[str] = field(default_factory=Counter)
    _first: dict[str, str] = field(default_factory=dict)
    _tied: set[str] = field(default_factory=set)
    #: Set by the importer before each operation it maps: the module calls that made it,
    #: outermost first (see :mod:`dlstudio.interop.repeats`).
    scope: tuple[Any, ...] = ()
    #: Each node's ``scope`` and the name it was asked for.
    origins: dict[str, tuple[tuple[Any, ...], str]] = field(default_factory=dict)

    def fresh_id(self, wanted: str) -> str:
        base = node_id_from(wanted)
        candidate, counter = base, 2
        while candidate in self._taken:
            candidate = f"{base}_{counter}"
            counter += 1
        self._taken.add(candidate)
        return candidate

    def add(self, type_name: str, wanted_id: str, params: Mapping[str, Any],
            inputs: Sequence[tuple[Port, str]] = (), label: str | None = None,
            weights: Mapping[str, torch.Tensor] | None = None) -> str:
        """Add a node fed by ``inputs`` (``(source port, input port name)`` pairs); its id."""
        node_id = self.fresh_id(wanted_id)
        self._types[node_id] = type_name
        self.origins[node_id] = (self.scope, wanted_id)
        tie = self._tie_to_first_call(type_name, label or node_id, weights)
        self.nodes.append(Node(id=node_id, type=type_name, params=dict(params),
                               label=label if label and label != node_id else None, tie=tie))
        for source, port in inputs:
            self.edges.append(Edge(source=self._end(source.node, source.port, False),
                                   target=self._end(node_id, port, True)))
        if weights:
            self.weights[node_id] = {key: value.detach().clone() for key, value in weights.items()}
            self._weighted[label or node_id] += 1
            self._first.setdefault(label or node_id, node_id)
        if type_name not in ("Input", "Output"):
            self.mapped[type_name] += 1
        return node_id

    def _tie_to_first_call(self, type_name: str, module: str,
                           weights: Mapping[str, torch.Tensor] | None) -> dict[str, str] | None:
        """A module called again shares the first call's parameters, where its layer type
        declares them (Linear, Embedding, convolutions); others get a copy."""
        first = self._first.get(module)
        if first is None or not weights or BUILTINS[type_name].weights is None:
            return None
        self._tied.add(module)
        return {key: f"{first}.{key}" for key in weights}

    def _end(self, node_id: str, port: str, is_target: bool) -> str:
        """``node`` where the port is the node's only one of its side, else ``node.port``."""
        spec = BUILTINS[self._types[node_id]]
        ports = spec.inputs if is_target and not spec.variadic else () if is_target else spec.outputs
        return node_id if ports == (port,) else f"{node_id}.{port}"

    def add_unsupported(self, operation: str, source: str, wanted_id: str,
                        inputs: Sequence[Port], label: str | None = None) -> str:
        """An ``Unsupported`` node wired to ``inputs``, noted for the summary."""
        node_id = self.add("Unsupported", wanted_id, {"operation": operation, "source": source},
                           [(port, f"in{index}") for index, port in enumerate(inputs)], label)
        self.mapped["Unsupported"] -= 1
        self.unsupported.append(f"{operation} ({source})" if source else operation)
        return node_id

    def finish(self) -> ImportResult:
        """The graph, laid out left to right, with its weights and tally."""
        graph = Graph(name=self.name[:200], nodes=self.nodes, edges=self.edges)
        for node_id, (x, y) in layered_layout(graph, catalogue=BUILTINS).items():
            graph.node(node_id).position = (x, y)
        shared = {name: calls for name, calls in self._weighted.items() if calls > 1}
        return ImportResult(graph, self.weights, +self.mapped, self.unsupported, self.folded, shared,
                            self._tied & set(shared))


def compiled_with_weights(result: ImportResult) -> torch.nn.Module:
    """The compiled graph holding the imported weights (raises if the graph is invalid or a
    node's weights do not fit its module exactly)."""
    from dlstudio.core.analysis import analyze
    from dlstudio.core.codegen import plan_module
    from dlstudio.core.compiler import build_module

    plan = plan_module(analyze(result.graph))
    module = build_module(plan)
    attributes = {sub.node_id: sub.attr for sub in plan.submodules}
    for node_id, tensors in result.weights.items():
        getattr(module, attributes[node_id]).load_state_dict(tensors, strict=True)
    return module.eval()


def write_weights(result: ImportResult, path: Path) -> int:
    """Write the weights as safetensors keyed like the compiled graph's ``state_dict``; the
    number of tensors written."""
    from safetensors.torch import save_file

    state = compiled_with_weights(result).state_dict()
    save_file({key: value.detach().to("cpu", copy=True).contiguous() for key, value in state.items()}, str(path))  # tied: copies
    return len(state)
