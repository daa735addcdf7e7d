"""The wiring of a graph: edges resolved to ports, the evaluation order, cycles, liveness.

Port ends are resolved here only: analysis resolves every edge (:func:`resolve_links`,
reporting what does not resolve) and the editor asks about one end (:func:`resolve_end`) or
names one (:func:`end_name`), by the same rules.

The common case (an acyclic graph) is handled with plain dicts and a heap, so a 1,000-node
graph is ordered in about a millisecond; networkx names the cycles when there are any (it is
imported then, which keeps a tenth of a second off every start-up).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import NamedTuple

from dlstudio.core.catalogue import BUILTINS, Catalogue, catalogue_for
from dlstudio.core.errors import printable
from dlstudio.core.graph import Graph, split_end
from dlstudio.core.params import output_ports_of
from dlstudio.core.spec import MAX_VARIADIC_INPUTS, LayerSpec

#: ``report(severity, node, message, fix="", port=None)``
Report = Callable[..., None]


class Link(NamedTuple):
    """A resolved edge: both ends with explicit port names (a tuple: cheap to make by the
    thousand)."""

    source: str
    source_port: str
    target: str
    target_port: str


def resolve_links(graph: Graph, specs: dict[str, LayerSpec | None],
                  output_ports: Callable[[str], tuple[str, ...]],
                  report: Report) -> tuple[list[Link], set[tuple[str, str]]]:
    """Every edge whose two ends name a known node and port (two edges into one port refused),
    and the ``(node, port)`` inputs whose edge has a source that could not be resolved (their
    node is then not reported as unconnected: the edge's own problem is)."""
    links: list[Link] = []
    dangling: set[tuple[str, str]] = set()
    taken: dict[tuple[str, str], str] = {}
    sources, targets = _simple_ends(specs, output_ports)
    for edge in graph.edges:
        source = sources.get(edge.source) or _end_port(edge.source, specs, output_ports, report, True)
        target = targets.get(edge.target) or _end_port(edge.target, specs, output_ports, report, False)
        if source is None and target is not None:
            dangling.add(target)
        if source is None or target is None:
            continue
        link = Link(source[0], source[1], target[0], target[1])
        key = (link.target, link.target_port)
        if key in taken:
            report("error", link.target,
                   f"port '{link.target_port}' has two incoming edges (from '{taken[key]}' "
                   f"and '{link.source}')", "remove one of the edges", link.target_port)
            continue
        taken[key] = link.source
        links.append(link)
    return links, dangling


def _simple_ends(specs: dict[str, LayerSpec | None], output_ports: Callable[[str], tuple[str, ...]],
                 ) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """Bare source and target ends of single-port nodes, resolved once (the common case)."""
    sources: dict[str, tuple[str, str]] = {}
    targets: dict[str, tuple[str, str]] = {}
    for node_id, spec in specs.items():
        if spec is None:
            continue
        outputs = spec.outputs if spec.output_rule is None else output_ports(node_id)
        if len(outputs) == 1:
            sources[node_id] = (node_id, outputs[0])
        if len(spec.inputs) == 1 and not spec.variadic:
            targets[node_id] = (node_id, spec.inputs[0])
    return sources, targets


def _end_port(end: str, specs: dict[str, LayerSpec | None],
                 output_ports: Callable[[str], tuple[str, ...]], report: Report,
                 is_source: bool) -> tuple[str, str] | None:
    node_id, port = split_end(end)
    role = "source" if is_source else "target"
    if node_id not in specs:
        report("error", None, f"edge {role} '{printable(end)}' names no node",
               "delete the edge or create the node")
        return None
    spec = specs[node_id]
    if spec is None:
        return None
    if port is not None and (port in output_ports(node_id) if is_source else spec.accepts_input(port)):
        return node_id, port
    ports = output_ports(node_id) if is_source else spec.input_ports()  # listed only when needed
    if port is None:
        return _bare_end(end, node_id, spec, ports, is_source, report)
    more = (f", ... in{MAX_VARIADIC_INPUTS - 1} (at most {MAX_VARIADIC_INPUTS} inputs, "
            "MAX_VARIADIC_INPUTS)") if spec.variadic and not is_source else ""
    report("error", node_id, f"{spec.type} '{node_id}' has no port '{printable(port, 40)}'",
           "connect to one of: " + ", ".join(ports) + more, printable(port, 40))
    return None


def _bare_end(end: str, node_id: str, spec: LayerSpec, ports: tuple[str, ...], is_source: bool,
              report: Report) -> tuple[str, str] | None:
    """A bare ``node`` end: the node's only port, or a diagnostic."""
    if len(ports) == 1 and not (spec.variadic and not is_source):
        return node_id, ports[0]
    role = "source" if is_source else "target"
    if not ports:
        report("error", node_id, f"{spec.type} '{node_id}' has no {'outputs' if is_source else 'inputs'}",
               "delete the edge")
        return None
    report("error", node_id,
           f"edge {role} '{printable(end)}' must name a port: {spec.type} has " + ", ".join(ports[:4])
           + (", ..." if spec.variadic else ""), f"use '{node_id}.{ports[0]}'")
    return None


def resolve_end(graph: Graph, end: str, is_source: bool,
                catalogue: Catalogue | None = None) -> tuple[str, str] | None:
    """``(node, port)`` named by an edge end of ``graph``, or None when it names nothing that
    exists (as analysis resolves it, without reporting). An end on a node of unknown type keeps
    the port it names, so a missing layer keeps its edges. Types are looked up in ``catalogue``
    (default: the graph's)."""
    node_id, port = split_end(end)
    node = next((n for n in graph.nodes if n.id == node_id), None)
    if node is None:
        return None
    spec = (catalogue_for(graph) if catalogue is None else catalogue).get(node.type)
    if spec is None:
        return (node_id, port) if port else None
    return _end_port(end, {node_id: spec}, lambda _: output_ports_of(spec, node.params), _quiet, is_source)


def _quiet(*args: object, **kwargs: object) -> None:
    """A :data:`Report` that keeps nothing."""


def end_name(type_name: str, node_id: str, port: str, is_source: bool,
             catalogue: Catalogue = BUILTINS) -> str:
    """The shortest end that names ``node.port``: the bare id when the node has one such port."""
    spec = catalogue.get(type_name)
    if spec is not None:
        ports = spec.outputs if is_source else spec.inputs
        if ports == (port,) and not (spec.variadic and not is_source):
            return node_id
    return f"{node_id}.{port}"


def first_ports(type_name: str, catalogue: Catalogue = BUILTINS) -> tuple[str | None, str | None]:
    """The first input and first output port of a layer type (None where it has none)."""
    spec = catalogue.get(type_name)
    if spec is None:
        return None, None
    inputs = spec.input_ports()
    return (inputs[0] if inputs else None), (spec.outputs[0] if spec.outputs else None)


def evaluation_order(node_ids: list[str], links: list[Link], report: Report) -> list[str]:
    """Nodes in topological order, ties broken by file position; nodes in or after a cycle
    are left out and each cycle is reported once."""
    position = {node_id: i for i, node_id in enumerate(node_ids)}
    waiting = dict.fromkeys(node_ids, 0)
    after: dict[str, list[str]] = {node_id: [] for node_id in node_ids}
    for link in links:
        waiting[link.target] += 1
        after[link.source].append(link.target)
    ready = [position[n] for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node_id = node_ids[heapq.heappop(ready)]
        order.append(node_id)
        for target in after[node_id]:
            waiting[target] -= 1
            if waiting[target] == 0:
                heapq.heappush(ready, position[target])
    if len(order) < len(node_ids):
        placed = set(order)
        _report_cycles([n for n in node_ids if n not in placed], links, report)
    return order


def _report_cycles(stuck: list[str], links: list[Link], report: Report) -> None:
    import networkx as nx

    digraph = nx.DiGraph()
    digraph.add_nodes_from(stuck)
    members = set(stuck)
    digraph.add_edges_from((link.source, link.target) for link in links
                           if link.source in members and link.target in members)
    for component in nx.strongly_connected_components(digraph):
        first = next(iter(component))
        if len(component) > 1 or digraph.has_edge(first, first):
            cycle = [u for u, _ in nx.find_cycle(digraph.subgraph(component))]
            start = min(cycle)
            shift = cycle.index(start)
            path = cycle[shift:] + cycle[:shift] + [start]
            report("error", start, "cycle: " + " -> ".join(path),
                   "remove one edge of the cycle (networks are acyclic; use a recurrent layer for loops)")


def live_nodes(outputs: list[str], links: list[Link]) -> set[str]:
    """The Output nodes and every node they depend on."""
    before: dict[str, list[str]] = {}
    for link in links:
        before.setdefault(link.target, []).append(link.source)
    live = set(outputs)
    stack = list(outputs)
    while stack:
        for source in before.get(stack.pop(), ()):
            if source not in live:
                live.add(source)
                stack.append(source)
    return live
