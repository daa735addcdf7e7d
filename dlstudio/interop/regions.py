"""The calls of a model's submodules in a flat imported graph, and which of them repeat.

The importer notes for every node the module calls that made it
(:attr:`GraphBuilder.origins <dlstudio.interop.builder.GraphBuilder.origins>`, from torch's
``nn_module_stack``). A call of a submodule of the user's own classes (not torch's) whose nodes
are consecutive, read something from outside and give something back, with no tied parameter
across its edge, is a :class:`Region`. Its *shape* is what regions of one block share: the
class, the nodes' types, names relative to the module (``conv1``; ``add`` for torch.fx's
``add_3``) and parameter kinds, and the wiring. A class with two regions of one shape repeats:
each of its shapes is a :class:`Variant`, one block (see :mod:`dlstudio.interop.repeats`).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.blocks import is_expression
from dlstudio.core.blocks import value_kind as kind_of
from dlstudio.core.catalogue import BUILTINS
from dlstudio.core.graph import Edge, Graph, Node, split_end
from dlstudio.core.naming import RESERVED
from dlstudio.interop.builder import node_id_from

#: One module call: its key in the trace (one per call), the module's path, its class.
Scope = tuple[str, str, str]
#: Each flat node's module calls (outermost first) and the name the importer asked for.
Origins = Mapping[str, tuple[tuple[Scope, ...], str]]

#: The stems of a block's Input and Output node ids: ``x`` (``x0``, ``x1``...), ``y``.
INPUT_STEM, OUTPUT_STEM = "x", "y"
_FX_NUMBER = re.compile(r"_\d+$")


@dataclass
class Region:
    """One call of a submodule: its nodes (flat ids, in order) and what crosses its edge."""

    key: str
    path: str
    cls: str
    members: list[str] = field(default_factory=list)
    #: Flat source ends read from outside, and those of members read outside, in order.
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    #: Each member's name relative to the module (``attn.c_attn``) and its id in a block.
    rel: dict[str, str] = field(default_factory=dict)
    local: dict[str, str] = field(default_factory=dict)
    shape: tuple[Any, ...] = ()


@dataclass
class Variant:
    """Regions of one class and one shape: one block (or several, where nesting differs)."""

    name: str
    regions: list[Region]


# ----- regions: the calls of the user's submodules ---------------------------------------------

def find_regions(graph: Graph, origins: Origins) -> list[Region]:
    """Every call of a submodule of a class not from torch that can become a block node."""
    calls: dict[str, Region] = {}
    for node in graph.nodes:
        for key, path, cls in origins.get(node.id, ((), ""))[0]:
            if not cls.startswith("torch."):
                calls.setdefault(key, Region(key, path, cls)).members.append(node.id)
    edges = EdgeIndex(graph)
    return [region for region in calls.values() if _bound(region, edges, origins)]


class EdgeIndex:
    """A flat graph's edges by target node and by source end, its node order and its ties."""

    def __init__(self, graph: Graph) -> None:
        self.into: dict[str, list[Edge]] = defaultdict(list)
        self.readers: dict[str, list[str]] = defaultdict(list)
        #: Each node's source ends that something reads, in the order they are first read.
        self.ends: dict[str, list[str]] = defaultdict(list)
        for edge in graph.edges:
            self.into[edge.target_node].append(edge)
            if edge.source not in self.readers:
                self.ends[edge.source_node].append(edge.source)
            self.readers[edge.source].append(edge.target_node)
        self.position = {node.id: index for index, node in enumerate(graph.nodes)}
        self.nodes = {node.id: node for node in graph.nodes}
        self.ties = [(node.id, split_end(ref)[0])
                     for node in graph.nodes for ref in (node.tie or {}).values()]


def _bound(region: Region, edges: EdgeIndex, origins: Origins) -> bool:
    """Find ``region``'s inputs, outputs, names and shape; False where it cannot be a block node
    (its nodes are not consecutive, it reads or gives nothing, a tie crosses its edge)."""
    members = set(region.members)
    span = edges.position[region.members[-1]] - edges.position[region.members[0]] + 1
    if span != len(members) or any((a in members) != (b in members) for a, b in edges.ties):
        return False
    for member in region.members:
        for edge in edges.into[member]:
            if edge.source_node not in members and edge.source not in region.inputs:
                region.inputs.append(edge.source)
        for end in sorted(edges.ends[member], key=lambda end: _port_rank(edges.nodes[member], end)):
            read_outside = any(reader not in members for reader in edges.readers[end])
            if read_outside and end not in region.outputs:
                region.outputs.append(end)
    if not region.inputs or not region.outputs:
        return False
    _name_members(region, origins)
    region.shape = _shape(region, edges)
    return True


def _port_rank(node: Node, end: str) -> int:
    """Where ``end``'s port comes among its node's outputs (so that outputs keep the node's
    order, whatever reads them first)."""
    port = split_end(end)[1]
    spec = BUILTINS.get(node.type)
    ports = spec.outputs if spec is not None else ()
    return ports.index(port) if port in ports else len(ports)


def _name_members(region: Region, origins: Origins) -> None:
    """Names relative to the module (``conv1``; ``add`` for torch.fx's ``add_3``), and ids."""
    taken = set(port_ids(INPUT_STEM, len(region.inputs)) + port_ids(OUTPUT_STEM, len(region.outputs)))
    prefix = region.path + "."
    for member in region.members:
        wanted = origins[member][1]
        rel = wanted[len(prefix):] if wanted.startswith(prefix) else _FX_NUMBER.sub("", wanted)
        region.rel[member] = rel
        region.local[member] = fresh(node_id_from(rel), taken)


def _shape(region: Region, edges: EdgeIndex) -> tuple[Any, ...]:
    """What regions of one block share: class, nodes, wiring; parameter values only by kind."""
    local = region.local
    nodes, wiring = [], []
    for member in region.members:
        node = edges.nodes[member]
        tie = sorted((key, local_end(ref, local)) for key, ref in (node.tie or {}).items())
        params = sorted((key, _value_shape(value)) for key, value in settings(node).items())
        nodes.append((local[member], node.type, tuple(params), tuple(tie), node.frozen))
        for edge in edges.into[member]:
            source = (local_end(edge.source, local) if edge.source_node in local
                      else region.inputs.index(edge.source))
            wiring.append((source, local_end(edge.target, local)))
    outputs = tuple(local_end(end, local) for end in region.outputs)
    return region.cls, tuple(nodes), tuple(wiring), len(region.inputs), outputs


def settings(node: Node) -> dict[str, Any]:
    """A node's parameters, with the defaults of those a catalogue layer leaves unset (the
    importer writes only values that differ from them); inferred ones stay unset."""
    spec = BUILTINS.get(node.type)
    declared = {param.name: _listed(param.default) for param in spec.params
                if not param.inferred} if spec is not None else {}
    return {**declared, **node.params}


def _listed(value: Any) -> Any:
    return [_listed(item) for item in value] if isinstance(value, tuple | list) else value


def _value_shape(value: Any) -> Any:
    """A value's kind where it can be a block parameter, else the value itself."""
    plain = isinstance(value, bool | int | float | str) and not is_expression(value)
    ints = isinstance(value, list) and all(type(item) is int for item in value)
    return kind_of(value) if plain or ints else ("=", value_key(value))


def value_key(value: Any) -> str:
    """A text that tells values apart, 1, 1.0 and True included."""
    return json.dumps([type(value).__name__, value], sort_keys=True, default=repr)


def local_end(end: str, ids: Mapping[str, str]) -> str:
    """A flat edge end (``split.out1``) with its node's id from ``ids``."""
    node, port = split_end(end)
    return f"{ids[node]}.{port}" if port else ids[node]


def port_ids(stem: str, count: int) -> list[str]:
    """A block's Input (or Output) node ids: ``x`` alone, else ``x0``, ``x1``, ..."""
    return [stem] if count == 1 else [f"{stem}{index}" for index in range(count)]


def fresh(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``...: the first not in ``taken`` (then taken)."""
    candidate, counter = base, 2
    while candidate in taken:
        candidate = f"{base[:58]}_{counter}"
        counter += 1
    taken.add(candidate)
    return candidate


# ----- which regions become blocks ---------------------------------------------------------------

def choose_variants(regions: list[Region]) -> list[Variant]:
    """The regions of every class that has two of one shape, in variants by shape; the most
    common shape is named after the class, the others after what they add."""
    by_shape: dict[tuple[Any, ...], list[Region]] = defaultdict(list)
    for region in regions:
        by_shape[region.shape].append(region)
    repeated = {shape[0] for shape, group in by_shape.items() if len(group) > 1}
    taken = set(BUILTINS) | set(RESERVED)
    variants = []
    for cls in dict.fromkeys(region.cls for region in regions if region.cls in repeated):
        groups = sorted((group for shape, group in by_shape.items() if shape[0] == cls),
                        key=len, reverse=True)
        for group in groups:
            variants.append(Variant(_variant_name(cls, group, groups[0], taken), group))
    return variants


def _variant_name(cls: str, group: list[Region], main: list[Region], taken: set[str]) -> str:
    base = node_id_from(cls.rpartition(".")[2])
    if group is not main:
        known = {_first_part(rel) for rel in main[0].rel.values()}
        added = (_first_part(rel) for rel in group[0].rel.values() if _first_part(rel) not in known)
        extra = next(added, "")
        base = f"{base}_{node_id_from(extra)}"[:58] if extra else base
    return fresh(base, taken)


def _first_part(rel: str) -> str:
    return rel.partition(".")[0]

