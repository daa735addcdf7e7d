"""The canvas widget: navigation, selection, connection drags, drops and the clipboard.

Every change goes through the document's edit methods (one undo step each); the view only
turns mouse and keyboard input into those calls and reports refusals in :attr:`status_message`.
Pan with the middle button or space+drag, zoom to the cursor with the wheel, ``F`` fits all,
``Tab`` or a double-click on empty canvas opens quick-add. A graph just opened is framed on its
inputs at a zoom where node details are drawn (:meth:`GraphView.frame_opening`).
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QCursor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QApplication, QGraphicsView, QWidget

from dlstudio.core.layout import estimate_box
from dlstudio.core.wiring import end_name, first_ports
from dlstudio.ui.canvas import style as st
from dlstudio.ui.canvas.edge_item import EdgeItem
from dlstudio.ui.canvas.quick_add import QuickAdd
from dlstudio.ui.canvas.scene import BATCH_EDGES, GraphScene
from dlstudio.ui.canvas.wiring import Wiring
from dlstudio.ui.document import GraphDocument

LAYER_MIME = "application/x-dlstudio-layer"
NODES_MIME = "application/x-dlstudio-nodes"
MIN_ZOOM, MAX_ZOOM = 0.02, 4.0
PORT_HIT_PX = 11.0
EDGE_END_PX = 30.0
WORLD = 1e6
#: The least zoom a graph opens at: above BLOCK_LOD, so every node shows its title (drawn at a
#: constant, legible size below DETAIL_LOD), and low enough that a wrapped row of a deep
#: network fits a laptop-sized canvas.
OPENING_ZOOM = st.BLOCK_LOD * 1.05
FRAME_MARGIN = 40.0


class GraphView(QGraphicsView):
    """A view of a :class:`GraphScene` with the editor's mouse and keyboard handling."""

    selection_changed = Signal(list)
    status_message = Signal(str)
    node_double_clicked = Signal(str)  # node id

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scene_ = GraphScene(document, self)
        self.setScene(self.scene_)
        self.document = document
        self._wiring: Wiring | None = None
        self._pan_from: QPoint | None = None
        self._space = False
        self._drop_edge: EdgeItem | None = None
        self._quick_add: QuickAdd | None = None
        self._opening = False  # framing a graph just opened, until the user moves the view
        self._detail_held = False  # while framing: the level of detail is set once, at the end
        self._setup()
        self.scene_.selectionChanged.connect(self._emit_selection)

    def _setup(self) -> None:
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSceneRect(QRectF(-WORLD / 2, -WORLD / 2, WORLD, WORLD))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # ----- API used by the main window -----------------------------------------------------------

    def selected_node_ids(self) -> list[str]:
        return self.scene_.selected_node_ids()

    def select_node(self, node_id: str, center: bool = True) -> None:
        item = self.scene_.nodes.get(node_id)
        if item is None:
            return
        self.scene_.clearSelection()
        item.setSelected(True)
        if center:
            self.centerOn(item)

    def select_nodes(self, node_ids: list[str]) -> None:
        """Select exactly these nodes, with one selection-changed notification."""
        self.scene_.blockSignals(True)
        try:
            self.scene_.clearSelection()
            for node_id in node_ids:
                if node_id in self.scene_.nodes:
                    self.scene_.nodes[node_id].setSelected(True)
        finally:
            self.scene_.blockSignals(False)
        self.scene_.selectionChanged.emit()

    def select_all(self) -> None:
        self.select_nodes(list(self.scene_.nodes))

    def delete_selection(self) -> None:
        self.document.remove_items(self.scene_.selected_node_ids(), self.scene_.selected_edge_keys())

    def copy_selection(self) -> None:
        ids = self.selected_node_ids()
        if not ids:
            return
        payload = self.document.copy_payload(ids)
        mime = QMimeData()
        mime.setData(NODES_MIME, payload.encode("utf-8"))
        mime.setText(payload)
        QApplication.clipboard().setMimeData(mime)
        self.status_message.emit(f"Copied {len(ids)} node{'s' if len(ids) > 1 else ''}")

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return
        if mime.hasFormat(NODES_MIME):
            payload = bytes(mime.data(NODES_MIME).data()).decode("utf-8", "replace")
        else:
            payload = mime.text()
        try:
            at = self._cursor_scene_pos()
            ids = self.document.paste(payload, None if at is None else (at.x(), at.y()))
        except ValueError as error:
            self.status_message.emit(str(error))
            return
        self.select_nodes(ids)

    def duplicate_selection(self) -> None:
        self.select_nodes(self.document.duplicate(self.selected_node_ids()))

    def fit_all(self, rect: QRectF | None = None) -> None:
        """Show the whole graph (``rect``: its bounds, when the caller has them)."""
        rect = self.scene_.graph_rect() if rect is None else rect
        if rect.isEmpty():
            self.resetTransform()
            self._update_detail()
            self.centerOn(0, 0)
            return
        self.fitInView(rect.adjusted(-40, -40, 40, 40), Qt.AspectRatioMode.KeepAspectRatio)
        self.set_zoom(min(self.zoom(), 1.0))
        self.centerOn(rect.center())

    def frame_opening(self) -> None:
        """Frame a graph just opened: all of it when it fits at :data:`OPENING_ZOOM` or more,
        else its start (the inputs, top left) at the zoom that fits its width, no less than
        that. Resizes redo it (the window settles after opening) until the user moves the view.
        The zoom passes through several values; the items' level of detail follows only the last."""
        self._opening = self._detail_held = True
        try:
            self._frame_start()
        finally:
            self._detail_held = False
            self._update_detail()

    def _frame_start(self) -> None:
        rect = self.scene_.graph_rect()
        self.fit_all(rect)
        if rect.isEmpty() or self.zoom() >= OPENING_ZOOM:
            return
        width_zoom = (self.viewport().width() - 2 * FRAME_MARGIN) / rect.width()
        self.set_zoom(min(1.0, max(OPENING_ZOOM, width_zoom)))
        visible = QRectF(self.mapToScene(self.viewport().rect()).boundingRect())
        inputs = self.scene_.input_rect() or rect
        margin = FRAME_MARGIN / self.zoom()
        left = rect.left() if inputs.right() - rect.left() <= visible.width() - 2 * margin else inputs.left()
        top = rect.top() if inputs.bottom() - rect.top() <= visible.height() - 2 * margin else inputs.top()
        self.centerOn(left - margin + visible.width() / 2, top - margin + visible.height() / 2)

    def auto_layout(self) -> None:
        """Lay out the selection (two or more nodes) or the whole graph, as one undo step."""
        chosen = self.selected_node_ids()
        whole = len(chosen) < 2
        self.document.auto_layout(None if whole else chosen, self.scene_.boxes())
        if whole:
            self.fit_all()

    def show_quick_add(self, scene_pos: QPointF | None = None) -> None:
        """The quick-add popup at the cursor; the chosen layer is placed where it opened."""
        where = scene_pos if scene_pos is not None else self._cursor_scene_pos()
        if where is None:
            where = self.mapToScene(self.viewport().rect().center())
        if self._quick_add is None:
            self._quick_add = QuickAdd(self.document, self)
            self._quick_add.chosen.connect(lambda name: self.add_layer(name, self._quick_add_at))
        self._quick_add_at = where
        self._quick_add.popup(self.viewport().mapToGlobal(self.mapFromScene(where)))

    def add_layer(self, type_name: str, scene_pos: QPointF) -> str | None:
        """Add a layer centred at ``scene_pos`` (inserted into the edge there, if any); select it."""
        if type_name not in self.document.catalogue:
            self.status_message.emit(f"Unknown layer type '{type_name[:60]}'")
            return None
        box = estimate_box(type_name, self.document.catalogue)
        top_left = self.scene_.snap(scene_pos - QPointF(box.width / 2, st.HEADER / 2))
        position = (top_left.x(), top_left.y())
        edge = self._insertable_edge(type_name, scene_pos)
        try:
            if edge is not None:
                node_id = self.document.insert_on_edge(type_name, edge.key, position)
            else:
                node_id = self.document.add_node(type_name, position)
        except ValueError as error:
            self.status_message.emit(str(error))
            return None
        self.select_node(node_id, center=False)
        self.setFocus()
        return node_id

    def set_node_indicator(self, node_id: str, text: str | None) -> None:
        if node_id in self.scene_.nodes:
            self.scene_.nodes[node_id].set_indicator(text)

    def set_node_warning(self, node_id: str, text: str | None) -> None:
        if node_id in self.scene_.nodes:
            self.scene_.nodes[node_id].set_extra_warning(text)

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, value: float) -> None:
        value = min(MAX_ZOOM, max(MIN_ZOOM, value))
        self.scale(value / self.zoom(), value / self.zoom())
        self._update_detail()

    def _update_detail(self) -> None:
        """The overview below :data:`~style.BLOCK_LOD`; up to :data:`~style.DETAIL_LOD`, a big
        graph's edges drawn together (with the background, so no cached one)."""
        if self._detail_held:
            return
        zoom = self.zoom()
        overview = zoom < st.BLOCK_LOD
        batch = not overview and zoom < st.DETAIL_LOD and len(self.scene_.edges) >= BATCH_EDGES
        if not batch:
            self.scene_.set_edge_batch(False)
        self.scene_.set_overview(overview)
        if batch:
            self.scene_.set_edge_batch(True)
        cache = QGraphicsView.CacheModeFlag.CacheNone if batch else QGraphicsView.CacheModeFlag.CacheBackground
        if self.cacheMode() != cache:
            self.setCacheMode(cache)

    # ----- helpers -------------------------------------------------------------------------------

    def _emit_selection(self) -> None:
        self.selection_changed.emit(self.scene_.selected_node_ids())

    def _cursor_scene_pos(self) -> QPointF | None:
        local = self.viewport().mapFromGlobal(QCursor.pos())
        return self.mapToScene(local) if self.viewport().rect().contains(local) else None

    def _scene_radius(self, pixels: float, limit: float = st.ROW * 0.8) -> float:
        """``pixels`` on screen in scene units, at most ``limit`` (so zoomed out, a click
        inside a node selects it rather than grabbing a port)."""
        return min(pixels / max(self.zoom(), 1e-6), limit)

    def _insertable_edge(self, type_name: str, scene_pos: QPointF) -> EdgeItem | None:
        first_in, first_out = first_ports(type_name, self.document.catalogue)
        if first_in is None or first_out is None:
            return None
        return self.scene_.edge_at(scene_pos, self._scene_radius(6.0))

    # ----- mouse ---------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._opening = False
        pan = event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self._space)
        if pan:
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._start_wiring(self.mapToScene(event.position().toPoint())):
            event.accept()
            return
        super().mousePressEvent(event)

    def _start_wiring(self, pos: QPointF) -> bool:
        if self.scene_.overview:
            return False
        hit = self.scene_.port_at(pos, self._scene_radius(PORT_HIT_PX))
        if hit is not None:
            item, (port, is_input) = hit
            feeding = self.document.incoming_edge(
                end_name(item.view.type_name, item.node_id, port, False, self.document.catalogue)) if is_input else None
            if feeding is not None and (feeding.source, feeding.target) in self.scene_.edges:
                key = (feeding.source, feeding.target)
                source = self.scene_.end_port(key[0], True)
                if source is not None:
                    self._wiring = Wiring(self.scene_, source[0], (source[1], False), key)
                    return True
            self._wiring = Wiring(self.scene_, item, (port, is_input))
            return True
        edge = self.scene_.edge_at(pos, self._scene_radius(4.0))
        end = edge.end_near(pos, self._scene_radius(EDGE_END_PX, 2 * st.ROW)) if edge is not None else None
        if edge is None or end is None:
            return False
        fixed = self.scene_.end_port(edge.key[0], True) if end == "target" else self.scene_.end_port(edge.key[1], False)
        if fixed is None:
            return False
        self._wiring = Wiring(self.scene_, fixed[0], (fixed[1], end == "source"), edge.key)
        return True

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            delta = event.position().toPoint() - self._pan_from
            self._pan_from = event.position().toPoint()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            return
        if self._wiring is not None:
            self._wiring.move(self.mapToScene(event.position().toPoint()), self._scene_radius(PORT_HIT_PX))
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.ArrowCursor)
            return
        if self._wiring is not None:
            wiring, self._wiring = self._wiring, None
            message = wiring.finish(self.mapToScene(event.position().toPoint()), self._scene_radius(PORT_HIT_PX))
            if message:
                self.status_message.emit(message)
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = self.mapToScene(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and not self.scene_.items(pos):
            self.show_quick_add(pos)
            return
        item = self.scene_.node_at(pos) if event.button() == Qt.MouseButton.LeftButton else None
        if item is not None:
            self.node_double_clicked.emit(item.node_id)
            return
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        self._opening = False
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta:
            self.zoom_at(self.zoom() * math.pow(1.0015, delta), event.position())
        event.accept()

    def zoom_at(self, value: float, anchor: QPointF) -> None:
        """Zoom keeping the scene point under ``anchor`` (viewport coordinates) in place."""
        fixed = self.mapToScene(anchor.toPoint())
        self.set_zoom(value)
        moved = self.mapFromScene(fixed) - anchor.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())

    # ----- keyboard ------------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and event.key() == Qt.Key.Key_Tab and not event.modifiers():
            self.show_quick_add()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        self._opening = False
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif key == Qt.Key.Key_Escape and self._wiring is not None:
            self._wiring.cancel()
            self._wiring = None
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selection()
        elif key == Qt.Key.Key_F and not event.modifiers():
            self.fit_all()
        elif not self._shortcut(event):
            super().keyPressEvent(event)

    def _shortcut(self, event: QKeyEvent) -> bool:
        """Clipboard and selection keys, for when no window action has claimed them."""
        actions = {
            QKeySequence.StandardKey.Copy: self.copy_selection,
            QKeySequence.StandardKey.Paste: self.paste,
            QKeySequence.StandardKey.SelectAll: self.select_all,
        }
        for sequence, action in actions.items():
            if event.matches(sequence):
                action()
                return True
        if event.key() == Qt.Key.Key_D and event.modifiers() == Qt.KeyboardModifier.ControlModifier:
            self.duplicate_selection()
            return True
        return False

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            return
        super().keyReleaseEvent(event)

    # ----- palette drops -------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        if not event.mimeData().hasFormat(LAYER_MIME):
            super().dragMoveEvent(event)
            return
        type_name = _layer_name(event.mimeData())
        edge = self._insertable_edge(type_name, self.mapToScene(event.position().toPoint()))
        self._highlight_drop_edge(edge)
        event.acceptProposedAction()

    def dragLeaveEvent(self, event: Any) -> None:  # noqa: N802
        self._highlight_drop_edge(None)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        if not event.mimeData().hasFormat(LAYER_MIME):
            super().dropEvent(event)
            return
        self._highlight_drop_edge(None)
        if self.add_layer(_layer_name(event.mimeData()), self.mapToScene(event.position().toPoint())):
            event.acceptProposedAction()
        else:
            event.ignore()

    def _highlight_drop_edge(self, edge: EdgeItem | None) -> None:
        if self._drop_edge is edge:
            return
        for item, state in ((self._drop_edge, False), (edge, True)):
            if item is not None and item.scene() is not None:
                item.hovered = state
                item.update()
        self._drop_edge = edge

    # ----- look ----------------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._opening:
            self.frame_opening()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.scene_.set_style(st.canvas_style(self.palette()))
            self.resetCachedContent()
        super().changeEvent(event)

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        st.paint_grid(painter, rect, self.zoom(), self.scene_.style)
        if self.scene_.edge_batch:
            self.scene_.paint_edge_batch(painter, self.mapToScene(self.viewport().rect()).boundingRect())

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        if self.scene_.overview:
            self.scene_.paint_overview(painter)


def _layer_name(mime: QMimeData) -> str:
    return bytes(mime.data(LAYER_MIME).data()).decode("utf-8", "replace").strip()
