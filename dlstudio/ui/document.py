"""The editor's document: a Graph, its undo stack, and events the views subscribe to.

Views never change the graph directly: they call the public edit methods here, each of which
pushes an undo command (:mod:`dlstudio.ui.commands`). Commands use the ``apply_*`` methods,
which change the graph and emit the fine-grained signals the canvas follows. After every
change the document re-runs analysis (debounced) and emits :attr:`analysed`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoStack

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.graph import Edge, Graph, Node, is_valid_id, split_end
from dlstudio.core.io import graph_to_json, load_graph, save_graph

EdgeKey = tuple[str, str]


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
        self.undo_stack.cleanChanged.connect(lambda clean: self.modified_changed.emit(not clean))
        self.analysis: Analysis = analyze(self.graph)
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self.reanalyse)

    # ----- files -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, parent: QObject | None = None) -> GraphDocument:
        """Load a file (raises GraphFileError with a one-line reason)."""
        return cls(load_graph(path), Path(path), parent)

    def save(self, path: str | Path | None = None) -> None:
        """Save atomically to ``path`` (or the current path) and mark the document clean."""
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("no file name: use save as")
        save_graph(self.graph, target)
        if target != self.path:
            self.path = target
            self.path_changed.emit(target)
        self.undo_stack.setClean()

    def to_json(self) -> str:
        return graph_to_json(self.graph)

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

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

    # ----- low-level mutations, used only by undo commands ----------------------------------

    def apply_add_node(self, node: Node, index: int | None = None) -> None:
        self.graph.nodes.insert(len(self.graph.nodes) if index is None else index, node)
        self.node_added.emit(node.id)
        self._changed()

    def apply_remove_node(self, node_id: str) -> tuple[Node, int]:
        index = self.graph.node_ids().index(node_id)
        node = self.graph.nodes.pop(index)
        self.node_removed.emit(node_id)
        self._changed()
        return node, index

    def apply_add_edge(self, edge: Edge, index: int | None = None) -> None:
        self.graph.edges.insert(len(self.graph.edges) if index is None else index, edge)
        self.edge_added.emit(edge_key(edge))
        self._changed()

    def apply_remove_edge(self, key: EdgeKey) -> tuple[Edge, int]:
        index = [edge_key(e) for e in self.graph.edges].index(key)
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
