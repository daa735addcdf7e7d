"""Edits that restructure a graph around its blocks: group nodes into a block, ungroup a block
node back into plain nodes, and give one use of a block its own copy of the definition.

Each function takes a :class:`Graph` and returns a new one (the argument is left as it was),
or raises :class:`BlockEditError` saying why the edit cannot be made. A block's own graph is
edited the same way through :func:`block_as_graph` and :func:`with_block_graph`. The editor
turns each into one undo step.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

from dlstudio.core.analysis import analyze
from dlstudio.core.blocks import (
    EXPRESSION_MARK,
    INDEX,
    MAX_BLOCK_DEPTH,
    REPEAT,
    BlockSpec,
    ExpressionError,
    copy_environment,
    evaluate,
    expression_text,
    instance_graph,
    is_expression,
    names_in,
)
from dlstudio.core.catalogue import BUILTINS, Catalogue, catalogue_for
from dlstudio.core.findings import Analysis
from dlstudio.core.graph import Block, Edge, Graph, Node, is_valid_id, split_end
from dlstudio.core.layout import estimate_box
from dlstudio.core.wiring import resolve_end

#: How far a grouped block's Input and Output nodes keep from its other nodes (and each other).
PORT_GAP = 250.0
#: Room between the copies of an ungrouped repeat.
COPY_GAP = 80.0
#: Node types that are a graph's own ports and cannot go into a block.
PORT_TYPES = ("Input", "Output")

End = tuple[str, str]


class BlockEditError(ValueError):
    """Why a block edit cannot be made, in words for the user."""


# ----- a block's graph as a graph ------------------------------------------------------------

def block_as_graph(graph: Graph, name: str) -> Graph:
    """Block ``name`` of ``graph`` as a graph of its own, with the file's other blocks in scope
    (a block cannot use itself)."""
    block = _block(graph, name)
    others = {key: value for key, value in (graph.blocks or {}).items() if key != name}
    return Graph(name=name, nodes=block.nodes, edges=block.edges, blocks=others or None).copy_deep()


def with_block_graph(graph: Graph, name: str, inner: Graph) -> Graph:
    """``graph`` with block ``name`` holding ``inner``'s nodes and edges, and ``inner``'s blocks
    (an edit inside a block may add or remove blocks) as the file's."""
    if name in (inner.blocks or {}):
        raise BlockEditError(f"'{name}' is the block being edited: choose another name")
    result = graph.copy_deep()
    blocks = {key: value.model_copy(deep=True) for key, value in (inner.blocks or {}).items()}
    old = _block(graph, name)
    blocks[name] = old.model_copy(deep=True, update={"nodes": [n.model_copy(deep=True) for n in inner.nodes],
                                                       "edges": [e.model_copy(deep=True) for e in inner.edges]})
    result.blocks = blocks or None
    return result


def _block(graph: Graph, name: str) -> Block:
    block = (graph.blocks or {}).get(name)
    if block is None:
        raise BlockEditError(f"the file has no block '{name}'")
    return block


def inner_analysis(analysis: Analysis, name: str) -> Analysis:
    """What block ``name`` computes where it is first used: the analysis of that use's first
    copy, found in ``analysis`` or in the analyses of the blocks it holds. A block that no
    use analysed is analysed alone, with its parameters' defaults and untyped inputs."""
    level = [analysis]
    for _ in range(MAX_BLOCK_DEPTH + 1):
        deeper = []
        for outer in level:
            for node_id, copies in outer.blocks.items():
                if outer.graph.node(node_id).type == name:
                    return copies[0].analysis
                deeper += [copy.analysis for copy in copies[:1]]
        level = deeper
    return _alone(analysis.catalogue, name)


def _alone(catalogue: Catalogue, name: str) -> Analysis:
    spec = catalogue.get(name)
    if not isinstance(spec, BlockSpec):
        return analyze(Graph(name=name), catalogue)
    try:
        graph = instance_graph(spec, copy_environment(spec, {}, 0), name)
    except ExpressionError:
        graph = Graph(name=name, nodes=spec.block.nodes, edges=spec.block.edges)
    return analyze(graph, catalogue)


def block_uses(graph: Graph, name: str) -> list[tuple[str | None, str]]:
    """``(block or None for the top graph, node id)`` of every node whose type is ``name``."""
    uses: list[tuple[str | None, str]] = [(None, n.id) for n in graph.nodes if n.type == name]
    for owner, block in (graph.blocks or {}).items():
        uses += [(owner, n.id) for n in block.nodes if n.type == name]
    return uses


def free_block_name(graph: Graph, base: str, catalogue: Catalogue = BUILTINS) -> str:
    """``base`` (made a legal name) or ``base_2``, ``base_3``...: no block or layer type has it."""
    stem = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base) or "Block"
    stem = stem if is_valid_id(stem) else f"B_{stem}"[:60]
    taken = set(graph.blocks or {}) | set(catalogue)
    if stem not in taken:
        return stem
    index = 2
    while f"{stem}_{index}" in taken:
        index += 1
    return f"{stem}_{index}"


def _free_id(base: str, taken: set[str]) -> str:
    stem = base if is_valid_id(base) else f"n_{base}"[:60]
    if stem not in taken:
        return stem
    index = 1
    while f"{stem}_{index}" in taken:
        index += 1
    return f"{stem}_{index}"


# ----- group -----------------------------------------------------------------------------------

def group_into_block(graph: Graph, node_ids: Iterable[str], name: str) -> Graph:
    """``graph`` with the nodes ``node_ids`` moved into a new block ``name`` used by one node.

    The block gets an Input per distinct outside source feeding the nodes and an Output per
    port of theirs read from outside; the edges are rewired to the block node's ports
    (``node.port``), which sits at the nodes' centre.
    """
    chosen = [n for n in graph.nodes if n.id in set(node_ids)]
    _check_group(graph, chosen, name)
    ids = {n.id for n in chosen}
    catalogue = catalogue_for(graph)
    inside, incoming, outgoing = _split_edges(graph, ids, catalogue)
    texts = _source_texts(graph, ids, catalogue)
    taken = set(ids)
    inputs = _port_ids(sorted({source for source, _ in incoming}, key=_order_of(incoming)), "x", taken)
    outputs = _port_ids(sorted({source for source, _ in outgoing}, key=_order_of(outgoing)), "y", taken)
    block = Block(nodes=_block_nodes(chosen, inputs, outputs), edges=[
        *inside, *(Edge(source=inputs[src], target=dst) for src, dst in incoming),
        *(Edge(source=texts[src], target=outputs[src]) for src in outputs)])
    use = Node(id=_free_id(name.lower(), set(graph.node_ids()) - ids), type=name,
               position=_centre(chosen))
    edges = _rewired(graph, ids, use.id, inputs, outputs, catalogue)
    first = graph.nodes.index(chosen[0])
    nodes = [n for n in graph.nodes[:first] if n.id not in ids] + [use] + \
        [n for n in graph.nodes[first:] if n.id not in ids]
    result = graph.copy_deep()
    result.nodes, result.edges = [n.model_copy(deep=True) for n in nodes], edges
    result.blocks = {**(result.blocks or {}), name: block}
    return result


def _check_group(graph: Graph, chosen: list[Node], name: str) -> None:
    if not chosen:
        raise BlockEditError("select the nodes to group into a block")
    ports = [n.id for n in chosen if n.type in PORT_TYPES]
    if ports:
        raise BlockEditError(f"'{ports[0]}' is an Input or Output of the graph: leave it out of the block")
    if not is_valid_id(name):
        raise BlockEditError(f"'{name[:60]}' is not a legal block name: use letters, digits and _, "
                             "not starting with a digit")
    if name in (graph.blocks or {}) or name in BUILTINS:
        raise BlockEditError(f"'{name}' is already a layer type or block: choose another name")
    ids = {n.id for n in chosen}
    for node in graph.nodes:
        for reference in (node.tie or {}).values():
            if (node.id in ids) != (reference.rpartition(".")[0] in ids):
                raise BlockEditError(f"'{node.id}' ties a parameter across the block's boundary: "
                                     "group both nodes of the tie or neither")


def _split_edges(graph: Graph, ids: set[str], catalogue: Catalogue
                 ) -> tuple[list[Edge], list[tuple[End, str]], list[tuple[End, str]]]:
    """The edges inside the selection, and the incoming and outgoing ones as ``(source port,
    target end)``."""
    inside, incoming, outgoing = [], [], []
    for edge in graph.edges:
        into, out_of = edge.target_node in ids, edge.source_node in ids
        if into and out_of:
            inside.append(edge.model_copy(deep=True))
        elif into or out_of:
            pairs = incoming if into else outgoing
            pairs.append((_resolved_source(graph, edge.source, catalogue), edge.target))
    return inside, incoming, outgoing


def _rewired(graph: Graph, ids: set[str], use: str, inputs: dict[End, str], outputs: dict[End, str],
             catalogue: Catalogue) -> list[Edge]:
    """The outer graph's edges, those crossing the selection's boundary led to the block
    node's ports in their places (several into the selection from one source become one)."""
    edges, fed = [], set()
    for edge in graph.edges:
        into, out_of = edge.target_node in ids, edge.source_node in ids
        if into and out_of:
            continue
        if into:
            source = _resolved_source(graph, edge.source, catalogue)
            if source not in fed:
                fed.add(source)
                edges.append(Edge(source=edge.source, target=f"{use}.{inputs[source]}"))
        elif out_of:
            source = _resolved_source(graph, edge.source, catalogue)
            edges.append(Edge(source=f"{use}.{outputs[source]}", target=edge.target))
        else:
            edges.append(edge.model_copy(deep=True))
    return edges


def _order_of(pairs: list[tuple[End, str]]) -> Any:
    first = {}
    for place, (source, _) in enumerate(pairs):
        first.setdefault(source, place)
    return first.__getitem__


def _port_ids(sources: list[End], base: str, taken: set[str]) -> dict[End, str]:
    """A block port id per source: ``x`` for a lone one, else named after the source."""
    names: dict[End, str] = {}
    for source in sources:
        wanted = base if len(sources) == 1 else f"{base}_{source[0]}" + (
            "" if source[1] == "output" else f"_{source[1]}")
        names[source] = _free_id(wanted[:60], taken)
        taken.add(names[source])
    return names


def _resolved_source(graph: Graph, end: str, catalogue: Catalogue) -> End:
    node, port = resolve_end(graph, end, True, catalogue) or split_end(end)
    return (node, port or "output")


def _source_texts(graph: Graph, ids: set[str], catalogue: Catalogue) -> dict[End, str]:
    """How the file first names each source that crosses the selection's boundary."""
    texts: dict[End, str] = {}
    for edge in graph.edges:
        if (edge.source_node in ids) != (edge.target_node in ids):
            texts.setdefault(_resolved_source(graph, edge.source, catalogue), edge.source)
    return texts


def _block_nodes(chosen: list[Node], inputs: dict[End, str], outputs: dict[End, str]) -> list[Node]:
    """The grouped nodes with their places kept relative to each other, the Input nodes in a
    column on their left and the Outputs on their right (data flows left to right)."""
    placed = [n.position for n in chosen if n.position is not None]
    left = min((p[0] for p in placed), default=0.0)
    top = min((p[1] for p in placed), default=0.0)
    right = max((p[0] for p in placed), default=0.0) - left + 2 * PORT_GAP
    nodes = [Node(id=port, type="Input", position=(0.0, index * PORT_GAP))
             for index, port in enumerate(inputs.values())]
    for node in chosen:
        moved = node.model_copy(deep=True)
        if node.position is not None:
            moved.position = (node.position[0] - left + PORT_GAP, node.position[1] - top)
        nodes.append(moved)
    nodes += [Node(id=port, type="Output", position=(right, index * PORT_GAP))
              for index, port in enumerate(outputs.values())]
    return nodes


def _centre(nodes: list[Node]) -> tuple[float, float] | None:
    placed = [n.position for n in nodes if n.position is not None]
    if not placed:
        return None
    return (sum(p[0] for p in placed) / len(placed), sum(p[1] for p in placed) / len(placed))


# ----- ungroup ---------------------------------------------------------------------------------

def ungroup(graph: Graph, node_id: str) -> Graph:
    """``graph`` with block node ``node_id`` replaced by the block's nodes, one set per copy of
    its ``repeat`` (ids prefixed ``<node>_`` or ``<node>_<copy>_``), parameters computed for
    each copy; the block's definition goes when nothing else uses it."""
    node = graph.node(node_id)
    catalogue = catalogue_for(graph)
    spec = catalogue.get(node.type)
    if not isinstance(spec, BlockSpec):
        raise BlockEditError(f"'{node_id}' is a {node.type[:60]}, not a block: nothing to ungroup")
    if spec.problem:
        raise BlockEditError(spec.problem)
    repeat = node.params.get(REPEAT, 1)
    if not isinstance(repeat, int) or repeat < 1:
        raise BlockEditError(f"'{node_id}' has repeat {repeat!r}: set a whole number first")
    if repeat > 1 and (len(spec.inputs) != 1 or len(spec.outputs) != 1):
        raise BlockEditError(f"'{node_id}' repeats a block without exactly one Input and one Output")
    taken = set(graph.node_ids()) - {node_id}
    extent = _extent(spec, catalogue)
    copies = [_inline_copy(node, spec, index, repeat, taken, extent) for index in range(repeat)]
    result = _splice(graph, node, spec, copies, catalogue)
    inlined = {n.id for copy in copies for n in copy.nodes}
    _make_room(result, node, inlined, repeat * extent[2] - COPY_GAP - estimate_box(node.type, catalogue).width)
    return _drop_unused(result, node.type)


class _Copy:
    """One inlined copy: its new nodes, inner edges, and where its ports now lead."""

    def __init__(self, nodes: list[Node], edges: list[Edge], feeds: dict[str, list[str]],
                 results: dict[str, str]) -> None:
        self.nodes = nodes
        self.edges = edges
        #: block Input id -> the ends inside that it fed
        self.feeds = feeds
        #: block Output id -> the inner end that feeds it
        self.results = results


def _inline_copy(node: Node, spec: BlockSpec, index: int, repeat: int, taken: set[str],
                 extent: tuple[float, float, float]) -> _Copy:
    env = _copy_env(node, spec, index)
    prefix = f"{node.id}_" if repeat == 1 else f"{node.id}_{index}_"
    ports = {n.id for n in spec.block.nodes if n.type in PORT_TYPES}
    fresh: dict[str, str] = {}
    for inner in spec.block.nodes:
        if inner.id not in ports:
            fresh[inner.id] = _free_id(f"{prefix}{inner.id}"[:64], taken)
            taken.add(fresh[inner.id])
    origin = node.position or (0.0, 0.0)
    shift = (origin[0] - extent[0] + index * extent[2], origin[1] - extent[1])
    nodes = [_inlined_node(inner, fresh, env, shift, node.frozen) for inner in spec.block.nodes
             if inner.id in fresh]
    edges, feeds, results = [], {}, {}
    for edge in spec.block.edges:
        source, target = edge.source_node, edge.target_node
        if source in ports:
            feeds.setdefault(source, []).append(_rename(edge.target, fresh))
        elif target in ports:
            results[target] = _rename(edge.source, fresh)
        else:
            edges.append(Edge(source=_rename(edge.source, fresh), target=_rename(edge.target, fresh)))
    return _Copy(nodes, edges, feeds, results)


def _copy_env(node: Node, spec: BlockSpec, index: int) -> dict[str, Any]:
    """The block's parameter values for copy ``index``: numbers where they are known, an
    expression text where a value names a parameter of an enclosing block."""
    env: dict[str, Any] = {}
    for param in spec.params:
        if param.name == REPEAT:
            continue
        value = node.params.get(param.name, param.default)
        env[param.name] = _substitute(value, {INDEX: index}) if is_expression(value) else value
    return env


def _inlined_node(inner: Node, fresh: Mapping[str, str], env: Mapping[str, Any],
                  shift: tuple[float, float], frozen: bool) -> Node:
    try:
        params = {key: _substitute_all(value, env) for key, value in inner.params.items()}
    except ExpressionError as error:
        raise BlockEditError(f"{inner.id}: {error}") from None
    tie = {param: _rename(reference, fresh) for param, reference in inner.tie.items()} if inner.tie else None
    position = None if inner.position is None else (inner.position[0] + shift[0], inner.position[1] + shift[1])
    return inner.model_copy(deep=True, update={"id": fresh[inner.id], "params": params, "tie": tie,
                                               "position": position, "frozen": inner.frozen or frozen})


def _extent(spec: BlockSpec, catalogue: Catalogue) -> tuple[float, float, float]:
    """Where the block's own nodes (not its ports) start, left and top, and how far apart its
    copies go when laid side by side, left to right as data flows."""
    inner = [n for n in spec.block.nodes if n.type not in PORT_TYPES and n.position is not None]
    if not inner:
        return (0.0, 0.0, 0.0)
    left, top = min(n.position[0] for n in inner), min(n.position[1] for n in inner)
    right = max(n.position[0] + estimate_box(n.type, catalogue).width for n in inner)
    return (left, top, right - left + COPY_GAP)


def _make_room(graph: Graph, node: Node, inlined: set[str], room: float) -> None:
    """Move the nodes placed right of the ungrouped ``node`` by ``room``, so that its copies
    laid out in its place cover none of them."""
    if node.position is None or room <= 0:
        return
    for other in graph.nodes:
        if other.id not in inlined and other.position is not None and other.position[0] > node.position[0]:
            other.position = (other.position[0] + room, other.position[1])


def _rename(end: str, fresh: Mapping[str, str]) -> str:
    node, port = split_end(end)
    node = fresh.get(node, node)
    return node if port is None else f"{node}.{port}"


def _substitute_all(value: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(value, list):
        return [_substitute_all(item, env) for item in value]
    return _substitute(value, env) if is_expression(value) else value


def _substitute(value: str, env: Mapping[str, Any]) -> Any:
    """Expression ``value`` with the names ``env`` knows put in (a value there may itself be an
    expression): a number when no name is left, else the expression text."""
    names_in(value)  # checks the expression is one blocks allow
    tree = ast.parse(expression_text(value), mode="eval")
    tree = ast.fix_missing_locations(_Inserter(env).visit(tree))
    text = EXPRESSION_MARK + ast.unparse(tree)
    if names_in(text):
        return text
    result = evaluate(text, {})
    return list(result) if isinstance(result, tuple) else result


class _Inserter(ast.NodeTransformer):
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env

    def visit_Name(self, node: ast.Name) -> ast.AST:  # noqa: N802  (ast's visitor naming)
        if node.id not in self.env:
            return node
        value = self.env[node.id]
        if is_expression(value):
            return ast.parse(expression_text(value), mode="eval").body
        return ast.parse(repr(list(value) if isinstance(value, tuple) else value), mode="eval").body


def _splice(graph: Graph, node: Node, spec: BlockSpec, copies: list[_Copy], catalogue: Catalogue) -> Graph:
    """``graph`` with ``node`` replaced by the chained ``copies`` and its edges rewired."""
    first, last = copies[0], copies[-1]
    edges: list[Edge] = []
    for edge in graph.edges:
        if edge.target_node == node.id:
            port = (resolve_end(graph, edge.target, False, catalogue) or (node.id, spec.inputs[0]))[1]
            edges += [Edge(source=edge.source, target=end) for end in first.feeds.get(port, [])]
        elif edge.source_node == node.id:
            port = (resolve_end(graph, edge.source, True, catalogue) or (node.id, spec.outputs[0]))[1]
            if port in last.results:
                edges.append(Edge(source=last.results[port], target=edge.target))
        else:
            edges.append(edge.model_copy(deep=True))
    for before, after in zip(copies, copies[1:], strict=False):
        link = before.results.get(spec.outputs[0])
        edges += [Edge(source=link, target=end) for end in after.feeds.get(spec.inputs[0], [])] if link else []
    for copy in copies:
        edges += copy.edges
    place = graph.nodes.index(node)
    inlined = [n for copy in copies for n in copy.nodes]
    result = graph.copy_deep()
    result.nodes = [*result.nodes[:place], *inlined, *result.nodes[place + 1:]]
    result.edges = edges
    return result


def _drop_unused(graph: Graph, name: str) -> Graph:
    if not block_uses(graph, name):
        blocks = {key: value for key, value in (graph.blocks or {}).items() if key != name}
        graph.blocks = blocks or None
    return graph


# ----- make unique -----------------------------------------------------------------------------

def make_unique(graph: Graph, node_id: str) -> Graph:
    """``graph`` with block node ``node_id`` using a copy of its block under a new name, so that
    editing that copy changes this node only."""
    node = graph.node(node_id)
    block = (graph.blocks or {}).get(node.type)
    if block is None:
        raise BlockEditError(f"'{node_id}' is a {node.type[:60]}, not a block")
    name = free_block_name(graph, node.type)
    result = graph.copy_deep()
    result.blocks = {**(result.blocks or {}), name: block.model_copy(deep=True)}
    result.node(node_id).type = name
    return result
