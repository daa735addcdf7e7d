"""Validation and shape inference in one pass: diagnostics, port types, parameter and FLOP counts.

Structure is checked on a networkx graph (wiring, cycles, reachability), then every node is
inferred in topological order from its catalogue declaration. Every problem is collected; a
node whose inputs are unknown is skipped quietly, since its upstream problem is already listed.
No torch import happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx

from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.errors import printable
from dlstudio.core.graph import Graph, Node, split_end
from dlstudio.core.params import ParamProblem, resolve_params
from dlstudio.core.spec import InferContext, LayerSpec, ShapeError
from dlstudio.core.tensor import MAX_ELEMENTS, TensorType, format_shape, is_known

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: where it is (node, port, parameter), what is wrong, and how to fix it."""

    severity: Severity
    node: str | None
    message: str
    fix: str = ""
    port: str | None = None
    param: str | None = None

    def one_line(self) -> str:
        where = f"{self.node}: " if self.node else ""
        fix = f" ({self.fix})" if self.fix else ""
        return f"{where}{self.message}{fix}"


@dataclass(frozen=True, slots=True)
class Link:
    """A resolved edge: both ends with explicit port names."""

    source: str
    source_port: str
    target: str
    target_port: str


@dataclass
class Analysis:
    """Everything known about a graph after validation and shape inference."""

    graph: Graph
    diagnostics: list[Diagnostic] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    ports: dict[tuple[str, str], TensorType] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    param_counts: dict[str, int] = field(default_factory=dict)
    flops: dict[str, int | None] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        return sum(self.param_counts.values())

    @property
    def trainable_params(self) -> int:
        return self.total_params

    @property
    def total_flops(self) -> int | None:
        values = [self.flops.get(n) for n in self.order if n in self.live]
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    def node_diagnostics(self, node_id: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.node == node_id]

    def inputs_of(self, node_id: str) -> list[Link]:
        return [link for link in self.links if link.target == node_id]

    def output_type(self, node_id: str, port: str | None = None) -> TensorType | None:
        spec = CATALOGUE.get(self.graph.node(node_id).type)
        if spec is None or not spec.outputs:
            return None
        return self.ports.get((node_id, port or spec.outputs[0]))

    def outputs(self) -> dict[str, TensorType]:
        """Output node id -> the type it returns."""
        found = {}
        for node in self.graph.nodes:
            if node.type == "Output" and (node.id, "output") in self.ports:
                found[node.id] = self.ports[(node.id, "output")]
        return found


def analyze(graph: Graph) -> Analysis:
    """Validate ``graph`` and infer every port's type; never raises on a bad graph."""
    result = Analysis(graph)
    nodes = {node.id: node for node in graph.nodes}
    _check_unknown(graph, nodes, result)
    result.links = _resolve_links(graph, nodes, result)
    structure = _structure(nodes, result)
    _infer_all(nodes, structure, result)
    if graph.training is not None:
        from dlstudio.core.training import check_training

        result.diagnostics += check_training(graph.training, result)
    return result


def _report(result: Analysis, severity: Severity, node: str | None, message: str, fix: str = "",
            port: str | None = None, param: str | None = None) -> None:
    result.diagnostics.append(Diagnostic(severity, node, message, fix, port, param))


def _check_unknown(graph: Graph, nodes: dict[str, Node], result: Analysis) -> None:
    for node in graph.nodes:
        if node.type not in CATALOGUE:
            _report(result, "error", node.id, f"unknown layer type '{printable(node.type, 60)}'",
                    "replace it with a layer from the palette; its parameters are kept")
    for node_id, key in graph.unknown_keys():
        _report(result, "warning", node_id, f"unknown key '{printable(key, 60)}' is kept but not used",
                "check the spelling, or open the file with a newer DL Studio")
    if not any(n.type == "Input" for n in graph.nodes):
        _report(result, "error", None, "the graph has no Input node", "add an Input node")
    if not any(n.type == "Output" for n in graph.nodes):
        _report(result, "error", None, "the graph has no Output node", "add an Output node")


def _resolve_links(graph: Graph, nodes: dict[str, Node], result: Analysis) -> list[Link]:
    links: list[Link] = []
    taken: dict[tuple[str, str], str] = {}
    for edge in graph.edges:
        source = _resolve_end(edge.source, nodes, result, is_source=True)
        target = _resolve_end(edge.target, nodes, result, is_source=False)
        if source is None or target is None:
            continue
        link = Link(source[0], source[1], target[0], target[1])
        key = (link.target, link.target_port)
        if key in taken:
            _report(result, "error", link.target,
                    f"port '{link.target_port}' has two incoming edges (from '{taken[key]}' "
                    f"and '{link.source}')", "remove one of the edges", link.target_port)
            continue
        taken[key] = link.source
        links.append(link)
    return links


def _resolve_end(end: str, nodes: dict[str, Node], result: Analysis,
                 is_source: bool) -> tuple[str, str] | None:
    node_id, port = split_end(end)
    role = "source" if is_source else "target"
    if node_id not in nodes:
        _report(result, "error", None, f"edge {role} '{printable(end)}' names no node",
                "delete the edge or create the node")
        return None
    spec = CATALOGUE.get(nodes[node_id].type)
    if spec is None:
        return None
    if is_source:
        ports: tuple[str, ...] = _output_ports(spec, nodes[node_id])
        known = port in ports
    else:
        ports = spec.input_ports()
        known = port is not None and spec.accepts_input(port)
    if port is None:
        if len(ports) == 1 and not (spec.variadic and not is_source):
            return node_id, ports[0]
        if not ports:
            _report(result, "error", node_id, f"{spec.type} '{node_id}' has no {'outputs' if is_source else 'inputs'}",
                    "delete the edge")
            return None
        _report(result, "error", node_id,
                f"edge {role} '{printable(end)}' must name a port: {spec.type} has " + ", ".join(ports[:4])
                + (", ..." if spec.variadic else ""), f"use '{node_id}.{ports[0]}'")
        return None
    if not known:
        _report(result, "error", node_id, f"{spec.type} '{node_id}' has no port '{printable(port, 40)}'",
                "connect to one of: " + ", ".join(ports) + (", ..." if spec.variadic and not is_source else ""),
                printable(port, 40))
        return None
    return node_id, port


def _output_ports(spec: LayerSpec, node: Node) -> tuple[str, ...]:
    """The node's output ports; the declared ones while its parameters are invalid."""
    try:
        return spec.output_ports(resolve_params(spec, node.params))
    except ParamProblem:
        return spec.outputs


@dataclass
class _Structure:
    order: list[str]
    blocked: set[str]


def _structure(nodes: dict[str, Node], result: Analysis) -> _Structure:
    digraph = nx.DiGraph()
    digraph.add_nodes_from(nodes)
    digraph.add_edges_from((link.source, link.target) for link in result.links)
    blocked: set[str] = set()
    for component in nx.strongly_connected_components(digraph):
        first = next(iter(component))
        if len(component) > 1 or digraph.has_edge(first, first):
            cycle = [u for u, _ in nx.find_cycle(digraph.subgraph(component))]
            start = min(cycle)
            shift = cycle.index(start)
            path = cycle[shift:] + cycle[:shift] + [start]
            _report(result, "error", start, "cycle: " + " -> ".join(path),
                    "remove one edge of the cycle (networks are acyclic; use a recurrent layer for loops)")
            blocked |= component
    for node in list(blocked):
        blocked |= nx.descendants(digraph, node)
    outputs = [n for n, node in nodes.items() if node.type == "Output"]
    live = set(outputs)
    for out in outputs:
        live |= nx.ancestors(digraph, out)
    result.live = live
    for node_id, node in nodes.items():
        if node_id not in live and node.type != "Output" and outputs:
            _report(result, "warning", node_id, f"'{node_id}' does not reach any Output",
                    "connect it, or delete it")
    acyclic = digraph.subgraph(n for n in digraph if n not in blocked)
    order = list(nx.lexicographical_topological_sort(acyclic, key=_file_position(nodes)))
    result.order = order
    return _Structure(order, blocked)


def _file_position(nodes: dict[str, Node]) -> Any:
    index = {node_id: i for i, node_id in enumerate(nodes)}
    return index.__getitem__


def _infer_all(nodes: dict[str, Node], structure: _Structure, result: Analysis) -> None:
    incoming: dict[str, list[Link]] = {}
    for link in result.links:
        incoming.setdefault(link.target, []).append(link)
    for node_id in structure.order:
        node = nodes[node_id]
        spec = CATALOGUE.get(node.type)
        if spec is not None:
            _infer_node(node, spec, incoming.get(node_id, []), result)


def _infer_node(node: Node, spec: LayerSpec, links: list[Link], result: Analysis) -> None:
    try:
        params = resolve_params(spec, node.params)
    except ParamProblem as problem:
        _report(result, "error", node.id, f"{spec.type} '{node.id}': {problem.message}",
                "change or remove the value", param=problem.param)
        return
    result.params[node.id] = params
    inputs = _gather_inputs(node, spec, links, result)
    if inputs is None:
        return
    context = InferContext(node.id, spec, params, inputs, {l.target_port: l.source for l in links})
    try:
        produced = spec.infer(context)
        context.outputs = produced if isinstance(produced, dict) else {spec.outputs[0]: produced}
        _check_size(context)
        result.param_counts[node.id] = spec.count_params(context) if spec.count_params else 0
        result.flops[node.id] = spec.flops(context) if spec.flops else 0
    except ShapeError as error:
        _report(result, "error", node.id, error.message, error.fix, error.port)
        return
    for message, fix in context.warnings:
        _report(result, "warning", node.id, message, fix)
    for port, tensor in context.outputs.items():
        result.ports[(node.id, port)] = tensor


def _gather_inputs(node: Node, spec: LayerSpec, links: list[Link],
                   result: Analysis) -> dict[str, TensorType] | None:
    by_port = {link.target_port: link for link in links}
    count = len(by_port)
    if spec.variadic:
        count = max([int(p[2:]) + 1 for p in by_port] + [spec.variadic])
    inputs: dict[str, TensorType] = {}
    complete = True
    for port in spec.input_ports(count):
        link = by_port.get(port)
        if link is None:
            if port not in spec.optional_inputs:
                _report(result, "error", node.id, f"{spec.type} '{node.id}' has nothing connected to '{port}'",
                        f"connect a node to {node.id}.{port}", port)
                complete = False
            continue
        tensor = result.ports.get((link.source, link.source_port))
        if tensor is None:
            complete = False
        else:
            inputs[port] = tensor
    return inputs if complete else None


def _check_size(context: InferContext) -> None:
    for tensor in context.outputs.values():
        dims = tensor.shape[1:]
        if any(isinstance(d, int) and d < 0 for d in dims) or any(d == 0 for d in dims):
            context.fail(f"{context.where} would output an empty or negative shape {format_shape(tensor.shape)}",
                         "use a smaller kernel or stride, more padding, or a larger input")
        known = [d for d in dims if isinstance(d, int)]
        total = 1
        for d in known:
            total *= d
        if total > MAX_ELEMENTS and is_known(*known):
            context.fail(f"{context.where} would output {format_shape(tensor.shape)}: over 2^31 elements per sample",
                         "use smaller sizes")
