"""Keep an imported model's repeated submodules as blocks (``dlstudio import`` without ``--flat``).

The regions that repeat (:mod:`dlstudio.interop.regions`) become block nodes, level by level
from the top graph down, each :class:`~dlstudio.interop.regions.Variant` a block made from its
regions' graphs on first use: values that differ between them become the block's parameters
(``"$out_channels"``), named after the inner parameter. Blocks nest as the modules do. The
calls ``C.0``, ``C.1``, ... of one block with equal parameters, each feeding the next (an
``nn.Sequential``, a loop over an ``nn.ModuleList``), become one node ``C`` with ``repeat``,
whose weights keep the module's keys (``C.0.conv1.weight``); other calls are a node each
(``layer2_0``). The weights are then keyed by each top node's module path.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dlstudio.core.analysis import analyze
from dlstudio.core.block_edits import block_as_graph
from dlstudio.core.blocks import REPEAT, RESERVED_PARAMS
from dlstudio.core.catalogue import BUILTINS
from dlstudio.core.graph import Block, Edge, Graph, Node, is_valid_id, split_end
from dlstudio.core.layout import layered_layout
from dlstudio.core.naming import RESERVED
from dlstudio.interop.builder import ImportResult, node_id_from
from dlstudio.interop.regions import (
    INPUT_STEM,
    OUTPUT_STEM,
    EdgeIndex,
    Origins,
    Region,
    Variant,
    choose_variants,
    find_regions,
    fresh,
    local_end,
    port_ids,
    settings,
    value_key,
)

#: The most parameters a block holds (``Block.params``).
MAX_BLOCK_PARAMS = 64
_FIRST_COPY = re.compile(r"(.+)\.0")

@dataclass
class _Use:
    """A block node of a level: one region, or the copies of a repeat over ``container``."""

    regions: list[Region]
    container: str | None = None


@dataclass
class _Level:
    """A level's nodes and edges (the top graph or a block's), and each flat node's module path."""

    nodes: list[Node]
    edges: list[Edge]
    paths: dict[str, str]


def with_blocks(result: ImportResult, origins: Origins) -> ImportResult:
    """``result`` with its repeated submodules as blocks and its weights keyed for that graph;
    ``result`` itself where nothing repeats, or where the grouped graph would not validate."""
    flat = result.graph
    variants = choose_variants(find_regions(flat, origins))
    if not variants:
        return result
    grouper = _Grouper(flat, origins, variants)
    top = grouper.level([node.id for node in flat.nodes], None)
    if not grouper.blocks:
        return result
    try:
        graph = Graph(name=flat.name, nodes=top.nodes, edges=top.edges, blocks=grouper.blocks)
    except ValueError as error:  # past what a file holds (256 blocks): the flat graph is kept
        return replace(result, structure=f"kept flat: {' '.join(str(error).split())[:200]}")
    lay_out(graph)
    errors = analyze(graph).errors
    if errors and analyze(flat).ok:
        return replace(result, structure=f"kept flat: as blocks, {errors[0].one_line()}")
    weights: dict[str, dict[str, Any]] = {}
    for node_id, tensors in result.weights.items():
        owner, _, inner = top.paths[node_id].partition(".")
        weights.setdefault(owner, {}).update({f"{inner}.{key}" if inner else key: value
                                              for key, value in tensors.items()})
    return replace(result, graph=graph, weights=weights, structure=grouper.tally())


def lay_out(graph: Graph) -> None:
    """Place the nodes of ``graph`` and of each of its blocks left to right."""
    for node_id, point in layered_layout(graph).items():
        graph.node(node_id).position = point
    for name, block in (graph.blocks or {}).items():
        for node_id, point in layered_layout(block_as_graph(graph, name)).items():
            block.node(node_id).position = point


# ----- building the levels -----------------------------------------------------------------------

class _Grouper:
    """Builds the top graph and, on first use, each variant's block, from the flat graph."""

    def __init__(self, graph: Graph, origins: Origins, variants: list[Variant]) -> None:
        self.edges = EdgeIndex(graph)
        self.origins = origins
        self.variant_of = {region.key: variant for variant in variants for region in variant.regions}
        self.taken = set(BUILTINS) | set(RESERVED) | {variant.name for variant in variants}
        self.blocks: dict[str, Block] = {}
        #: Each region's block and parameters, and its flat nodes' paths inside the block.
        self.uses: dict[str, tuple[str, dict[str, Any]]] = {}
        self.paths: dict[str, dict[str, str]] = {}
        self._built: set[int] = set()

    def tally(self) -> str:
        counts: dict[str, int] = defaultdict(int)
        for name, _ in self.uses.values():
            counts[name] += 1
        listed = ", ".join(f"{name} {count}" for name, count in counts.items())
        calls, blocks = sum(counts.values()), len(counts)
        return (f"{calls} submodule call{'s' * (calls > 1)} kept as {blocks} "
                f"block{'s' * (blocks > 1)} ({listed})")

    def level(self, members: list[str], outer: Region | None) -> _Level:
        """The nodes and edges of ``members`` inside ``outer`` (None: the top graph)."""
        items = self._merge_runs(self._items(members, outer))
        ids = self._ids(items, outer)
        place: dict[str, tuple[str, _Use | None, int]] = {}
        for index, item in enumerate(items):
            for copy, region in enumerate(item.regions if isinstance(item, _Use) else ()):
                place.update({member: (ids[index], item, copy) for member in region.members})
            if isinstance(item, str):
                place[item] = (ids[index], None, 0)
        nodes = [self._node(item, node_id, outer) for item, node_id in zip(items, ids, strict=True)]
        if outer is not None:
            inputs = [Node(id=port, type="Input") for port in port_ids(INPUT_STEM, len(outer.inputs))]
            outputs = [Node(id=port, type="Output") for port in port_ids(OUTPUT_STEM, len(outer.outputs))]
            nodes = inputs + nodes + outputs
        return _Level(nodes, self._wiring(members, place, outer), self._paths(items, ids))

    # --- the items of a level: plain nodes and block nodes ---

    def _items(self, members: list[str], outer: Region | None) -> list[str | _Use]:
        items: list[str | _Use] = []
        seen: set[str] = set()
        for member in members:
            region = self._top_region(member, outer)
            if region is None:
                items.append(member)
            elif region.key not in seen:
                seen.add(region.key)
                items.append(_Use([region]))
        return items

    def _top_region(self, member: str, outer: Region | None) -> Region | None:
        """The outermost region below ``outer`` that holds ``member`` and became a block node."""
        keys = [key for key, _, _ in self.origins[member][0]]
        for key in keys[keys.index(outer.key) + 1 if outer else 0:]:
            variant = self.variant_of.get(key)
            if variant is not None and self._use(variant, key) is not None:
                return next(region for region in variant.regions if region.key == key)
        return None

    def _use(self, variant: Variant, key: str) -> tuple[str, dict[str, Any]] | None:
        if id(variant) not in self._built:
            self._built.add(id(variant))
            self._build(variant)
        return self.uses.get(key)

    def _merge_runs(self, items: list[str | _Use]) -> list[str | _Use]:
        """Consecutive chained copies ``C.0``, ``C.1``... with equal parameters as one repeat."""
        merged: list[str | _Use] = []
        index = 0
        while index < len(items):
            run = self._run_from(items, index)
            merged.append(run if run.container else items[index])
            index += len(run.regions) if run.container else 1
        return merged

    def _run_from(self, items: list[str | _Use], index: int) -> _Use:
        item = items[index]
        first = item.regions[0] if isinstance(item, _Use) else None
        match = _FIRST_COPY.fullmatch(first.path) if first else None
        if first is None or match is None:
            return _Use([])
        run = [first]
        for later in items[index + 1:]:
            region = later.regions[0] if isinstance(later, _Use) else None
            if (region is None or region.path != f"{match[1]}.{len(run)}"
                    or self._use_key(region) != self._use_key(first)
                    or not self._chained(run[-1], region)):
                break
            run.append(region)
        return _Use(run, match[1]) if len(run) > 1 else _Use([])

    def _use_key(self, region: Region) -> str:
        name, params = self.uses[region.key]
        return value_key([name, sorted((key, value_key(value)) for key, value in params.items())])

    def _chained(self, before: Region, after: Region) -> bool:
        """``before``'s one output is ``after``'s first input and read by nothing else; their
        other inputs are the same."""
        if len(before.outputs) != 1 or after.inputs[0] != before.outputs[0]:
            return False
        if after.inputs[1:] != before.inputs[1:]:
            return False
        return set(self.edges.readers[before.outputs[0]]) <= set(after.members)

    # --- ids, nodes, edges and paths of a level ---

    def _ids(self, items: list[str | _Use], outer: Region | None) -> list[str]:
        plain = {item: item if outer is None else outer.local[item]
                 for item in items if isinstance(item, str)}
        taken = set(plain.values())
        if outer is not None:
            taken |= {*port_ids(INPUT_STEM, len(outer.inputs)), *port_ids(OUTPUT_STEM, len(outer.outputs))}
        return [plain[item] if isinstance(item, str)
                else fresh(node_id_from(self._name_of(item, outer)), taken) for item in items]

    @staticmethod
    def _name_of(use: _Use, outer: Region | None) -> str:
        """A block node's module path below ``outer``: ``layer2.0``, or ``h`` for a repeat."""
        path = use.container or use.regions[0].path
        prefix = outer.path + "." if outer else ""
        return path[len(prefix):] if path.startswith(prefix) else path

    def _node(self, item: str | _Use, node_id: str, outer: Region | None) -> Node:
        if isinstance(item, _Use):
            name, values = self.uses[item.regions[0].key]
            params = {**values, REPEAT: len(item.regions)} if item.container else dict(values)
            label = self._name_of(item, outer)
            return Node(id=node_id, type=name, params=params, label=None if label == node_id else label)
        node = self.edges.nodes[item]
        if outer is None:
            return node.model_copy(deep=True, update={"position": None})
        tie = {key: local_end(ref, outer.local) for key, ref in node.tie.items()} if node.tie else None
        label = outer.rel[item] if self.origins[item][1].startswith(outer.path + ".") else node_id
        return node.model_copy(deep=True, update={"id": node_id, "tie": tie, "position": None,
                                                  "label": None if label == node_id else label})

    def _wiring(self, members: list[str], place: Mapping[str, tuple[str, _Use | None, int]],
                outer: Region | None) -> list[Edge]:
        """The level's edges: those between its items, from its Inputs and to its Outputs."""
        found: dict[tuple[str, str], None] = {}
        for member in members:
            for edge in self.edges.into[member]:
                inside = place.get(edge.source_node)
                target_node, target_use, target_copy = place[member]
                if inside is not None and inside[0] == target_node and (
                        inside[1] is None or target_copy in (inside[2], inside[2] + 1)):
                    continue  # inside one block node, or from one copy of a repeat to the next
                source = self._source(edge.source, inside, outer)
                target = self._end(target_node, target_use, target_copy, edge.source, True, edge.target)
                found[(source, target)] = None
        if outer is not None:
            for port, end in zip(port_ids(OUTPUT_STEM, len(outer.outputs)), outer.outputs, strict=True):
                found[(self._source(end, place[split_end(end)[0]], outer), port)] = None
        return [Edge(source=source, target=target) for source, target in found]

    def _source(self, end: str, inside: tuple[str, _Use | None, int] | None,
                outer: Region | None) -> str:
        if inside is None:
            assert outer is not None
            return port_ids(INPUT_STEM, len(outer.inputs))[outer.inputs.index(end)]
        node_id, use, copy = inside
        return self._end(node_id, use, copy, end, False, end)

    @staticmethod
    def _end(node_id: str, use: _Use | None, copy: int, source: str, is_target: bool, flat_end: str) -> str:
        """The end on ``node_id`` of a flat edge end: its port, or the block's port for ``source``."""
        if use is None:
            port = split_end(flat_end)[1]
            return f"{node_id}.{port}" if port else node_id
        region = use.regions[copy]
        ends, stem = (region.inputs, INPUT_STEM) if is_target else (region.outputs, OUTPUT_STEM)
        if len(ends) == 1:
            return node_id
        return f"{node_id}.{port_ids(stem, len(ends))[ends.index(source)]}"

    def _paths(self, items: list[str | _Use], ids: list[str]) -> dict[str, str]:
        paths: dict[str, str] = {}
        for item, node_id in zip(items, ids, strict=True):
            if isinstance(item, str):
                paths[item] = node_id
                continue
            for copy, region in enumerate(item.regions):
                prefix = f"{node_id}.{copy}." if item.container else f"{node_id}."
                paths.update({member: prefix + inner
                              for member, inner in self.paths[region.key].items()})
        return paths

    # --- blocks ---

    def _build(self, variant: Variant) -> None:
        """Make ``variant``'s block (a block per nesting, where its regions nest differently)."""
        levels = [self.level(region.members, region) for region in variant.regions]
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for index, level in enumerate(levels):
            groups[_structure(level)].append(index)
        for number, indexes in enumerate(groups.values()):
            regions = [variant.regions[index] for index in indexes]
            made = _parameterized([levels[index] for index in indexes], _description(regions))
            if made is None:
                continue
            name = variant.name if number == 0 else fresh(variant.name, self.taken)
            self.blocks[name], params = made
            for region, index, values in zip(regions, indexes, params, strict=True):
                self.uses[region.key] = (name, values)
                self.paths[region.key] = levels[index].paths


def _structure(level: _Level) -> tuple[Any, ...]:
    nodes = tuple((node.id, node.type, tuple(sorted(settings(node))), value_key(node.tie),
                   node.label) for node in level.nodes)
    return nodes, tuple((edge.source, edge.target) for edge in level.edges)


def _description(regions: list[Region]) -> str:
    paths = ", ".join(region.path for region in regions[:4]) + (", ..." if len(regions) > 4 else "")
    return f"{regions[0].cls}, imported from {paths}"


def _parameterized(levels: list[_Level], description: str
                   ) -> tuple[Block, list[dict[str, Any]]] | None:
    """The block of levels alike but for parameter values, each value that differs between
    them a block parameter (``"$name"``), and each level's values; None past the limit."""
    columns: dict[str, list[tuple[int, str]]] = defaultdict(list)
    vectors: dict[str, list[Any]] = {}
    for index in range(len(levels[0].nodes)):
        filled = [settings(level.nodes[index]) for level in levels]
        for key in filled[0]:
            values = [params[key] for params in filled]
            text = value_key(values)
            if len({value_key(value) for value in values}) > 1:
                columns[text].append((index, key))
                vectors[text] = values
    if len(columns) > MAX_BLOCK_PARAMS:
        return None
    nodes = [node.model_copy(deep=True) for node in levels[0].nodes]
    names = _param_names(columns.values(), nodes)
    for name, cells in zip(names, columns.values(), strict=True):
        for index, key in cells:
            nodes[index].params[key] = f"${name}"
    per_name = dict(zip(names, (vectors[text] for text in columns), strict=True))
    block = Block(description=description, params={name: vector[0] for name, vector in per_name.items()},
                  nodes=nodes, edges=[edge.model_copy() for edge in levels[0].edges])
    return block, [{name: vector[copy] for name, vector in per_name.items()} for copy in range(len(levels))]


def _param_names(columns: Iterable[list[tuple[int, str]]], nodes: list[Node]) -> list[str]:
    """A block parameter's name: the inner parameter's (``out_channels``), or with its node's
    id (``conv1_stride``) where several differ by that name or it is not a plain name."""
    cells = list(columns)
    keys = [column[0][1] for column in cells]
    taken = set(RESERVED_PARAMS)
    names = []
    for column, key in zip(cells, keys, strict=True):
        base = key
        if keys.count(key) > 1 or not is_valid_id(key) or key in RESERVED or key in RESERVED_PARAMS:
            base = node_id_from(f"{nodes[column[0][0]].id}_{key}")
        names.append(fresh(base if base not in RESERVED else f"p_{base}", taken))
    return names
