"""The scene mirrors a :class:`GraphDocument`: one item per node and per edge, kept in step by
the document's signals. It never changes the document except to issue the move command when a
drag ends; undo and redo reach it through the same signals as any other edit.

A file without positions is laid out when the scene is built (``place_unpositioned``): the
positions become part of the document without an undo step or a modified mark, so saving
keeps them and undoing everything returns to this laid-out state.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from PySide6.QtCore import QLineF, QPointF, QRectF, QSizeF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsSceneHelpEvent,
    QGraphicsSceneMouseEvent,
)
from shiboken6 import isValid

from dlstudio.core.analysis import Analysis, Diagnostic
from dlstudio.core.graph import Node, split_end
from dlstudio.core.layout import Box
from dlstudio.ui.canvas import style as st
from dlstudio.ui.canvas.edge_item import CORNER, WIDTH, EdgeItem, EdgeKey, edge_pen
from dlstudio.ui.canvas.grid import Rect, RectGrid
from dlstudio.ui.canvas.node_item import NodeItem, node_view
from dlstudio.ui.canvas.port_item import End, PortKey
from dlstudio.ui.document import GraphDocument, edge_key

NO_PEN = QPen(Qt.PenStyle.NoPen)
#: How far an edge routed around nodes keeps from them.
CHANNEL_GAP = 30.0
#: The most nodes an edge is routed around; past it the edge is drawn straight (see ``grid``).
ROUTE_LIMIT = 32
#: The most edges a node's move routes again (those whose way it leaves or enters); past it,
#: only its own edges follow.
REROUTE_LIMIT = 64
#: Margin added around the items when the scene rect grows.
ROOM = 4000.0
#: Depth of the scene index's tree. Qt picks log2 of the item count (16 for 16k nodes and their
#: edges: 65536 leaves), and files an edge in every leaf it crosses, so one node feeding
#: thousands across the graph took a second and a half to index; 4096 leaves take a tenth.
INDEX_DEPTH = 12
#: Edges a graph needs before a view between the overview and the detailed zoom draws them
#: together, in one stroke, instead of one paint call each (a node feeding thousands of
#: others puts them all in view at once).
BATCH_EDGES = 4000
NO_CONTENTS = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
NO_BRUSH = QBrush(Qt.BrushStyle.NoBrush)
#: The item and port at the source and at the target of an edge.
Ends = tuple[tuple[NodeItem, str], tuple[NodeItem, str]]
Points = tuple[float, float, float, float]  # where an edge starts and ends: x, y, x, y


def _cosmetic(colour: QColor, width: float) -> QPen:
    pen = QPen(colour, width)
    pen.setCosmetic(True)
    return pen


class GraphScene(QGraphicsScene):
    """Graphics items for every node and edge of ``document``."""

    def __init__(self, document: GraphDocument, parent: Any = None) -> None:
        super().__init__(parent)
        self.document = document
        self.style = st.canvas_style()
        self.snapping = True
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[EdgeKey, EdgeItem] = {}
        self._edges_of: dict[str, set[EdgeKey]] = {}
        self._split: dict[EdgeKey, tuple[End, End]] = {}  # each shown edge's ends as (node, port)
        self._node_obj: dict[str, Node] = {}  # the document's node objects, by id
        self._grid: RectGrid[NodeItem] = RectGrid()  # where the nodes are, for routing edges
        self._ways: RectGrid[EdgeItem] = RectGrid()  # where the nodes decide an edge's route
        self._ways_known = True  # else made when first asked (a rebuild leaves it to then)
        self._syncing = False
        self._building = False
        self._rebuilt_with: Analysis | None = None  # the analysis the last rebuild showed
        self.overview = False
        self._overview: Any = None
        self.edge_batch = False  # the edges are drawn together, by paint_edge_batch
        self._batch: tuple[QRectF, QPainterPath] | None = None  # the area it covers, its curves
        self._index_items()
        document.node_added.connect(self._node_added)
        document.node_removed.connect(self._node_removed)
        document.node_changed.connect(self._refresh_node)
        document.node_moved.connect(self._node_moved)
        document.node_renamed.connect(self._node_renamed)
        document.edge_added.connect(self._edge_added)
        document.edge_removed.connect(self._edge_removed)
        document.reset.connect(self.rebuild)
        document.scope_changed.connect(self.rebuild)
        document.analysed.connect(self._analysed)
        self.selectionChanged.connect(self._overview_stale)  # its selected blocks; no edge moved
        self.selectionChanged.connect(self._raise_selected)
        self._raised: list[NodeItem] = []  # the selected nodes, drawn above the others
        self._lit: list[EdgeItem] = []  # the selected edges
        self._stale: set[str] = set()
        self._stale_timer = QTimer(self, singleShot=True, interval=0)
        self._stale_timer.timeout.connect(self._refresh_stale)
        self._selection_lost = QTimer(self, singleShot=True, interval=0)
        self._selection_lost.timeout.connect(self.selectionChanged.emit)
        self.rebuild()

    # ----- building ------------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Recreate every item from the document (on open, and when the graph is replaced).

        Each item is made, sized and placed once, and each edge routed once, before the items
        join the scene (with its index off; it is built once, on the first paint): the cost
        grows with nodes + edges."""
        self.clear()
        self.nodes.clear()
        self.edges.clear()
        self._edges_of.clear()
        self._split.clear()
        self._grid.clear()
        self._ways.clear()
        self._ways_known = False  # the edges' ways are indexed when a move first asks
        self._node_obj = {node.id: node for node in self.document.scope.nodes}
        analysis = self.document.scope_analysis
        self._building = True
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        try:
            for node in self.document.scope.nodes:
                self._make_node(node.id)
            for edge in self.document.scope.edges:
                self._edge_added(edge_key(edge))
            self._show_nodes(analysis)  # the real sizes, for the layout
            if any(node.position is None for node in self.document.scope.nodes):
                self.document.place_unpositioned(self.boxes())
            self._syncing = True
            for node in self.document.scope.nodes:
                self.nodes[node.id].setPos(QPointF(*(node.position or (0.0, 0.0))))
            self._building = self._syncing = False
            for item in self.nodes.values():
                self._grid.place(item, _node_rect(item))
            self._place_all_edges(analysis)
            for item in [*self.nodes.values(), *self.edges.values()]:
                self.addItem(item)
            for edge in self.edges.values() if self.edge_batch else ():
                if edge.error:  # shown red, by itself
                    edge.show_state()
        finally:
            self._building = self._syncing = False
            self._index_items()  # indexed once, as placed
        self._rebuilt_with = analysis
        self.setSceneRect(self.graph_rect().adjusted(-ROOM, -ROOM, ROOM, ROOM))
        self.overview_dirty()

    def _index_items(self) -> None:
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setBspTreeDepth(INDEX_DEPTH)

    def graph_rect(self) -> QRectF:
        """The rectangle around every node and its ports (the edges keep within :data:`ROOM`
        of it, and their bends within a framing margin), found without asking each of tens of
        thousands of items for its bounds as ``itemsBoundingRect`` does."""
        if not self.nodes:
            return QRectF()
        rects = [_node_rect(item) for item in self.nodes.values()]
        left, top = min(r[0] for r in rects), min(r[1] for r in rects)
        return QRectF(left, top, max(r[2] for r in rects) - left, max(r[3] for r in rects) - top)

    def _make_room(self, item: QGraphicsItem) -> None:
        """Grow the scene rect in big steps: the BSP index is rebuilt whenever it changes."""
        rect = item.sceneBoundingRect()
        if not self.sceneRect().contains(rect):
            self.setSceneRect(self.sceneRect().united(rect.adjusted(-ROOM, -ROOM, ROOM, ROOM)))

    def input_rect(self) -> QRectF | None:
        """The rectangle around the graph's Input nodes, or None without any."""
        rects = [QRectF(item.pos(), QSizeF(item.width, item.height))
                 for item in self.nodes.values() if item.view.type_name == "Input"]
        united = rects[0] if rects else None
        for rect in rects[1:]:
            united = united.united(rect)
        return united

    def boxes(self) -> dict[str, Box]:
        """Each node's size and port offsets, for auto-layout."""
        return {node_id: item.box() for node_id, item in self.nodes.items()}

    def set_style(self, style: st.CanvasStyle) -> None:
        self.style = style
        for item in [*self.nodes.values(), *self.edges.values()]:
            item.set_style(style)
        self.overview_dirty()
        self.update()

    def _make_node(self, node_id: str) -> NodeItem:
        item = NodeItem(node_id, self.style)
        if self.overview:
            item.setFlag(NO_CONTENTS)
        self.nodes[node_id] = item
        self._edges_of.setdefault(node_id, set())
        if not self._building:  # else added once placed
            self.addItem(item)
            self._refresh_node(node_id)
        return item

    # ----- document signals ----------------------------------------------------------------------

    def _node_added(self, node_id: str) -> None:
        self._node_obj[node_id] = next(n for n in reversed(self.document.scope.nodes) if n.id == node_id)
        self._make_node(node_id)
        self._node_moved(node_id)

    def _node_removed(self, node_id: str) -> None:
        for key in list(self._edges_of.pop(node_id, ())):
            self._edge_removed(key)
        item = self.nodes.pop(node_id, None)
        self._node_obj.pop(node_id, None)
        if item is not None:
            rect = self._grid.rect_of(item)
            self._grid.remove(item)
            self._remove(item)
            self._reroute_across(rect)
        self.overview_dirty()

    def _node_moved(self, node_id: str) -> None:
        if self._building:
            return
        item = self.nodes.get(node_id)
        node = self._node_obj.get(node_id)
        position = node.position if item is not None and node is not None else None
        if item is None or position is None:
            return
        self._syncing = True
        try:
            item.setPos(QPointF(*position))
        finally:
            self._syncing = False
        self.node_item_moved(node_id)

    def _node_renamed(self, old: str, new: str) -> None:
        item = self.nodes.pop(old)
        item.node_id = new
        self.nodes[new] = item
        self._node_obj[new] = self._node_obj.pop(old)
        for key in list(self._edges_of.pop(old, ())):
            self._edge_removed(key)
        self._edges_of[new] = set()
        for edge in self.document.edges_of(new):
            self._edge_added(edge_key(edge))
        self._refresh_node(new)

    def _edge_added(self, key: EdgeKey) -> None:
        ends = split_end(key[0]), split_end(key[1])
        source, target = ends[0][0], ends[1][0]
        if source not in self.nodes or target not in self.nodes or key in self.edges:
            return
        item = EdgeItem(key, self.style)
        if self.overview or self.edge_batch:
            item.batched = self.edge_batch
            item.setFlag(NO_CONTENTS)
        self.edges[key] = item
        self._split[key] = ends
        self._edges_of[source].add(key)
        self._edges_of[target].add(key)
        if self._building:  # placed, labelled and added once the nodes are
            return
        self.addItem(item)
        self._refresh_later(source, target)
        self._place_edge(item)
        self._label_edge(item, self.document.scope_analysis)
        self.overview_dirty()

    def _edge_removed(self, key: EdgeKey) -> None:
        item = self.edges.pop(key, None)
        if item is None:
            return
        ends = self._split.pop(key)
        self._ways.remove(item)
        for node_id, _ in ends:
            self._edges_of.get(node_id, set()).discard(key)
            if node_id in self.nodes:
                self._refresh_later(node_id)
        self._remove(item)
        self.overview_dirty()

    def _remove(self, item: QGraphicsItem) -> None:
        """Remove an item; losing a selected one is reported once, after the whole edit."""
        selected = item.isSelected()
        self.blockSignals(selected)
        try:
            self.removeItem(item)
        finally:
            self.blockSignals(False)
        if selected:
            self._selection_lost.start()

    def _refresh_later(self, *node_ids: str) -> None:
        """Refresh these nodes (connected ports, variadic spares) once, after the current edit."""
        self._stale.update(node_ids)
        self._stale_timer.start()

    def _refresh_stale(self) -> None:
        stale, self._stale = self._stale, set()
        for node_id in stale:
            self._refresh_node(node_id)

    def _refresh_node(self, node_id: str, analysis: Analysis | None = None) -> None:
        item = self.nodes.get(node_id)
        node = self._node_obj.get(node_id)
        if item is None or node is None:
            return
        view = node_view(node, self._ends_of(node_id), self.document.catalogue,
                         analysis or self.document.scope_analysis)
        if item.refresh(view):
            self.node_item_moved(node_id)

    def _analysed(self, _analysis: Analysis) -> None:
        """Show a new analysis (of the graph, or of the block shown); the one a rebuild has just
        shown (a graph replaced) is skipped."""
        shown, self._rebuilt_with = self._rebuilt_with, None
        current = self.document.scope_analysis
        if current is not shown:
            self.apply_analysis(current)

    def apply_analysis(self, analysis: Analysis) -> None:
        """Show the latest shapes, counts and problems on every node and edge."""
        self._show_nodes(analysis)
        self._label_edges(analysis)
        self.overview_dirty()

    def _show_nodes(self, analysis: Analysis) -> None:
        self._stale.clear()
        problems: dict[str, list[Diagnostic]] = {}
        for diagnostic in analysis.diagnostics:
            problems.setdefault(diagnostic.node or "", []).append(diagnostic)
        for node in self.document.scope.nodes:
            item = self.nodes.get(node.id)
            view = node_view(node, self._ends_of(node.id), self.document.catalogue, analysis,
                             problems.get(node.id, []))
            if item is not None and item.refresh(view) and not self._building:  # else placed later
                self.node_item_moved(node.id)

    def _label_edges(self, analysis: Analysis) -> None:
        bad_ports = _bad_ports(analysis)
        for item in self.edges.values():
            self._label_edge(item, analysis, bad_ports)

    def _place_all_edges(self, analysis: Analysis) -> None:
        """Label and place every edge once its nodes are placed, each output's point worked out
        once (one output feeding thousands of nodes is one point)."""
        bad_ports = _bad_ports(analysis)
        starts: dict[tuple[str, str], tuple[float, float]] = {}  # where each output is
        for key, item in self.edges.items():
            ends = self.edge_ends(key)  # the ports as shown
            if ends is None:
                continue
            (source, out), (target, into) = ends
            self._label_edge(item, analysis, bad_ports, ends)
            start = starts.get((source.node_id, out))
            if start is None:
                start = starts[source.node_id, out] = source.port_scene_xy(out, False)
            self._place_edge(item, grow=False, ends=ends, points=(*start, *target.port_scene_xy(into, True)))

    # ----- geometry ------------------------------------------------------------------------------

    def _ends_of(self, node_id: str) -> list[tuple[End, End]]:
        """The ends, as (node, port), of each edge shown touching ``node_id``."""
        split = self._split
        return [split[key] for key in self._edges_of.get(node_id, ())]

    def end_port(self, end: str, is_source: bool) -> tuple[NodeItem, str] | None:
        """The item and port an edge end attaches to (the first port for a bare or unknown end)."""
        return self._port_of(*split_end(end), is_source)

    def _port_of(self, node_id: str, port: str | None, is_source: bool) -> tuple[NodeItem, str] | None:
        item = self.nodes.get(node_id)
        if item is None:
            return None
        names = item.view.ports.outputs if is_source else item.view.ports.inputs
        return item, (port if port in names else (names[0] if names else ""))

    def edge_ends(self, key: EdgeKey) -> Ends | None:
        """The item and port at each end of the edge ``key``; None when an end is missing."""
        split = self._split.get(key)
        source, target = split if split is not None else (split_end(key[0]), split_end(key[1]))
        source_port = self._port_of(*source, True)
        target_port = self._port_of(*target, False)
        return (source_port, target_port) if source_port and target_port else None

    def _place_edge(self, item: EdgeItem, grow: bool = True, ends: Ends | None = None,
                    points: Points | None = None) -> None:
        """Run the edge between its ports (around the nodes in its way); with ``grow``, the
        scene rect grows to hold it. ``ends`` are its :meth:`edge_ends`, and ``points`` where
        those ports are, when the caller has them."""
        ends = ends or self.edge_ends(item.key)
        if ends is not None:
            source, target = ends
            sx, sy, ex, ey = points or (*source[0].port_scene_xy(source[1], False),
                                        *target[0].port_scene_xy(target[1], True))
            channel = self._channel(sx, sy, ex, ey, source[0], target[0])
            item.place(sx, sy, ex, ey, channel)
            if self._ways_known:
                self._index_way(item)
            if grow and not self._building:
                self._make_room(item)

    def _index_way(self, item: EdgeItem) -> None:
        way = _way(*item.ends_xy, item.channel)
        if way is not None and self._ways.covers_few_cells(way):
            self._ways.place(item, way)
        else:
            self._ways.remove(item)

    def _edge_ways(self) -> RectGrid[EdgeItem]:
        """Where the nodes decide each edge's route (indexed on first use after a rebuild: only
        moving a node asks, and opening a graph need not wait for it)."""
        if not self._ways_known:
            self._ways_known = True
            for item in self.edges.values():
                self._index_way(item)
        return self._ways

    def _channel(self, sx: float, sy: float, ex: float, ey: float, source: NodeItem,
                 target: NodeItem) -> float | None:
        """The height a long edge from (``sx``, ``sy``) to (``ex``, ``ey``) should run at to
        pass below (or above) the nodes in its way, or None when the direct curve is clear."""
        if self._building:
            return None
        ends = {source, target}
        if ex < sx and ey > sy + 2 * CHANNEL_GAP:
            return self._return_channel(sx, sy, ex, ey, target, ends)
        if ex - sx < 8 * CORNER:
            return None
        low, high = min(sy, ey), max(sy, ey)
        blocking = self._blocking(sx, ex, low - 8, high + 8, ends)
        if not blocking:  # clear, or too crowded to route around
            return None
        below = max(i.y() + i.height for i in blocking) + CHANNEL_GAP
        above = min(i.y() for i in blocking) - CHANNEL_GAP
        middle = (sy + ey) / 2
        channel = below if below - middle <= middle - above else above
        for _ in range(3):
            more = self._blocking(sx, ex, channel - 8, channel + 8, ends)
            if more is None:
                return None
            if not more:
                break
            channel = (max(i.y() + i.height for i in more) + CHANNEL_GAP if channel >= middle
                       else min(i.y() for i in more) - CHANNEL_GAP)
        return channel

    def _return_channel(self, sx: float, sy: float, ex: float, ey: float, target: NodeItem,
                        ends: set[NodeItem]) -> float | None:
        """The height at which an edge back to the left (to the next row of a wrapped layout)
        crosses: just above the target's row, clear of nodes; None when there is no room."""
        channel = target.y() - CHANNEL_GAP
        for _ in range(4):
            more = self._blocking(ex - CORNER, sx + CORNER, channel - 8, channel + 8, ends)
            if more is None:
                return None
            if not more:
                return channel if sy + CHANNEL_GAP <= channel else None
            channel = min(i.y() for i in more) - CHANNEL_GAP
        return None

    def _blocking(self, left: float, right: float, top: float, bottom: float,
                  ends: set[NodeItem]) -> list[NodeItem] | None:
        """The nodes other than ``ends`` crossing the band; None when too many do."""
        found = self._grid.crossing((left + CORNER, top, right - CORNER, bottom), ROUTE_LIMIT + len(ends))
        found = None if found is None else [i for i in found if i not in ends]
        return None if found is None or len(found) > ROUTE_LIMIT else found

    def _label_edge(self, item: EdgeItem, analysis: Analysis,
                    bad_ports: set[tuple[str, str | None]] | None = None, ends: Ends | None = None) -> None:
        ends = ends or self.edge_ends(item.key)
        if ends is None:
            return
        source, target = ends
        tensor = analysis.ports.get((source[0].node_id, source[1]))
        if bad_ports is None:
            bad_ports = _bad_ports(analysis)
        item.set_label(str(tensor) if tensor is not None else "", (target[0].node_id, target[1]) in bad_ports)

    def node_item_moved(self, node_id: str) -> None:
        """An item moved (dragged, or following the document): its edges follow, and so do the
        edges whose way it left or entered (routed around it, or straight again)."""
        self.overview_dirty()
        if self._building:  # every edge is placed at the end of the rebuild
            return
        node = self.nodes.get(node_id)
        before = None if node is None else self._grid.rect_of(node)
        if node is not None:
            self._grid.place(node, _node_rect(node))
            self._make_room(node)
        own = self._edges_of.get(node_id, set())
        for key in own:
            item = self.edges.get(key)
            if item is not None:
                self._place_edge(item)
        if node is not None:
            self._reroute_across(before, self._grid.rect_of(node), placed=own)

    def _reroute_across(self, *rects: Rect | None, placed: Container[EdgeKey] = ()) -> None:
        """Place again the edges whose way crosses any of ``rects`` (none when more than
        :data:`REROUTE_LIMIT` do), except those already ``placed``."""
        found: dict[EdgeItem, None] = {}
        for rect in rects:
            for item in (self._edge_ways().crossing(rect, REROUTE_LIMIT) or []) if rect is not None else []:
                if item.key not in placed:
                    found[item] = None
        for item in found:
            self._place_edge(item)

    def nodes_dragged(self, before: dict[NodeItem, QPointF]) -> None:
        """The selected nodes (at ``before`` as the mouse moved) that a drag moved: snapped to
        the grid; their edges follow."""
        for item, was in before.items():
            snapped = self.snap(item.pos())
            if snapped != item.pos():
                item.setPos(snapped)
            if item.pos() != was:
                self.node_item_moved(item.node_id)

    def _raise_selected(self) -> None:
        """Selected nodes are drawn above the others (and their edges); batched edges that
        were or are selected draw themselves as they now stand out, or not."""
        for item in self._raised:
            if isValid(item):
                item.setZValue(0.0)
        selected = self.selectedItems()
        self._raised = [item for item in selected if isinstance(item, NodeItem)]
        for item in self._raised:
            item.setZValue(1.0)
        lit = [item for item in selected if isinstance(item, EdgeItem)]
        if self.edge_batch:
            for edge in {*self._lit, *lit}:
                if isValid(edge):
                    edge.show_state()
        self._lit = lit

    def snap(self, position: QPointF) -> QPointF:
        if self._syncing or not self.snapping:
            return position
        return QPointF(round(position.x() / st.GRID) * st.GRID, round(position.y() / st.GRID) * st.GRID)

    # ----- overview: the level of detail of a zoomed-out view ----------------------------------

    def set_overview(self, on: bool) -> None:
        """Zoomed out, items stop painting (they stay selectable) and :meth:`paint_overview`
        draws every node as a block and every edge as a line in a handful of calls."""
        if on == self.overview:
            return
        self.overview = on
        for item in self.nodes.values():
            item.setFlag(NO_CONTENTS, on)
        for edge in self.edges.values():
            edge.setFlag(NO_CONTENTS, on or (edge.batched and not edge.stands_out()))
        self.overview_dirty()

    def overview_dirty(self) -> None:
        """Something moved, came or went: the overview and the batch of curves are made again."""
        self._overview_stale()
        if self._batch is not None:
            self._batch = None
            self.update()

    def _overview_stale(self) -> None:
        self._overview = None
        if self.overview:
            self.update()

    def set_edge_batch(self, on: bool) -> None:
        """Between the overview and the detailed zoom, a big graph's edges stop painting one by
        one and :meth:`paint_edge_batch` strokes them together; an edge that stands out
        (selected, hovered, in error) still draws itself, over them."""
        if on == self.edge_batch:
            return
        self.edge_batch = on
        for item in self.edges.values():
            item.batched = on
            item.setFlag(NO_CONTENTS, self.overview or (on and not item.stands_out()))
        self._batch = None
        self.update()

    def paint_edge_batch(self, painter: QPainter, visible: QRectF) -> None:
        """The curves of the edges near ``visible`` (the view's scene rectangle), in one stroke,
        made again once the view leaves the area they were gathered from."""
        if self._batch is None or not self._batch[0].contains(visible):
            area = visible.adjusted(-visible.width(), -visible.height(), visible.width(), visible.height())
            self._batch = (area, self._curves_in(area))
        painter.setPen(edge_pen(self.style.edge, WIDTH))
        painter.setBrush(NO_BRUSH)
        painter.drawPath(self._batch[1])

    def _curves_in(self, area: QRectF) -> QPainterPath:
        left, top, right, bottom = area.left(), area.top(), area.right(), area.bottom()
        path = QPainterPath()
        for item in self.edges.values():
            x0, y0, x1, y1 = item.curve_box
            if x0 <= right and left <= x1 and y0 <= bottom and top <= y1 and item.isVisible():
                item.add_curve_to(path)
        return path

    def paint_overview(self, painter: QPainter) -> None:
        if self._overview is None:
            self._overview = self._overview_shapes()
        lines, blocks, selected = self._overview
        s = self.style
        painter.setPen(_cosmetic(s.edge, 1.0))
        painter.drawLines(lines)
        painter.setPen(NO_PEN)
        for colour, rects in blocks.items():
            painter.setBrush(QBrush(QColor(colour)))
            painter.drawRects(rects)
        if selected:
            painter.setPen(_cosmetic(s.selected, 2.0))
            painter.setBrush(NO_BRUSH)
            painter.drawRects(selected)

    def _overview_shapes(self) -> tuple[list[QLineF], dict[str, list[QRectF]], list[QRectF]]:
        lines = [QLineF(e.start, e.end) for e in self.edges.values() if e.isVisible()]
        blocks: dict[str, list[QRectF]] = {}
        selected: list[QRectF] = []
        for item in self.nodes.values():
            rect = QRectF(item.pos(), QSizeF(item.width, item.height))
            colour = self.style.error if item.has_error else self.style.block(item.view.family)
            colour = item.overlay.colour if item.overlay is not None else colour
            blocks.setdefault(colour.name(), []).append(rect)
            if item.isSelected():
                selected.append(rect)
        return lines, blocks, selected

    # ----- queries -------------------------------------------------------------------------------

    def selected_node_ids(self) -> list[str]:
        chosen = {i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)}
        return [n for n in self.document.scope.node_ids() if n in chosen]

    def selected_edge_keys(self) -> list[EdgeKey]:
        return [i.key for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def node_at(self, pos: QPointF) -> NodeItem | None:
        return next((i for i in self.items(pos) if isinstance(i, NodeItem)), None)

    def port_at(self, pos: QPointF, radius: float) -> tuple[NodeItem, PortKey] | None:
        """The port nearest to ``pos`` within ``radius`` scene units."""
        area = QRectF(pos.x() - radius, pos.y() - radius, 2 * radius, 2 * radius)
        for item in self.items(area):
            if isinstance(item, NodeItem):
                port = item.port_at(pos, radius)
                if port is not None:
                    return item, port
        return None

    def edge_at(self, pos: QPointF, radius: float = 6.0) -> EdgeItem | None:
        area = QRectF(pos.x() - radius, pos.y() - radius, 2 * radius, 2 * radius)
        return next((i for i in self.items(area, Qt.ItemSelectionMode.IntersectsItemShape)
                     if isinstance(i, EdgeItem)), None)

    def helpEvent(self, event: QGraphicsSceneHelpEvent) -> None:  # noqa: N802 - Qt's name
        """Bring the tooltips of the nodes under the cursor up to date (they are formatted on
        demand), then let Qt show the topmost one."""
        for item in self.items(event.scenePos()):
            if isinstance(item, NodeItem):
                item.toolTip()
        super().helpEvent(event)

    # ----- the one write: a finished drag moves nodes -------------------------------------------

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        super().mouseReleaseEvent(event)
        self.commit_moves()

    def commit_moves(self) -> None:
        """Issue one move command for the items dragged away from their document position."""
        moved = {}
        positions = {node.id: node.position for node in self.document.scope.nodes}
        for node_id, item in self.nodes.items():
            position = positions.get(node_id)
            here = (item.x(), item.y())
            if position is None or abs(here[0] - position[0]) > 1e-6 or abs(here[1] - position[1]) > 1e-6:
                moved[node_id] = here
        if moved:
            self.document.move_nodes(moved)


def _node_rect(item: NodeItem) -> Rect:
    """The rectangle a node occupies (its shape: the body and its ports), in the scene."""
    margin = st.PORT_RADIUS + 3
    x, y = item.x(), item.y()
    return x - margin, y, x + item.width + margin, y + item.height


def _way(sx: float, sy: float, ex: float, ey: float, channel: float | None) -> Rect | None:
    """Where a node changes the route of an edge from (``sx``, ``sy``) to (``ex``, ``ey``) now
    running at ``channel``: the band between its ends (to the channel, when it has one) that
    :meth:`GraphScene._channel` asks about; None for an edge too short to be routed."""
    if ex < sx and ey > sy + 2 * CHANNEL_GAP:  # back to the next row
        return ex, sy, sx, ey
    if ex - sx < 8 * CORNER:
        return None
    ys = (sy, ey) if channel is None else (sy, ey, channel)
    return sx + CORNER, min(ys) - 8, ex - CORNER, max(ys) + 8


def _bad_ports(analysis: Analysis) -> set[tuple[str, str | None]]:
    """Input ports named by an error: the edges into them are drawn red."""
    return {(d.node, d.port) for d in analysis.diagnostics if d.severity == "error" and d.node and d.port}
