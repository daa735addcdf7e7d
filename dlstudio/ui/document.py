"""The editor's document: the model (:class:`~dlstudio.ui.model.DocumentModel`) plus the edits
views call.

Views never change the graph directly: they call the public edit methods here, each of which
checks its arguments and pushes one undo command (:mod:`dlstudio.ui.commands`). Commands change
the model through its ``apply_*`` mutations, which emit the signals the canvas follows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dlstudio.core.block_edits import (
    block_as_graph,
    free_block_name,
    group_into_block,
    make_unique,
    ungroup,
    with_block_graph,
)
from dlstudio.core.errors import GraphFileError
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import describe_validation_error, graph_to_dict, parse_json
from dlstudio.core.layout import WRAP, Box, layered_layout
from dlstudio.core.wiring import end_name, first_ports
from dlstudio.ui import commands
from dlstudio.ui.model import DocumentModel, EdgeKey, edge_key, rename_end

__all__ = ["EdgeKey", "GraphDocument", "edge_key"]

#: Clipboard format of copied nodes, and how far a paste without a target moves them.
PASTE_FORMAT = "dlstudio.nodes"
PASTE_OFFSET = 40.0
MAX_PASTE_BYTES = 16 * 1024 * 1024


class GraphDocument(DocumentModel):
    """One open graph that views edit: every edit is one undo step."""

    def save(self, path: str | Path | None = None) -> None:
        """Save (see :meth:`DocumentModel.save`); a graph still called "untitled" takes the
        file's name first, as an undoable step (saved as ``mlp.json``, the graph is "mlp")."""
        target = Path(path) if path else self.path
        if target is not None and target.stem and self.graph.name == Graph.model_fields["name"].default:
            self.set_graph_field("name", target.stem[:200])
        super().save(path)

    # ----- edits (each pushes one undo command) ---------------------------------------------

    def push(self, command: Any) -> None:
        self.undo_stack.push(command)

    def add_node(self, type_name: str, position: tuple[float, float],
                 params: dict[str, Any] | None = None) -> str:
        """Add a layer at ``position`` (top-left, scene units); returns its new id."""
        if type_name not in self.catalogue:
            raise ValueError(f"unknown layer type '{type_name[:60]}'")
        node = Node(id=self.unique_id(type_name), type=type_name, params=dict(params or {}),
                    position=_point(position))
        self.push(commands.AddItems(self, [node], [], f"Add {node.id}"))
        return node.id

    def remove_items(self, node_ids: Iterable[str], edge_keys: Iterable[EdgeKey] = ()) -> None:
        """Delete nodes (and every edge touching them) and edges, as one step."""
        present = set(self.scope.node_ids())
        existing = {edge_key(e) for e in self.scope.edges}
        nodes = [n for n in dict.fromkeys(node_ids) if n in present]
        keys = [k for k in dict.fromkeys(edge_keys) if k in existing]
        if nodes or keys:
            what = nodes[0] if len(nodes) == 1 and not keys else f"{len(nodes) + len(keys)} items"
            self.push(commands.RemoveItems(self, nodes, keys, f"Delete {what}"))

    def connect(self, source: str, target: str) -> None:
        """Add an edge; an edge already feeding that input port is replaced in the same step."""
        problem = self.connect_problem(source, target)
        if problem:
            raise ValueError(problem)
        old = self.incoming_edge(target)
        remove = [edge_key(old)] if old else []
        self.push(commands.ReplaceEdges(self, remove, [Edge(source=source, target=target)],
                                        f"Connect {source} to {target}"))

    def disconnect(self, key: EdgeKey) -> None:
        if self.find_edge(key) is None:
            raise ValueError(f"no edge from {key[0]} to {key[1]}")
        self.push(commands.ReplaceEdges(self, [key], [], f"Disconnect {key[0]} from {key[1]}"))

    def reconnect(self, key: EdgeKey, source: str, target: str) -> None:
        """Move an edge's ends, keeping its place in the file."""
        if self.find_edge(key) is None:
            raise ValueError(f"no edge from {key[0]} to {key[1]}")
        if (source, target) == key:
            return
        problem = self.connect_problem(source, target, ignore=key)
        if problem:
            raise ValueError(problem)
        old = self.incoming_edge(target, ignore=key)
        remove = [key] + ([edge_key(old)] if old else [])
        self.push(commands.ReplaceEdges(self, remove, [Edge(source=source, target=target)],
                                        f"Reconnect {source} to {target}"))

    def move_nodes(self, positions: dict[str, tuple[float, float]], merge: bool = True,
                   text: str = "Move") -> None:
        """Move nodes; consecutive merged moves of the same nodes are one undo step."""
        changed = {n: _point(p) for n, p in positions.items()
                   if self.has_node(n) and self.node(n).position != _point(p)}
        if changed:
            if text == "Move":
                text = f"Move {next(iter(changed))}" if len(changed) == 1 else f"Move {len(changed)} nodes"
            self.push(commands.MoveNodes(self, changed, merge, text))

    def set_param(self, node_id: str, name: str, value: Any | None) -> None:
        """Set a parameter, or remove it with None (back to its default or inferred value)."""
        params = self.node(node_id).params
        unchanged = name not in params if value is None else (
            name in params and params[name] == value and type(params[name]) is type(value))
        if not unchanged:
            self.push(commands.SetParam(self, node_id, name, value))

    def set_label(self, node_id: str, label: str | None) -> None:
        if (label or None) != self.node(node_id).label:
            self.push(commands.SetLabel(self, node_id, label))

    def set_frozen(self, node_id: str, frozen: bool) -> None:
        """Freeze a node's parameters for training (transfer learning), or let them train."""
        if frozen != self.node(node_id).frozen:
            self.push(commands.SetFrozen(self, node_id, frozen))

    def rename_node(self, old: str, new: str) -> None:
        """Change a node id (edges follow); ValueError with the reason when ``new`` is illegal."""
        problem = self.rename_problem(old, new)
        if problem:
            raise ValueError(problem)
        if new != old:
            self.push(commands.Rename(self, old, new))

    def copy_payload(self, node_ids: Iterable[str]) -> str:
        """Clipboard JSON holding the nodes and the edges between them."""
        chosen = [n for n in self.scope.nodes if n.id in set(node_ids)]
        ids = {n.id for n in chosen}
        edges = [e for e in self.scope.edges if e.source_node in ids and e.target_node in ids]
        doc = graph_to_dict(Graph(nodes=chosen, edges=edges))
        return json.dumps({"format": PASTE_FORMAT, "nodes": doc["nodes"], "edges": doc["edges"]},
                          ensure_ascii=True)

    def paste(self, payload: str, at: tuple[float, float] | None = None) -> list[str]:
        """Add the nodes of a :meth:`copy_payload` with fresh ids; returns the new ids.

        With ``at`` the pasted group's top-left lands there, else it is offset from the copy.
        ValueError when the payload is not DL Studio nodes.
        """
        nodes, edges = _parse_payload(payload)
        if not nodes:
            return []
        fresh: dict[str, str] = {}
        for node in nodes:
            fresh[node.id] = self.unique_id(_stem(node.id, node.type), set(fresh.values()))
        corner = _corner(nodes)
        shift = (at[0] - corner[0], at[1] - corner[1]) if at is not None else (PASTE_OFFSET, PASTE_OFFSET)
        for index, node in enumerate(nodes):
            x, y = node.position or (corner[0] + index * PASTE_OFFSET, corner[1])
            node.id, node.position = fresh[node.id], _point((x + shift[0], y + shift[1]))
        kept = [Edge(source=rename_end(e.source, e.source_node, fresh[e.source_node]),
                     target=rename_end(e.target, e.target_node, fresh[e.target_node]))
                for e in edges if e.source_node in fresh and e.target_node in fresh]
        self.push(commands.AddItems(self, nodes, kept, f"Paste {len(nodes)} nodes"))
        return [n.id for n in nodes]

    def duplicate(self, node_ids: Iterable[str]) -> list[str]:
        """Copies of the nodes (and the edges between them) next to the originals."""
        ids = self.paste(self.copy_payload(node_ids))
        if ids:
            self.undo_stack.command(self.undo_stack.index() - 1).setText(f"Duplicate {len(ids)} nodes")
        return ids

    def auto_layout(self, node_ids: Iterable[str] | None = None,
                    boxes: dict[str, Box] | None = None) -> None:
        """Arrange nodes in layers (one undo step); a subset keeps its top-left corner."""
        self.move_nodes(self.layout_positions(node_ids, boxes), merge=False, text="Auto-layout")

    def layout_positions(self, node_ids: Iterable[str] | None = None,
                         boxes: dict[str, Box] | None = None) -> dict[str, tuple[float, float]]:
        ids = [n for n in (node_ids if node_ids is not None else self.scope.node_ids()) if self.has_node(n)]
        placed = [self.node(n).position for n in ids if self.node(n).position is not None]
        origin = (min(p[0] for p in placed), min(p[1] for p in placed)) if placed else (0.0, 0.0)
        return layered_layout(self.scope, ids, boxes, origin, wrap=WRAP, catalogue=self.catalogue)

    def insert_on_edge(self, type_name: str, key: EdgeKey, position: tuple[float, float]) -> str:
        """Add a layer and splice it into an edge; returns its id."""
        if self.find_edge(key) is None:
            raise ValueError(f"no edge from {key[0]} to {key[1]}")
        first_in, first_out = first_ports(type_name, self.catalogue)
        if first_in is None or first_out is None:
            raise ValueError(f"{type_name} has no {'input' if first_in is None else 'output'} to splice in")
        node = Node(id=self.unique_id(type_name), type=type_name, position=_point(position))
        ends = (end_name(type_name, node.id, first_in, False, self.catalogue),
                end_name(type_name, node.id, first_out, True, self.catalogue))
        self.push(commands.InsertOnEdge(self, node, key, ends))
        return node.id

    def set_graph_field(self, name: str, value: Any) -> None:
        """Set a top-level field such as name, description or training (validated, undoable)."""
        if name not in type(self.graph).model_fields or name in ("format", "version", "nodes", "edges"):
            raise ValueError(f"'{name}' is not a graph field that can be set")
        try:
            value = getattr(Graph.model_validate({name: value}), name)
        except ValidationError as error:
            raise ValueError(describe_validation_error(error)) from None
        if value != getattr(self.graph, name):
            self.push(commands.SetGraphField(self, name, value))

    # ----- blocks ------------------------------------------------------------------------------

    def group_into_block(self, node_ids: Iterable[str], name: str) -> str:
        """Move the nodes into a new block ``name`` used by one new node (one undo step);
        returns that node's id. ValueError (a BlockEditError) says why it cannot be done."""
        self._restructure(lambda graph: group_into_block(graph, node_ids, name), f"Group into {name}")
        return next(n.id for n in self.scope.nodes if n.type == name)

    def ungroup(self, node_id: str) -> list[str]:
        """Replace block node ``node_id`` by the block's nodes (one undo step); returns their ids."""
        before = set(self.scope.node_ids())
        self._restructure(lambda graph: ungroup(graph, node_id), f"Ungroup {node_id}")
        return [n.id for n in self.scope.nodes if n.id not in before]

    def make_unique(self, node_id: str) -> str:
        """Give block node ``node_id`` its own copy of its block (one undo step); returns the
        copy's name."""
        self._restructure(lambda graph: make_unique(graph, node_id), f"Make {node_id} unique")
        return self.node(node_id).type

    def default_block_name(self) -> str:
        """A free name for a new block: ``Block``, ``Block_2``..."""
        return free_block_name(self.graph, "Block", self.catalogue)

    def _restructure(self, edit: Callable[[Graph], Graph], text: str) -> None:
        """Apply ``edit`` to the graph shown (the file's, or the opened block's) as one step."""
        if not self.scope_path:
            graph = edit(self.graph)
        else:
            name = self.scope_path[-1]
            graph = with_block_graph(self.graph, name, edit(block_as_graph(self.graph, name)))
        self.push(commands.ReplaceGraph(self, graph, text))


def _point(position: tuple[float, float]) -> tuple[float, float]:
    return (float(position[0]), float(position[1]))


def _stem(node_id: str, type_name: str) -> str:
    """The id a copy is named after: ``conv2d_3`` -> ``conv2d``."""
    return re.sub(r"_\d+$", "", node_id) or type_name


def _corner(nodes: list[Node]) -> tuple[float, float]:
    placed = [n.position for n in nodes if n.position is not None]
    return (min(p[0] for p in placed), min(p[1] for p in placed)) if placed else (0.0, 0.0)


def _parse_payload(payload: str) -> tuple[list[Node], list[Edge]]:
    """Nodes and edges from clipboard text; ValueError when it is not DL Studio nodes."""
    if len(payload) > MAX_PASTE_BYTES:
        raise ValueError("the clipboard holds too much data to paste")
    try:
        data = parse_json(payload, "clipboard")
    except GraphFileError:
        raise ValueError("the clipboard does not hold DL Studio nodes") from None
    if not isinstance(data, dict) or data.get("format") != PASTE_FORMAT:
        raise ValueError("the clipboard does not hold DL Studio nodes")
    try:
        graph = Graph.model_validate({"nodes": data.get("nodes", []), "edges": data.get("edges", [])})
    except ValidationError as error:
        raise ValueError(f"cannot paste: {describe_validation_error(error)}") from None
    return graph.nodes, graph.edges
