"""A node on the canvas: type, id or label, named ports, output shapes and parameter count.

Everything shown comes from the document and its latest analysis through :meth:`NodeItem.
refresh`; the item keeps no state of its own except its position while it is being dragged.
Text is painted with ``drawText`` (always plain text) and the tooltip is escaped, so nothing a
file contains is ever interpreted as HTML. Zoomed out, a node is drawn as a block (level of
detail), which keeps a 1,000-node graph smooth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from dlstudio.core.analysis import Analysis, Diagnostic
from dlstudio.core.blocks import REPEAT, BlockSpec
from dlstudio.core.catalogue import Catalogue
from dlstudio.core.graph import Node
from dlstudio.core.layout import Box
from dlstudio.core.spec import LayerSpec
from dlstudio.ui.canvas import style as st
from dlstudio.ui.canvas.overlay import Mark, paint_mark
from dlstudio.ui.canvas.port_item import (
    End,
    PortKey,
    PortLists,
    PortState,
    node_ports,
    paint_port,
)

PAD = 12.0
NO_PEN = QPen(Qt.PenStyle.NoPen)
NO_BRUSH = QBrush(Qt.BrushStyle.NoBrush)
ALIGN_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
ALIGN_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
FLAGS = QGraphicsItem.GraphicsItemFlag.ItemIsSelectable | QGraphicsItem.GraphicsItemFlag.ItemIsMovable


@dataclass
class NodeView:
    """What a node shows, computed from the document and the analysis."""

    type_name: str
    family: str
    title: str
    subtitle: str
    ports: PortLists
    outputs: dict[str, str] = field(default_factory=dict)
    params: str = ""
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    summary: str = ""
    label: str = ""
    missing: bool = False
    connected: frozenset[PortKey] = frozenset()
    sink: bool = False  # no output port to wire on (one an edge of the file uses still shows)


def node_view(node: Node, ends: list[tuple[End, End]], catalogue: Catalogue, analysis: Analysis | None,
              problems: list[Diagnostic] | None = None) -> NodeView:
    """What ``node`` shows, given the ends (as node and port) of the edges touching it and the
    catalogue its type is looked up in; ``problems`` are its diagnostics when the caller
    grouped them already."""
    spec = catalogue.get(node.type)
    ports = node_ports(node, spec, ends)
    into = {port for _, (node_id, port) in ends if node_id == node.id}  # None: a bare end
    bare = len(ports.inputs) == 1 and None in into
    connected = {(p, True) for p in ports.inputs if bare or p in into}
    if any(node_id == node.id for (node_id, _), _ in ends):
        connected |= {(p, False) for p in ports.outputs}
    subtitle = f"{node.label}  ·  {node.id}" if node.label else node.id
    view = NodeView(node.type, spec.family if spec else "", node_title(node, spec), subtitle, ports,
                    summary=spec.summary if spec else "", label=node.label or "", missing=spec is None,
                    connected=frozenset(connected), sink=bool(spec and spec.sink))
    if spec is None:
        view.subtitle = f"missing layer  ·  {subtitle}"
    if analysis is not None:
        for port in ports.outputs:
            tensor = analysis.ports.get((node.id, port))
            view.outputs[port] = str(tensor) if tensor is not None else ""
        count = analysis.param_counts.get(node.id)
        view.params = f"{st.short_count(count)} params" if count else ""
        if node.frozen:
            view.params = f"{view.params} · frozen" if view.params else "frozen"
        found = analysis.node_diagnostics(node.id) if problems is None else problems
        view.errors = tuple(d.one_line() for d in found if d.severity == "error")
        view.warnings = tuple(d.one_line() for d in found if d.severity == "warning")
    return view


def node_title(node: Node, spec: LayerSpec | None) -> str:
    """The node's type; a block's with its repeat count: ``Residual ×3``."""
    repeat = node.params.get(REPEAT, 1)
    if isinstance(spec, BlockSpec) and isinstance(repeat, int) and repeat != 1:
        return f"{node.type} ×{repeat}"
    return node.type


#: What a node item shows before its first refresh (shared: views are replaced, never changed).
UNSHOWN = NodeView("", "", "", "", PortLists(("input",), ("output",)))


class NodeItem(QGraphicsItem):
    """The graphics item of one node; ports are painted by it and hit-tested by :meth:`port_at`.

    What most nodes never change is a class default (a graph opens with thousands of nodes)."""

    extra_warning: str | None = None
    indicator: str | None = None
    overlay: Mark | None = None  # what the canvas overlay (readiness, sparsity) shows on it
    hovered = False
    pointed: PortKey | None = None
    width, height = st.MIN_WIDTH, st.HEADER + st.ROW + st.BOTTOM  # until the first refresh
    _tooltip_stale = False  # the text changed since it was last set (set when asked for)

    def __init__(self, node_id: str, style: st.CanvasStyle) -> None:
        super().__init__()
        self.node_id = node_id
        self.style = style
        self.view = UNSHOWN  # until the first refresh
        self.port_states: dict[PortKey, PortState] = {}
        self.setFlags(FLAGS)
        self.setAcceptHoverEvents(True)
        self._paths = _paths(self.width, self.height)  # sized for its view by the first refresh

    # ----- data ----------------------------------------------------------------------------------

    def refresh(self, view: NodeView) -> bool:
        """Show ``view``; returns True when the size changed (edges then need to follow)."""
        if self.view is not UNSHOWN and view == self.view:
            return False
        self.view = view
        size = (self.width, self.height)
        self._relayout()
        self._update_tooltip()
        self.update()
        return size != (self.width, self.height)

    def set_style(self, style: st.CanvasStyle) -> None:
        self.style = style
        self.update()

    def set_extra_warning(self, text: str | None) -> None:
        self.extra_warning = text or None
        self._update_tooltip()
        self.update()

    def set_indicator(self, text: str | None) -> None:
        self.indicator = text or None
        self.update()

    def set_overlay(self, mark: Mark | None) -> None:
        if mark != self.overlay:
            self.overlay = mark
            self._update_tooltip()
            self.update()

    @property
    def has_error(self) -> bool:
        return bool(self.view.errors)

    @property
    def problem_text(self) -> str:
        """The plain text of every problem shown on this node (the tooltip's content)."""
        lines = [f"error: {m}" for m in self.view.errors] + [f"warning: {m}" for m in self.view.warnings]
        return "\n".join(lines + ([f"warning: {self.extra_warning}"] if self.extra_warning else []))

    def tooltip_text(self) -> str:
        head = f"{self.view.type_name} '{self.node_id}'"
        head += "".join(f"\n{text}" for text in (self.view.label, self.view.summary) if text)
        head += f"\n\n{self.overlay.tooltip}" if self.overlay is not None else ""
        problems = self.problem_text
        return head + (f"\n\n{problems}" if problems else "")

    def _update_tooltip(self) -> None:
        """Mark the tooltip out of date: it is formatted when asked for (:meth:`toolTip`, and
        the scene asks before Qt shows it), not for each of thousands of nodes on open."""
        self._tooltip_stale = True

    def toolTip(self) -> str:  # noqa: N802 - Qt's name
        """The tooltip markup, brought up to date first."""
        if self._tooltip_stale:
            self._tooltip_stale = False
            self.setToolTip(st.plain_tooltip(self.tooltip_text()))
        return super().toolTip()

    # ----- geometry ------------------------------------------------------------------------------

    def _relayout(self) -> None:
        self.prepareGeometryChange()
        width = st.text_width
        want = width("title", self.view.title) + width("small", self.view.params) + 3 * PAD
        want = max(want, width("body", self.view.subtitle[:200]) + 2 * PAD)
        ports = self.view.ports
        for row in range(ports.rows):
            left = width("small", ports.inputs[row]) if row < len(ports.inputs) else 0.0
            right = width("body", self._output_text(row)) if row < len(ports.outputs) else 0.0
            want = max(want, left + right + 3 * PAD + 8)
        self.width = min(st.MAX_WIDTH, max(st.MIN_WIDTH, math.ceil(want / 20) * 20))
        self.height = st.HEADER + st.ROW * ports.rows + st.BOTTOM
        self._paths = _paths(self.width, self.height)

    def _output_text(self, row: int) -> str:
        port = self.view.ports.outputs[row]
        shape = self.view.outputs.get(port, "")
        named = port != "output" or len(self.view.ports.outputs) > 1
        return f"{port}  {shape}" if named else shape

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return QRectF(-14, -26, self.width + 28, self.height + 40)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(QRectF(-st.PORT_RADIUS - 3, 0, self.width + 2 * st.PORT_RADIUS + 6, self.height))
        return path

    def box(self) -> Box:
        """Size and port offsets for auto-layout."""
        return _box(self.view.ports, self.width, self.height)

    @staticmethod
    def port_y(row: int) -> float:
        return st.HEADER + st.ROW * (row + 0.5)

    def port_local(self, port: str, is_input: bool) -> QPointF:
        names = self.view.ports.inputs if is_input else self.view.ports.outputs
        row = names.index(port) if port in names else 0
        return QPointF(0.0 if is_input else self.width, self.port_y(row))

    def port_scene_pos(self, port: str, is_input: bool) -> QPointF:
        return QPointF(*self.port_scene_xy(port, is_input))

    def port_scene_xy(self, port: str, is_input: bool) -> tuple[float, float]:
        """Where a port is in the scene, as numbers (a node is a top-level item, never
        transformed: its position plus the port's offset)."""
        names = self.view.ports.inputs if is_input else self.view.ports.outputs
        row = names.index(port) if port in names else 0
        return self.x() + (0.0 if is_input else self.width), self.y() + self.port_y(row)

    def ports(self) -> list[PortKey]:
        outputs = [(p, False) for p in self.view.ports.outputs]
        if self.view.sink:
            outputs = [key for key in outputs if key in self.view.connected]
        return [(p, True) for p in self.view.ports.inputs] + outputs

    def port_at(self, scene_pos: QPointF, radius: float = 10.0) -> PortKey | None:
        """The port within ``radius`` (scene units) of ``scene_pos``, nearest first."""
        local = self.mapFromScene(scene_pos)
        best: tuple[float, PortKey] | None = None
        for key in self.ports():
            offset = self.port_local(*key) - local
            distance = math.hypot(offset.x(), offset.y())
            if distance <= radius and (best is None or distance < best[0]):
                best = (distance, key)
        return best[1] if best else None

    # ----- events --------------------------------------------------------------------------------

    def mouseMoveEvent(self, event: Any) -> None:  # noqa: N802
        """Qt drags every selected node; the scene then snaps them and its edges follow.

        (Not ``itemChange``: a Python override of it runs for eight changes of every item a
        scene is built with, a tenth of a second of opening a 16k-node graph.)"""
        scene = self.scene()
        before = {item: item.pos() for item in scene.selectedItems() if isinstance(item, NodeItem)}
        super().mouseMoveEvent(event)
        if hasattr(scene, "nodes_dragged"):
            scene.nodes_dragged(before)

    def hoverEnterEvent(self, event: Any) -> None:  # noqa: N802
        self.hovered = True
        self.update()

    def hoverMoveEvent(self, event: Any) -> None:  # noqa: N802
        """Point at a port: it grows and the cursor becomes a cross (drag to connect)."""
        port = self.port_at(event.scenePos(), st.PORT_RADIUS + 4)
        if port != self.pointed:
            self.pointed = port
            self.setCursor(Qt.CursorShape.CrossCursor if port else Qt.CursorShape.ArrowCursor)
            self.update()

    def hoverLeaveEvent(self, event: Any) -> None:  # noqa: N802
        self.hovered = False
        self.pointed = None
        self.unsetCursor()
        self.update()

    # ----- painting ------------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: Any = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod < st.BLOCK_LOD:
            self._paint_block(painter)
            if self.overlay is not None:
                self._paint_overlay(painter, self.overlay, lod)
            return
        self._paint_body(painter, lod >= st.DETAIL_LOD)
        self._paint_header(painter, lod)
        if lod >= st.DETAIL_LOD:
            self._paint_rows(painter)
            self._paint_extras(painter)
        if self.overlay is not None:
            self._paint_overlay(painter, self.overlay, lod)

    def _paint_overlay(self, painter: QPainter, mark: Mark, lod: float) -> None:
        paint_mark(painter, mark, self._paths["body"], self.width, self.height, self.style, lod)

    def _border(self) -> tuple[Any, float]:
        s = self.style
        if self.view.errors:
            return s.error, 2.0
        if self.isSelected():
            return s.selected, 2.0
        if self.view.warnings or self.extra_warning:
            return s.warning, 1.6
        if self.view.missing:
            return s.missing, 1.6
        return (s.edge_hover if self.hovered else s.node_border), 1.0

    def _paint_block(self, painter: QPainter) -> None:
        s = self.style
        fill = s.error if self.view.errors else s.block(self.view.family)
        painter.setPen(QPen(s.selected, 0) if self.isSelected() else NO_PEN)
        painter.setBrush(fill)
        painter.drawRect(QRectF(0, 0, self.width, self.height))

    def _paint_body(self, painter: QPainter, detailed: bool = True) -> None:
        s = self.style
        colour, width = self._border()
        painter.setPen(NO_PEN)
        painter.setBrush(s.shadow)
        painter.drawPath(self._paths["shadow"])
        if self.isSelected():
            glow = QColor(s.selected)
            glow.setAlpha(70)
            painter.setPen(QPen(glow, 7.0))
            painter.setBrush(NO_BRUSH)
            painter.drawPath(self._paths["body"])
        painter.setPen(NO_PEN)
        header = s.error_fill if self.view.errors else s.header(self.view.family)
        painter.setBrush(s.node if detailed else header)
        painter.drawPath(self._paths["body"])
        if detailed:
            painter.setBrush(header)
            painter.drawPath(self._paths["header"])
        painter.setBrush(s.error if self.view.errors else s.family(self.view.family))
        painter.drawPath(self._paths["strip"])
        pen = QPen(colour, width)
        if self.view.missing and not self.isSelected():
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(NO_BRUSH)
        painter.drawPath(self._paths["body"])
        if detailed:
            painter.setPen(QPen(s.node_border, 1.0))
            painter.drawLine(QPointF(1, st.HEADER), QPointF(self.width - 1, st.HEADER))

    def _paint_header(self, painter: QPainter, lod: float) -> None:
        s = self.style
        if lod < st.DETAIL_LOD:  # semantic zoom: one title, drawn larger so it stays readable
            painter.setFont(st.title_font(round(st.font("title").pixelSize() * st.DETAIL_LOD / lod)))
            painter.setPen(s.error if self.view.errors else s.text)
            _draw_elided(painter, QRectF(PAD, 4, self.width - 2 * PAD, self.height - 8),
                         self.view.title, ALIGN_LEFT)
            return
        title_rect = QRectF(PAD, 6, self.width - 2 * PAD, 18)
        params_width = 0.0
        if lod >= st.DETAIL_LOD and self.view.params:
            painter.setFont(st.font("small"))
            painter.setPen(s.muted)
            params_width = st.text_width("small", self.view.params) + 8
            painter.drawText(title_rect, ALIGN_RIGHT, self.view.params)
        painter.setFont(st.font("title"))
        painter.setPen(s.error if self.view.errors else s.text)
        _draw_elided(painter, title_rect.adjusted(0, 0, -params_width, 0), self.view.title, ALIGN_LEFT)
        if lod >= st.DETAIL_LOD:
            painter.setFont(st.font("body"))
            painter.setPen(s.muted)
            _draw_elided(painter, QRectF(PAD, 22, self.width - 2 * PAD, 15), self.view.subtitle, ALIGN_LEFT)

    def _paint_rows(self, painter: QPainter) -> None:
        s = self.style
        ports = self.view.ports
        accent = s.family(self.view.family) if not self.view.errors else s.error
        half = self.width / 2
        for row in range(ports.rows):
            y = st.HEADER + st.ROW * row
            if row < len(ports.inputs):
                painter.setFont(st.font("small"))
                painter.setPen(s.muted)
                _draw_elided(painter, QRectF(PAD, y, half - PAD, st.ROW), ports.inputs[row], ALIGN_LEFT)
            if row < len(ports.outputs):
                self._paint_output(painter, row, QRectF(half * 0.6, y, self.width - half * 0.6 - PAD, st.ROW))
        for key in self.ports():
            state = self.port_states.get(key)
            if state is None:
                state = PortState.CONNECTED if key in self.view.connected else PortState.FREE
            paint_port(painter, self.port_local(*key), state, s, accent, key == self.pointed)

    def _paint_output(self, painter: QPainter, row: int, rect: QRectF) -> None:
        s = self.style
        port = self.view.ports.outputs[row]
        shape = self.view.outputs.get(port, "")
        painter.setFont(st.font("body"))
        painter.setPen(s.text)
        painter.drawText(rect, ALIGN_RIGHT, shape)
        if port != "output" or len(self.view.ports.outputs) > 1:
            used = st.text_width("body", shape + "  ") if shape else 0.0
            painter.setFont(st.font("small"))
            painter.setPen(s.muted)
            painter.drawText(rect.adjusted(0, 0, -used, 0), ALIGN_RIGHT, port)

    def _paint_extras(self, painter: QPainter) -> None:
        s = self.style
        if self.view.errors or self.view.warnings or self.extra_warning:
            colour = s.error if self.view.errors else s.warning
            centre = QPointF(self.width - 1, 1)
            painter.setPen(QPen(s.node, 1.5))
            painter.setBrush(colour)
            painter.drawEllipse(centre, 8, 8)
            painter.setPen(s.node)
            painter.setFont(st.font("title"))
            painter.drawText(QRectF(centre.x() - 8, centre.y() - 8, 16, 16), Qt.AlignmentFlag.AlignCenter, "!")
        if self.indicator:
            painter.setFont(st.font("small"))
            rect = QRectF(0, -22, min(self.width, st.text_width("small", self.indicator[:200]) + 14), 17)
            painter.setPen(QPen(s.selected, 1.0))
            painter.setBrush(QBrush(s.node))
            painter.drawRoundedRect(rect, 8, 8)
            painter.setPen(s.text)
            _draw_elided(painter, rect.adjusted(7, 0, -7, 0), self.indicator, ALIGN_LEFT)


def _draw_elided(painter: QPainter, rect: QRectF, text: str, align: Qt.AlignmentFlag) -> None:
    """Draw plain ``text`` cut with an ellipsis to fit ``rect``."""
    if not text:
        return
    metrics = QFontMetricsF(painter.font())
    first_line = text.splitlines()[0] if text.strip() else text
    shown = metrics.elidedText(first_line[:400], Qt.TextElideMode.ElideRight, max(rect.width(), 0.0))
    painter.drawText(rect, align | Qt.TextFlag.TextSingleLine, shown)


@lru_cache(maxsize=1024)
def _box(ports: PortLists, width: float, height: float) -> Box:
    """The layout box of a node of that size and those ports (shared: they repeat)."""
    return Box(width, height, {p: NodeItem.port_y(i) for i, p in enumerate(ports.inputs)},
               {p: NodeItem.port_y(i) for i, p in enumerate(ports.outputs)})


@lru_cache(maxsize=256)
def _paths(width: float, height: float) -> dict[str, QPainterPath]:
    """The outlines of a node of this size (shared: sizes repeat)."""
    body = QPainterPath()
    body.addRoundedRect(QRectF(0, 0, width, height), st.RADIUS, st.RADIUS)
    header_clip = QPainterPath()
    header_clip.addRect(QRectF(0, 0, width, st.HEADER))
    strip_clip = QPainterPath()
    strip_clip.addRect(QRectF(0, 0, width, 3))
    shadow = QPainterPath()
    shadow.addRoundedRect(QRectF(1, 3, width, height), st.RADIUS + 1, st.RADIUS + 1)
    return {"body": body, "header": body.intersected(header_clip), "strip": body.intersected(strip_clip),
            "shadow": shadow}
