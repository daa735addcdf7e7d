"""Undo commands: every edit of a :class:`~dlstudio.ui.model.DocumentModel` is one of these.

A command changes the document only, through its ``apply_*`` mutations; the canvas and the
panels follow the document's signals. Each command records what it removed together with
the list index it had, and undo puts it back at that index, so undoing everything gives back
exactly the document that was opened (byte for byte through ``graph_to_json``).

A command on nodes and edges (a :class:`ScopedCommand`) remembers which graph it changed, the
file's or a block opened for editing, and opens that graph again before it is undone or
redone, so every step happens where it was made, and is seen there.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from PySide6.QtGui import QUndoCommand

from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.ui.model import DocumentModel, EdgeKey, edge_key

MOVE_ID = 1001
PARAM_ID = 1002


class ScopedCommand(QUndoCommand):
    """A command on the nodes and edges of the graph shown when it was made; subclasses call
    :meth:`enter` first in ``redo`` and ``undo``."""

    def __init__(self, doc: DocumentModel, text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.path = doc.scope_path

    def enter(self) -> None:
        self.doc.open_path(self.path)


# ----- structure ------------------------------------------------------------------------------


class AddItems(ScopedCommand):
    """Append nodes and edges (add, paste, duplicate); undo removes them from the end."""

    def __init__(self, doc: DocumentModel, nodes: list[Node], edges: list[Edge], text: str) -> None:
        super().__init__(doc, text)
        self.nodes = [n.model_copy(deep=True) for n in nodes]
        self.edges = [e.model_copy(deep=True) for e in edges]

    def redo(self) -> None:
        self.enter()
        for node in self.nodes:
            self.doc.apply_add_node(node.model_copy(deep=True))
        for edge in self.edges:
            self.doc.apply_add_edge(edge.model_copy(deep=True))

    def undo(self) -> None:
        self.enter()
        end = len(self.doc.scope.edges)
        for offset, edge in enumerate(reversed(self.edges)):
            self.doc.apply_remove_edge(edge_key(edge), end - 1 - offset)
        end = len(self.doc.scope.nodes)
        for offset, node in enumerate(reversed(self.nodes)):
            self.doc.apply_remove_node(node.id, end - 1 - offset)


class RemoveItems(ScopedCommand):
    """Delete nodes (with every edge touching them) and edges; undo restores list positions."""

    def __init__(self, doc: DocumentModel, node_ids: Iterable[str], edge_keys: Iterable[EdgeKey],
                 text: str = "Delete") -> None:
        super().__init__(doc, text)
        self.node_ids = list(dict.fromkeys(node_ids))
        self.edge_keys = list(dict.fromkeys(edge_keys))
        self.removed_nodes: list[tuple[Node, int]] = []
        self.removed_edges: list[tuple[Edge, int]] = []

    def redo(self) -> None:
        self.enter()
        graph = self.doc.scope
        doomed = set(self.node_ids)
        keys = set(self.edge_keys)
        edge_rows = [i for i, e in enumerate(graph.edges)
                     if edge_key(e) in keys or e.source_node in doomed or e.target_node in doomed]
        node_rows = [i for i, n in enumerate(graph.nodes) if n.id in doomed]
        self.removed_edges = [(graph.edges[i], i) for i in edge_rows]
        self.removed_nodes = [(graph.nodes[i], i) for i in node_rows]
        for edge, index in reversed(self.removed_edges):
            self.doc.apply_remove_edge(edge_key(edge), index)
        for node, index in reversed(self.removed_nodes):
            self.doc.apply_remove_node(node.id, index)

    def undo(self) -> None:
        self.enter()
        for node, index in self.removed_nodes:
            self.doc.apply_add_node(node, index)
        for edge, index in self.removed_edges:
            self.doc.apply_add_edge(edge, index)


class ReplaceEdges(ScopedCommand):
    """Remove some edges and add others (connect, disconnect, reconnect)."""

    def __init__(self, doc: DocumentModel, remove: Iterable[EdgeKey], add: Iterable[Edge],
                 text: str, at: int | None = None) -> None:
        super().__init__(doc, text)
        self.remove = list(dict.fromkeys(remove))
        self.add = list(add)
        self.at = at
        self.removed: list[tuple[Edge, int]] = []

    def redo(self) -> None:
        self.enter()
        keys = set(self.remove)
        rows = [i for i, e in enumerate(self.doc.scope.edges) if edge_key(e) in keys]
        self.removed = [(self.doc.scope.edges[i], i) for i in rows]
        for edge, index in reversed(self.removed):
            self.doc.apply_remove_edge(edge_key(edge), index)
        first = self.removed[0][1] if self.removed and self.at is None else self.at
        for offset, edge in enumerate(self.add):
            index = None if first is None else min(first + offset, len(self.doc.scope.edges))
            self.doc.apply_add_edge(edge.model_copy(deep=True), index)

    def undo(self) -> None:
        self.enter()
        for edge in reversed(self.add):
            self.doc.apply_remove_edge(edge_key(edge))
        for edge, index in self.removed:
            self.doc.apply_add_edge(edge, index)


class InsertOnEdge(ScopedCommand):
    """Add a node and splice it into an edge: ``a -> b`` becomes ``a -> new -> b``."""

    def __init__(self, doc: DocumentModel, node: Node, key: EdgeKey, ends: tuple[str, str]) -> None:
        super().__init__(doc, f"Insert {node.type} on edge")
        self.add = AddItems(doc, [node], [], "")
        source, target = key
        edges = [Edge(source=source, target=ends[0]), Edge(source=ends[1], target=target)]
        self.rewire = ReplaceEdges(doc, [key], edges, "")

    def redo(self) -> None:
        self.enter()
        self.add.redo()
        self.rewire.redo()

    def undo(self) -> None:
        self.enter()
        self.rewire.undo()
        self.add.undo()


# ----- values ---------------------------------------------------------------------------------


class MoveNodes(ScopedCommand):
    """Set node positions; consecutive moves of the same set of nodes merge into one step."""

    def __init__(self, doc: DocumentModel, positions: dict[str, tuple[float, float] | None],
                 merge: bool = True, text: str = "Move") -> None:
        super().__init__(doc, text)
        self.new = dict(positions)
        self.old = {node_id: doc.node(node_id).position for node_id in positions}
        self.merge = merge

    def id(self) -> int:  # noqa: A003 - Qt's name
        return MOVE_ID if self.merge else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, MoveNodes) or not other.merge or set(other.new) != set(self.new) \
                or other.path != self.path:
            return False
        self.new = dict(other.new)
        return True

    def redo(self) -> None:
        self.enter()
        for node_id, position in self.new.items():
            self.doc.apply_move(node_id, position)

    def undo(self) -> None:
        self.enter()
        for node_id, position in self.old.items():
            self.doc.apply_move(node_id, position)


_MISSING = object()


class SetParam(ScopedCommand):
    """Set (or, with None, remove) one parameter; typing into one field merges into one step."""

    def __init__(self, doc: DocumentModel, node_id: str, name: str, value: Any) -> None:
        super().__init__(doc, f"Set {node_id}.{name}")
        self.node_id = node_id
        self.name = name
        self.new = copy.deepcopy(value)
        self.old = copy.deepcopy(doc.node(node_id).params.get(name))
        self.order = list(doc.node(node_id).params)

    def id(self) -> int:  # noqa: A003
        return PARAM_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802
        if not isinstance(other, SetParam) or (other.path, other.node_id, other.name) != (
                self.path, self.node_id, self.name):
            return False
        self.new = other.new
        if self.new == self.old:
            self.setObsolete(True)
        return True

    def redo(self) -> None:
        self.enter()
        self.doc.apply_param(self.node_id, self.name, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.enter()
        self.doc.apply_param(self.node_id, self.name, copy.deepcopy(self.old))
        params = self.doc.node(self.node_id).params
        ordered = {key: params[key] for key in self.order if key in params}
        params.clear()
        params.update(ordered)


class SetLabel(ScopedCommand):
    def __init__(self, doc: DocumentModel, node_id: str, label: str | None) -> None:
        super().__init__(doc, f"Label {node_id}")
        self.node_id = node_id
        self.new = label or None
        self.old = doc.node(node_id).label

    def redo(self) -> None:
        self.enter()
        self.doc.apply_label(self.node_id, self.new)

    def undo(self) -> None:
        self.enter()
        self.doc.apply_label(self.node_id, self.old)


class SetFrozen(ScopedCommand):
    def __init__(self, doc: DocumentModel, node_id: str, frozen: bool) -> None:
        super().__init__(doc, f"{'Freeze' if frozen else 'Unfreeze'} {node_id}")
        self.node_id = node_id
        self.frozen = frozen

    def redo(self) -> None:
        self.enter()
        self.doc.apply_frozen(self.node_id, self.frozen)

    def undo(self) -> None:
        self.enter()
        self.doc.apply_frozen(self.node_id, not self.frozen)


class Rename(ScopedCommand):
    """Change a node id; the edges that name it follow."""

    def __init__(self, doc: DocumentModel, old: str, new: str) -> None:
        super().__init__(doc, f"Rename {old} to {new}")
        self.old = old
        self.new = new

    def redo(self) -> None:
        self.enter()
        self.doc.apply_rename(self.old, self.new)

    def undo(self) -> None:
        self.enter()
        self.doc.apply_rename(self.new, self.old)


class SetGraphField(QUndoCommand):
    """Set a top-level field of the graph (name, description, training, ...)."""

    def __init__(self, doc: DocumentModel, name: str, value: Any) -> None:
        super().__init__(f"Set {name}")
        self.doc = doc
        self.name = name
        self.new = copy.deepcopy(value)
        self.old = copy.deepcopy(getattr(doc.graph, name))

    def redo(self) -> None:
        self.doc.apply_graph_field(self.name, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.doc.apply_graph_field(self.name, copy.deepcopy(self.old))


class ReplaceGraph(ScopedCommand):
    """Replace the whole graph by an edited one: the restructuring edits (group into block,
    ungroup, make unique) change nodes, edges and blocks together, computed as a new graph
    by :mod:`dlstudio.core.block_edits`; undo puts back the graph as it was."""

    def __init__(self, doc: DocumentModel, graph: Graph, text: str) -> None:
        super().__init__(doc, text)
        self.old = doc.graph.copy_deep()
        self.new = graph.copy_deep()

    def redo(self) -> None:
        self.enter()
        self.doc.apply_graph(self.new.copy_deep())

    def undo(self) -> None:
        self.enter()
        self.doc.apply_graph(self.old.copy_deep())
