"""Edges on the canvas: cubic curves from an output port to an input port, labelled with the
tensor shape they carry, and the dashed preview curve shown while a connection is dragged."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem

from dlstudio.ui.canvas import style as st

EdgeKey = tuple[str, str]

#: Room a shape label needs at each end of an edge; shorter edges show no label (the source
#: port shows the same shape).
LABEL_MARGIN = 18.0
#: Radius of the bends of an edge routed around nodes.
CORNER = 30.0
#: What an edge starts with, shared by thousands of new edges (each replaces them when placed).
NOWHERE = QPointF()
NO_PATH = QPainterPath()
NO_RECT = QRectF()
#: What every edge paints with (thousands paint at once on opening a fan-out).
NO_BRUSH = QBrush(Qt.BrushStyle.NoBrush)
SOLID, ROUND = Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap


def edge_path(start: QPointF, end: QPointF, channel: float | None = None) -> QPainterPath:
    """A curve leaving ``start`` to the right and entering ``end`` from the left; with a
    ``channel`` it runs along that height instead, around the nodes in between (back to the
    left, for an edge that continues on the next row of a wrapped layout)."""
    dx = end.x() - start.x()
    path = QPainterPath(start)
    if channel is not None and routed(start, end, channel):
        if dx < 0:
            return _return_path(start, end, channel)
        left, right = start.x() + 3 * CORNER, end.x() - 3 * CORNER
        path.cubicTo(start + QPointF(2 * CORNER, 0), QPointF(start.x() + CORNER, channel), QPointF(left, channel))
        path.lineTo(right, channel)
        path.cubicTo(QPointF(end.x() - CORNER, channel), end - QPointF(2 * CORNER, 0), end)
        return path
    bend = max(abs(dx) * 0.5, 40.0) if dx >= 0 else max(80.0, min(240.0, -dx * 0.4 + 60.0))
    path.cubicTo(start + QPointF(bend, 0), end - QPointF(bend, 0), end)
    return path


def routed(start: QPointF, end: QPointF, channel: float | None) -> bool:
    """Whether :func:`edge_path` runs along ``channel`` (back to the left below ``start``, or
    around the nodes in between); else the edge is one curve, symmetric about its middle."""
    if channel is None:
        return False
    return start.y() < channel < end.y() if end.x() < start.x() else end.x() - start.x() > 8 * CORNER


def _return_path(start: QPointF, end: QPointF, channel: float) -> QPainterPath:
    """Right out of ``start``, down to ``channel``, back left along it, down into ``end``."""
    r = min(CORNER / 2, (channel - start.y()) / 2, (end.y() - channel) / 2)
    out, back = start.x() + CORNER, end.x() - CORNER
    right, down, left = QPointF(1, 0), QPointF(0, 1), QPointF(-1, 0)
    turns = ((QPointF(out, start.y()), right, down), (QPointF(out, channel), down, left),
             (QPointF(back, channel), left, down), (QPointF(back, end.y()), down, right))
    path = QPainterPath(start)
    for corner, arriving, leaving in turns:
        path.lineTo(corner - arriving * r)
        path.quadTo(corner, corner + leaving * r)
    path.lineTo(end)
    return path


class EdgeItem(QGraphicsItem):
    """One document edge; its ends follow the port positions the scene gives it."""

    def __init__(self, key: EdgeKey, style: st.CanvasStyle) -> None:
        super().__init__()
        self.key = key
        self.style = style
        self.start = self.end = NOWHERE  # replaced (never changed in place) by set_ends
        self.channel: float | None = None
        self.label = ""
        self.error = False
        self.hovered = False
        self._path = NO_PATH
        self._shape: QPainterPath | None = None
        self._label_rect = self._bounds = NO_RECT
        self.setZValue(-1.0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)

    def set_ends(self, start: QPointF, end: QPointF, channel: float | None = None) -> None:
        if not self._path.isEmpty() and (start, end, channel) == (self.start, self.end, self.channel):
            return
        self.prepareGeometryChange()
        self.start, self.end, self.channel = QPointF(start), QPointF(end), channel
        self._path = edge_path(self.start, self.end, channel)
        self._shape = None
        self._place_label()

    def set_label(self, text: str, error: bool = False) -> None:
        if (text, error) == (self.label, self.error):
            return
        self.label, self.error = text, error
        if not self._path.isEmpty():  # else placed with the ends (a scene being built labels first)
            self.prepareGeometryChange()
            self._place_label()
            self._shape = None
        self.update()

    def set_style(self, style: st.CanvasStyle) -> None:
        self.style = style
        self.update()

    def _place_label(self) -> None:
        bounds = self._path.boundingRect()
        width = st.text_width("small", self.label) + 12 if self.label else 0.0
        chord = self.end - self.start
        if self.label and abs(chord.x()) + abs(chord.y()) >= width + 2 * LABEL_MARGIN:
            middle = (self._path.pointAtPercent(0.5) if routed(self.start, self.end, self.channel)
                      else (self.start + self.end) / 2)  # a symmetric curve's (to 1e-11), found faster
            self._label_rect = QRectF(middle.x() - width / 2, middle.y() - 8, width, 16)
            bounds = bounds.united(self._label_rect)
        else:
            self._label_rect = NO_RECT
        self._bounds = bounds.adjusted(-4, -4, 4, 4)

    def end_near(self, scene_pos: QPointF, radius: float) -> str | None:
        """``"source"`` or ``"target"`` when ``scene_pos`` is near that end of the curve."""
        for name, point in (("target", self.end), ("source", self.start)):
            offset = point - scene_pos
            if offset.x() ** 2 + offset.y() ** 2 <= radius**2:
                return name
        return None

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(12.0)
            self._shape = stroker.createStroke(self._path)
            if not self._label_rect.isNull():
                self._shape.addRect(self._label_rect)
        return self._shape

    def hoverEnterEvent(self, event: Any) -> None:  # noqa: N802
        self.hovered = True
        self.update()

    def hoverLeaveEvent(self, event: Any) -> None:  # noqa: N802
        self.hovered = False
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: Any = None) -> None:
        s = self.style
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        selected = self.isSelected()
        colour = s.selected if selected else s.error if self.error else (s.edge_hover if self.hovered else s.edge)
        if lod < st.BLOCK_LOD:
            painter.setPen(QPen(colour, 0))
            painter.drawLine(self.start, self.end)
            return
        painter.setPen(QPen(colour, 2.4 if selected or self.hovered else 1.8, SOLID, ROUND))
        painter.setBrush(NO_BRUSH)
        painter.drawPath(self._path)
        if not self._label_rect.isNull() and lod >= st.DETAIL_LOD:
            painter.setPen(QPen(colour, 1.0))
            painter.setBrush(s.label_fill)
            painter.drawRoundedRect(self._label_rect, 8, 8)
            painter.setFont(st.font("small"))
            painter.setPen(s.error if self.error else s.muted if not selected else s.text)
            painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextSingleLine, self.label)


class DragEdge(QGraphicsPathItem):
    """The dashed curve that follows the cursor while a connection is being made."""

    def __init__(self, style: st.CanvasStyle, fixed: QPointF, fixed_is_output: bool) -> None:
        super().__init__()
        self.fixed = QPointF(fixed)
        self.fixed_is_output = fixed_is_output
        pen = QPen(style.selected, 2.0, Qt.PenStyle.DashLine, Qt.PenCapStyle.RoundCap)
        self.setPen(pen)
        self.setZValue(5.0)
        self.follow(fixed)

    def follow(self, cursor: QPointF) -> None:
        start, end = (self.fixed, cursor) if self.fixed_is_output else (cursor, self.fixed)
        self.setPath(edge_path(start, end))

    def set_valid(self, valid: bool | None, style: st.CanvasStyle) -> None:
        """Green over a valid port, red over an invalid one, accent otherwise."""
        pen = self.pen()
        pen.setColor(style.selected if valid is None else style.valid if valid else style.error)
        self.setPen(pen)
