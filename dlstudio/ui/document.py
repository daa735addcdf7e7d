"""The editor's document: a Graph, its undo stack, and events the views subscribe to.

Views never change the graph directly: they call the public edit methods here, each of which
pushes an undo command (:mod:`dlstudio.ui.commands`). Commands use the ``apply_*`` methods,
which change the graph and emit the fine-grained signals the canvas follows. After every
change the document re-runs analysis (debounced) and emits :attr:`analysed`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoStack

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.errors import GraphFileError
from dlstudio.core.graph import Edge, Graph, Node, is_valid_id, split_end
from dlstudio.core.io import (
    describe_validation_error,
    graph_to_dict,
    graph_to_json,
    load_graph,
    parse_json,
    save_graph,
)
from dlstudio.core.layout import Box, layered_layout
from dlstudio.ui import commands

EdgeKey = tuple[str, str]

#: Clipboard format of copied nodes, and how far a paste without a target moves them.
PASTE_FORMAT = "dlstudio.nodes"
PASTE_OFFSET = 40.0
MAX_PASTE_BYTES = 16 * 1024 * 1024


def edge_key(edge: Edge) -> EdgeKey:
    return (edge.source, edge.target)


class GraphDocument(QObject):
    """One open graph with its file path, undo stack and latest analysis."""

    node_added = Signal(str)
    node_removed = Signal(str)
    node_changed = Signal(str)  # params, label or type
    node_moved = Signal(str)
    node_renamed = Signal(str, str)  # old id, new id
    edge_added = Signal(object)  # EdgeKey
    edge_removed = Signal(object)  # EdgeKey
    reset = Signal()  # the whole graph was replaced
    analysed = Signal(object)  # Analysis
    modified_changed = Signal(bool)
    path_changed = Signal(object)  # Path | None

    def __init__(self, graph: Graph | None = None, path: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.graph = graph or Graph(name="untitled")
        self.path = path
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self.analysis: Analysis = analyze(self.graph)
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self.reanalyse)

    # ----- files -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, parent: QObject | None = None) -> GraphDocument:
        """Load a file (raises GraphFileError with a one-line reason)."""
        return cls(load_graph(path), Path(path), parent)

    def save(self, path: str | Path | None = None) -> None:
        """Save atomically to ``path`` (or the current path) and mark the document clean; a graph
        still called "untitled" takes the file's name (an undoable step)."""
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("no file name: use save as")
        if self.graph.name == Graph.model_fields["name"].default and target.stem:
            self.set_graph_field("name", target.stem[:200])  # saved as mlp.json: the graph is "mlp"
        save_graph(self.graph, target)
        if target != self.path:
            self.path = target
            self.path_changed.emit(target)
        self.undo_stack.setClean()

    def _clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    def to_json(self) -> str:
        return graph_to_json(self.graph)

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def folder(self) -> Path | None:
        """The graph file's folder (None until the graph is saved)."""
        return Path(self.path).resolve().parent if self.path else None

    @property
    def title(self) -> str:
        """``<file name> — DL Studio`` with ``*`` while there are unsaved changes."""
        name = self.path.name if self.path else f"{self.graph.name}.json"
        return f"{name}{'*' if self.modified else ''} — DL Studio"

    # ----- queries ---------------------------------------------------------------------------

    def node(self, node_id: str) -> Node:
        return self.graph.node(node_id)

    def has_node(self, node_id: str) -> bool:
        return any(n.id == node_id for n in self.graph.nodes)

    def edges_of(self, node_id: str) -> list[Edge]:
        return [e for e in self.graph.edges if node_id in (e.source_node, e.target_node)]

    def find_edge(self, key: EdgeKey) -> Edge | None:
        return next((e for e in self.graph.edges if edge_key(e) == key), None)

    def unique_id(self, base: str, taken: set[str] | None = None) -> str:
        """A fresh node id like ``conv2d_3`` (legal and unused)."""
        stem = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base.lower()) or "node"
        stem = stem if is_valid_id(stem) else f"n_{stem}"[:60]
        used = {n.id for n in self.graph.nodes} | (taken or set())
        index = 1
        while f"{stem}_{index}" in used:
            index += 1
        return f"{stem}_{index}"

    def rename_problem(self, old: str, new: str) -> str | None:
        """Why ``old`` cannot be renamed to ``new``, or None when it can."""
        if new == old:
            return None
        if not is_valid_id(new):
            return f"'{new}' is not a legal id: use letters, digits and _, not starting with a digit"
        if self.has_node(new):
            return f"id '{new}' is already used by another node"
        return None

    # ----- edits (each pushes one undo command) ---------------------------------------------

    def push(self, command: Any) -> None:
        self.undo_stack.push(command)

    def add_node(self, type_name: str, position: tuple[float, float],
                 params: dict[str, Any] | None = None) -> str:
        """Add a layer at ``position`` (top-left, scene units); returns its new id."""
        if type_name not in CATALOGUE:
            raise ValueError(f"unknown layer type '{type_name[:60]}'")
        node = Node(id=self.unique_id(type_name), type=type_name, params=dict(params or {}),
                    position=_point(position))
        self.push(commands.AddItems(self, [node], [], f"Add {node.id}"))
        return node.id

    def remove_items(self, node_ids: Iterable[str], edge_keys: Iterable[EdgeKey] = ()) -> None:
        """Delete nodes (and every edge touching them) and edges, as one step."""
        present = set(self.graph.node_ids())
        existing = {edge_key(e) for e in self.graph.edges}
        nodes = [n for n in dict.fromkeys(node_ids) if n in present]
        keys = [k for k in dict.fromkeys(edge_keys) if k in existing]
        if nodes or keys:
            what = nodes[0] if len(nodes) == 1 and not keys else f"{len(nodes) + len(keys)} items"
            self.push(commands.RemoveItems(self, nodes, keys, f"Delete {what}"))

    def connect_problem(self, source: str, target: str, ignore: EdgeKey | None = None) -> str | None:
        """Why an edge ``source -> target`` cannot be made, or None when it can."""
        src = commands.resolve_end(self.graph, source, is_source=True)
        dst = commands.resolve_end(self.graph, target, is_source=False)
        if src is None:
            return f"'{source}' is not an output port"
        if dst is None:
            return f"'{target}' is not an input port"
        if src[0] == dst[0]:
            return "a node cannot feed itself"
        others = [e for e in self.graph.edges if edge_key(e) != ignore]
        for edge in others:
            if commands.resolve_end(self.graph, edge.target, False) == dst and \
                    commands.resolve_end(self.graph, edge.source, True) == src:
                return f"{src[0]}.{src[1]} is already connected to {dst[0]}.{dst[1]}"
        if src[0] in self.reachable(dst[0], others):
            return f"connecting {src[0]} to {dst[0]} would make a cycle"
        return None

    def reachable(self, node_id: str, edges: Iterable[Edge] | None = None, forward: bool = True) -> set[str]:
        """Nodes reachable from ``node_id`` along edges (downstream, or upstream if not forward)."""
        step: dict[str, list[str]] = {}
        for edge in self.graph.edges if edges is None else edges:
            a, b = (edge.source_node, edge.target_node) if forward else (edge.target_node, edge.source_node)
            step.setdefault(a, []).append(b)
        seen, todo = {node_id}, [node_id]
        while todo:
            for nxt in step.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def incoming_edge(self, target: str, ignore: EdgeKey | None = None) -> Edge | None:
        """The edge already feeding the input port named by ``target``, if any."""
        port = commands.resolve_end(self.graph, target, is_source=False)
        return next((e for e in self.graph.edges if edge_key(e) != ignore and port is not None
                     and commands.resolve_end(self.graph, e.target, False) == port), None)

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
        chosen = [n for n in self.graph.nodes if n.id in set(node_ids)]
        ids = {n.id for n in chosen}
        edges = [e for e in self.graph.edges if e.source_node in ids and e.target_node in ids]
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
        kept = [Edge(source=_rename_end(e.source, e.source_node, fresh[e.source_node]),
                     target=_rename_end(e.target, e.target_node, fresh[e.target_node]))
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
        ids = [n for n in (node_ids if node_ids is not None else self.graph.node_ids()) if self.has_node(n)]
        placed = [self.node(n).position for n in ids if self.node(n).position is not None]
        origin = (min(p[0] for p in placed), min(p[1] for p in placed)) if placed else (0.0, 0.0)
        return layered_layout(self.graph, ids, boxes, origin)

    def place_unpositioned(self, boxes: dict[str, Box] | None = None) -> None:
        """Lay out the nodes that have no position, without an undo step or a modified mark.

        Called by the canvas when a file without positions is opened: positions are then part
        of the document (saved with it) and undoing everything returns to this state.
        """
        missing = [n.id for n in self.graph.nodes if n.position is None]
        if not missing:
            return
        placed = [n.position for n in self.graph.nodes if n.position is not None]
        origin = (0.0, max(p[1] for p in placed) + 200.0) if placed else (0.0, 0.0)
        for node_id, position in layered_layout(self.graph, missing, boxes, origin).items():
            self.apply_move(node_id, position)

    def insert_on_edge(self, type_name: str, key: EdgeKey, position: tuple[float, float]) -> str:
        """Add a layer and splice it into an edge; returns its id."""
        if self.find_edge(key) is None:
            raise ValueError(f"no edge from {key[0]} to {key[1]}")
        first_in, first_out = commands.first_ports(type_name)
        if first_in is None or first_out is None:
            raise ValueError(f"{type_name} has no {'input' if first_in is None else 'output'} to splice in")
        node = Node(id=self.unique_id(type_name), type=type_name, position=_point(position))
        ends = (commands.end_name(type_name, node.id, first_in, False),
                commands.end_name(type_name, node.id, first_out, True))
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

    # ----- low-level mutations, used only by undo commands ----------------------------------

    def apply_add_node(self, node: Node, index: int | None = None) -> None:
        self.graph.nodes.insert(len(self.graph.nodes) if index is None else index, node)
        self.node_added.emit(node.id)
        self._changed()

    def apply_remove_node(self, node_id: str, index: int | None = None) -> tuple[Node, int]:
        """Remove a node; ``index`` is a hint of where it is (checked)."""
        nodes = self.graph.nodes
        if index is None or not (0 <= index < len(nodes) and nodes[index].id == node_id):
            index = self.graph.node_ids().index(node_id)
        node = self.graph.nodes.pop(index)
        self.node_removed.emit(node_id)
        self._changed()
        return node, index

    def apply_add_edge(self, edge: Edge, index: int | None = None) -> None:
        self.graph.edges.insert(len(self.graph.edges) if index is None else index, edge)
        self.edge_added.emit(edge_key(edge))
        self._changed()

    def apply_remove_edge(self, key: EdgeKey, index: int | None = None) -> tuple[Edge, int]:
        """Remove an edge; ``index`` is a hint of where it is (checked)."""
        edges = self.graph.edges
        if index is None or not (0 <= index < len(edges) and edge_key(edges[index]) == key):
            index = [edge_key(e) for e in edges].index(key)
        edge = self.graph.edges.pop(index)
        self.edge_removed.emit(key)
        self._changed()
        return edge, index

    def apply_move(self, node_id: str, position: tuple[float, float] | None) -> None:
        self.node(node_id).position = position
        self.node_moved.emit(node_id)

    def apply_param(self, node_id: str, name: str, value: Any) -> None:
        """Set a parameter; ``None`` removes it (back to default or inferred)."""
        params = self.node(node_id).params
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
        self.node_changed.emit(node_id)
        self._changed()

    def apply_label(self, node_id: str, label: str | None) -> None:
        self.node(node_id).label = label or None
        self.node_changed.emit(node_id)
        self._changed()

    def apply_frozen(self, node_id: str, frozen: bool) -> None:
        self.node(node_id).frozen = frozen
        self.node_changed.emit(node_id)
        self._changed()

    def apply_rename(self, old: str, new: str) -> None:
        """Change a node id and every edge end that names it."""
        self.node(old).id = new
        for edge in self.graph.edges:
            edge.source = _rename_end(edge.source, old, new)
            edge.target = _rename_end(edge.target, old, new)
        self.node_renamed.emit(old, new)
        self._changed()

    def apply_graph_field(self, name: str, value: Any) -> None:
        """Set a top-level field (name, description, training, ...)."""
        setattr(self.graph, name, value)
        self._changed()

    def replace_graph(self, graph: Graph) -> None:
        """Swap in a whole new graph (open / new); clears undo history."""
        self.graph = graph
        self.undo_stack.clear()
        self.reset.emit()
        self.reanalyse()

    # ----- analysis ----------------------------------------------------------------------------

    def _changed(self) -> None:
        self._timer.start()

    def reanalyse(self) -> Analysis:
        """Re-run validation and shape inference now and notify the views."""
        self._timer.stop()
        self.analysis = analyze(self.graph)
        self.analysed.emit(self.analysis)
        return self.analysis


def _rename_end(end: str, old: str, new: str) -> str:
    node, port = split_end(end)
    if node != old:
        return end
    return new if port is None else f"{new}.{port}"


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
