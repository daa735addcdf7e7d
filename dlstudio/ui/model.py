"""The editor's document model: one open Graph with its file, undo stack, latest analysis, and
the signals views subscribe to.

The canvas shows and edits :attr:`DocumentModel.scope`: the file's graph, or a block of it
opened for editing (:meth:`DocumentModel.open_path`), whose node and edge lists the scope
shares, so that node and edge edits land in the block's definition while the file, its undo
stack, autosave and save stay the one :attr:`DocumentModel.graph`.

The graph changes only through the ``apply_*`` mutations, which the undo commands
(:mod:`dlstudio.ui.commands`) call; each emits the fine-grained signal the canvas follows. After
every change the model re-runs analysis (debounced) and emits :attr:`analysed`. The edits
that views call, each pushing one undo command, are :class:`dlstudio.ui.document.GraphDocument`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoStack

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.block_edits import inner_analysis
from dlstudio.core.catalogue import Catalogue, catalogue_for
from dlstudio.core.graph import Edge, Graph, Node, NodeIndex, is_valid_id, split_end
from dlstudio.core.io import graph_to_json, load_graph, paused_gc, save_graph
from dlstudio.core.layout import WRAP, Box, layered_layout
from dlstudio.core.wiring import resolve_end

EdgeKey = tuple[str, str]


def edge_key(edge: Edge) -> EdgeKey:
    return (edge.source, edge.target)


class DocumentModel(QObject):
    """One open graph with its file path, undo stack and latest analysis."""

    node_added = Signal(str)
    node_removed = Signal(str)
    node_changed = Signal(str)  # params, label or type
    node_moved = Signal(str)
    node_renamed = Signal(str, str)  # old id, new id
    edge_added = Signal(object)  # EdgeKey
    edge_removed = Signal(object)  # EdgeKey
    reset = Signal()  # the whole graph was replaced
    scope_changed = Signal()  # the canvas shows another graph: a block opened or closed, or restructured
    catalogue_changed = Signal()  # the file's blocks, so its layer types, changed
    analysed = Signal(object)  # Analysis
    modified_changed = Signal(bool)
    path_changed = Signal(object)  # Path | None

    def __init__(self, graph: Graph | None = None, path: Path | None = None,
                 parent: QObject | None = None, catalogue: Catalogue | None = None) -> None:
        super().__init__(parent)
        self.graph = graph or Graph(name="untitled")
        #: the blocks opened for editing, outermost first (empty while the graph itself is edited)
        self.scope_path: tuple[str, ...] = ()
        #: the graph the canvas shows and node and edge edits change (see the module docstring)
        self.scope: Graph = self.graph
        self._index = NodeIndex(self.scope)
        #: the layer types this graph may use: the views look types up here, never in a global
        self.catalogue = catalogue_for(self.graph) if catalogue is None else catalogue
        self._own_catalogue = catalogue is None  # follows the file's blocks
        self._scope_analysis: tuple[Analysis, tuple[str, ...], Analysis] | None = None
        self.path = path
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self.analysis: Analysis = analyze(self.graph, self.catalogue)
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self.reanalyse)

    # ----- files -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, parent: QObject | None = None) -> Self:
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
        node = self._lookup(node_id)
        if node is None:
            raise KeyError(node_id)
        return node

    def has_node(self, node_id: str) -> bool:
        return self._lookup(node_id) is not None

    def _lookup(self, node_id: str) -> Node | None:
        if self._index.graph is not self.scope:
            self._index = NodeIndex(self.scope)
        return self._index.get(node_id)

    def edges_of(self, node_id: str) -> list[Edge]:
        return [e for e in self.scope.edges if node_id in (e.source_node, e.target_node)]

    def find_edge(self, key: EdgeKey) -> Edge | None:
        return next((e for e in self.scope.edges if edge_key(e) == key), None)

    def unique_id(self, base: str, taken: set[str] | None = None) -> str:
        """A fresh node id like ``conv2d_3`` (legal and unused)."""
        stem = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base.lower()) or "node"
        stem = stem if is_valid_id(stem) else f"n_{stem}"[:60]
        used = {n.id for n in self.scope.nodes} | (taken or set())
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

    def connect_problem(self, source: str, target: str, ignore: EdgeKey | None = None) -> str | None:
        """Why an edge ``source -> target`` cannot be made, or None when it can."""
        src = resolve_end(self.scope, source, is_source=True, catalogue=self.catalogue)
        dst = resolve_end(self.scope, target, is_source=False, catalogue=self.catalogue)
        if src is None:
            return f"'{source}' is not an output port"
        if dst is None:
            return f"'{target}' is not an input port"
        if src[0] == dst[0]:
            return "a node cannot feed itself"
        others = [e for e in self.scope.edges if edge_key(e) != ignore]
        for edge in others:
            if resolve_end(self.scope, edge.target, False, catalogue=self.catalogue) == dst and \
                    resolve_end(self.scope, edge.source, True, catalogue=self.catalogue) == src:
                return f"{src[0]}.{src[1]} is already connected to {dst[0]}.{dst[1]}"
        if src[0] in self.reachable(dst[0], others):
            return f"connecting {src[0]} to {dst[0]} would make a cycle"
        return None

    def reachable(self, node_id: str, edges: Iterable[Edge] | None = None, forward: bool = True) -> set[str]:
        """Nodes reachable from ``node_id`` along edges (downstream, or upstream if not forward)."""
        step: dict[str, list[str]] = {}
        for edge in self.scope.edges if edges is None else edges:
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
        port = resolve_end(self.scope, target, is_source=False, catalogue=self.catalogue)
        return next((e for e in self.scope.edges if edge_key(e) != ignore and port is not None
                     and resolve_end(self.scope, e.target, False, catalogue=self.catalogue) == port), None)

    # ----- low-level mutations, used only by undo commands ----------------------------------

    def apply_add_node(self, node: Node, index: int | None = None) -> None:
        self.scope.nodes.insert(len(self.scope.nodes) if index is None else index, node)
        self.node_added.emit(node.id)
        self._changed()

    def apply_remove_node(self, node_id: str, index: int | None = None) -> tuple[Node, int]:
        """Remove a node; ``index`` is a hint of where it is (checked)."""
        nodes = self.scope.nodes
        if index is None or not (0 <= index < len(nodes) and nodes[index].id == node_id):
            index = self.scope.node_ids().index(node_id)
        node = nodes.pop(index)
        self.node_removed.emit(node_id)
        self._changed()
        return node, index

    def apply_add_edge(self, edge: Edge, index: int | None = None) -> None:
        self.scope.edges.insert(len(self.scope.edges) if index is None else index, edge)
        self.edge_added.emit(edge_key(edge))
        self._changed()

    def apply_remove_edge(self, key: EdgeKey, index: int | None = None) -> tuple[Edge, int]:
        """Remove an edge; ``index`` is a hint of where it is (checked)."""
        edges = self.scope.edges
        if index is None or not (0 <= index < len(edges) and edge_key(edges[index]) == key):
            index = [edge_key(e) for e in edges].index(key)
        edge = edges.pop(index)
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
        for edge in self.scope.edges:
            edge.source = rename_end(edge.source, old, new)
            edge.target = rename_end(edge.target, old, new)
        self.node_renamed.emit(old, new)
        self._changed()

    def apply_graph_field(self, name: str, value: Any) -> None:
        """Set a top-level field (name, description, training, ...)."""
        setattr(self.graph, name, value)
        self._changed()

    def replace_graph(self, graph: Graph) -> None:
        """Swap in a whole new graph (open / new) with its catalogue; clears undo history."""
        self.graph = self.scope = graph
        self.scope_path = ()
        self.catalogue = catalogue_for(graph)
        self._own_catalogue = True
        self.undo_stack.clear()
        self._timer.stop()
        with paused_gc(long_lived=True):  # thousands of items and views are made, none in a cycle
            self.analysis = analyze(graph, self.catalogue)  # the views rebuild with this graph's shapes
            self.reset.emit()
            self.analysed.emit(self.analysis)

    def place_unpositioned(self, boxes: dict[str, Box] | None = None) -> None:
        """Lay out the nodes that have no position, without an undo step or a modified mark.

        Called by the canvas when a file without positions is opened: positions are then part
        of the document (saved with it) and undoing everything returns to this state.
        """
        missing = [n.id for n in self.scope.nodes if n.position is None]
        if not missing:
            return
        placed = [n.position for n in self.scope.nodes if n.position is not None]
        origin = (0.0, max(p[1] for p in placed) + 200.0) if placed else (0.0, 0.0)
        for node_id, position in layered_layout(self.scope, missing, boxes, origin, wrap=WRAP,
                                                     catalogue=self.catalogue).items():
            self.apply_move(node_id, position)

    # ----- analysis ----------------------------------------------------------------------------

    def _changed(self) -> None:
        self._timer.start()

    def reanalyse(self) -> Analysis:
        """Re-run validation and shape inference now and notify the views."""
        self._timer.stop()
        self._refresh_catalogue()
        self.analysis = analyze(self.graph, self.catalogue)
        self.analysed.emit(self.analysis)
        return self.analysis

    def _refresh_catalogue(self) -> None:
        """Follow the file's blocks (edited in place, or replaced) with its catalogue."""
        if not self._own_catalogue:
            return
        catalogue = catalogue_for(self.graph)
        if catalogue is not self.catalogue:
            self.catalogue = catalogue
            self.catalogue_changed.emit()

    @property
    def scope_analysis(self) -> Analysis:
        """What the canvas shows: the analysis of the graph, or, in a block, of the block's
        first use (see :func:`~dlstudio.core.block_edits.inner_analysis`)."""
        if not self.scope_path:
            return self.analysis
        cached = self._scope_analysis
        if cached is None or cached[0] is not self.analysis or cached[1] != self.scope_path:
            inner = inner_analysis(self.analysis, self.scope_path[-1])
            cached = self._scope_analysis = (self.analysis, self.scope_path, inner)
        return cached[2]

    # ----- blocks opened for editing -----------------------------------------------------------

    def open_path(self, path: Sequence[str]) -> None:
        """Edit block ``path[-1]``, opened from the graph through the blocks before it; ``()``
        goes back to the graph. ValueError when the file has no such block."""
        path = tuple(path)
        if path == self.scope_path:
            return
        missing = [name for name in path if name not in (self.graph.blocks or {})]
        if missing:
            raise ValueError(f"the file has no block '{missing[0]}'")
        self.scope_path = path
        self._show_scope()

    def open_block(self, node_id: str) -> None:
        """Edit the block that node ``node_id`` (of the graph shown now) uses."""
        node = self.node(node_id)
        if node.type not in (self.graph.blocks or {}):
            raise ValueError(f"'{node_id}' is a {node.type}, not a block of this file")
        self.open_path((*self.scope_path, node.type))

    def _show_scope(self) -> None:
        self._refresh_catalogue()
        if self.scope_path:
            block = (self.graph.blocks or {})[self.scope_path[-1]]
            # shares the block's lists: node and edge edits change the block's definition
            self.scope = Graph.model_construct(name=self.scope_path[-1], nodes=block.nodes,
                                               edges=block.edges, blocks=self.graph.blocks)
        else:
            self.scope = self.graph
        self.scope_changed.emit()

    def apply_graph(self, graph: Graph) -> None:
        """Replace the graph by an edited whole (group into block, ungroup, make unique), keep
        the blocks opened that still exist, and show it analysed."""
        self.graph = graph
        blocks = graph.blocks or {}
        opened = self.scope_path
        kept = next((i for i, name in enumerate(opened) if name not in blocks), len(opened))
        self.scope_path = opened[:kept]
        self._timer.stop()
        self._refresh_catalogue()
        self.analysis = analyze(graph, self.catalogue)
        self._show_scope()
        self.analysed.emit(self.analysis)


def rename_end(end: str, old: str, new: str) -> str:
    """``end`` with node ``old`` renamed to ``new`` (other ends unchanged)."""
    node, port = split_end(end)
    if node != old:
        return end
    return new if port is None else f"{new}.{port}"
