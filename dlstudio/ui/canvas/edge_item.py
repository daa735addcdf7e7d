"""Edges on the canvas: cubic curves from an output port to an input port, labelled with the
tensor shape they carry, and the dashed preview curve shown while a connection is dragged."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem

from dlstudio.ui.canvas import style as st

EdgeKey = tuple[str, str]

#: Room a shape label needs at each end of an edge; shorter edges show no label (the source
#: port shows the same shape).
LABEL_MARGIN = 18.0
#: Radius of the bends of an edge routed around nodes.
CORNER = 30.0
#: What an edge starts with, shared by thousands of new edges (each replaces them when placed).
NO_PATH = QPainterPath()
NO_RECT = QRectF()
#: What every edge paints with (thousands paint at once on opening a fan-out).
NO_BRUSH = QBrush(Qt.BrushStyle.NoBrush)
SOLID, ROUND = Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap
#: How wide an edge is drawn, and a selected or hovered one.
WIDTH, LIT_WIDTH = 1.8, 2.4
SELECTABLE = QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
NO_CONTENTS = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents


def edge_path(start: QPointF, end: QPointF, channel: float | None = None) -> QPainterPath:
    """A curve leaving ``start`` to the right and entering ``end`` from the left; with a
    ``channel`` it runs along that height instead, around the nodes in between (back to the
    left, for an edge that continues on the next row of a wrapped layout)."""
    if channel is not None and routed(start, end, channel):
        if end.x() < start.x():
            return _return_path(start, end, channel)
        sx, sy, ex, ey = start.x(), start.y(), end.x(), end.y()
        path = QPainterPath(start)
        path.cubicTo(sx + 2 * CORNER, sy, sx + CORNER, channel, sx + 3 * CORNER, channel)
        path.lineTo(ex - 3 * CORNER, channel)
        path.cubicTo(ex - CORNER, channel, ex - 2 * CORNER, ey, ex, ey)
        return path
    return curve_path(start.x(), start.y(), end.x(), end.y())


def curve_path(sx: float, sy: float, ex: float, ey: float) -> QPainterPath:
    """:func:`edge_path` without a channel, from numbers (thousands are made on a first paint)."""
    path = QPainterPath()
    add_curve(path, sx, sy, ex, ey)
    return path


def add_curve(path: QPainterPath, sx: float, sy: float, ex: float, ey: float) -> None:
    """Add the curve of :func:`curve_path` to ``path``."""
    bend = _bend(ex - sx)
    path.moveTo(sx, sy)
    path.cubicTo(sx + bend, sy, ex - bend, ey, ex, ey)


def _bend(dx: float) -> float:
    """How far the handles of a curve reach out of its ends, for ends ``dx`` apart across."""
    return max(abs(dx) * 0.5, 40.0) if dx >= 0 else max(80.0, min(240.0, -dx * 0.4 + 60.0))


def routed(start: QPointF, end: QPointF, channel: float | None) -> bool:
    """Whether :func:`edge_path` runs along ``channel`` (back to the left below ``start``, or
    around the nodes in between); else the edge is one curve, symmetric about its middle."""
    return channel is not None and routed_xy(start.x(), start.y(), end.x(), end.y(), channel)


def routed_xy(sx: float, sy: float, ex: float, ey: float, channel: float | None) -> bool:
    """:func:`routed`, for ends given as numbers."""
    if channel is None:
        return False
    return sy < channel < ey if ex < sx else ex - sx > 8 * CORNER


def curve_bounds(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    """Left, top, right and bottom of :func:`edge_path`'s curve from (x0, y0) to (x1, y1)
    without a channel: its height spans the ends (the handles are level with them), its width
    too unless a short or backward edge bulges past them."""
    dx = x1 - x0
    if dx >= 80.0:  # handles half-way across (see _bend): no turn, the ends bound it
        return x0, min(y0, y1), x1, max(y0, y1)
    bend = _bend(dx)
    xs = _cubic_extremes(x0, x0 + bend, x1 - bend, x1)
    return min(xs), min(y0, y1), max(xs), max(y0, y1)


def _cubic_extremes(p0: float, p1: float, p2: float, p3: float) -> list[float]:
    """The ends of a one-dimensional cubic Bezier curve and its values where it turns."""
    a, b, c = -p0 + 3 * p1 - 3 * p2 + p3, 2 * (p0 - 2 * p1 + p2), p1 - p0
    if abs(a) < 1e-12:
        roots = [-c / b] if abs(b) > 1e-12 else []
    else:
        disc = b * b - 4 * a * c
        roots = [] if disc < 0 else [(-b + sign * math.sqrt(disc)) / (2 * a) for sign in (1, -1)]
    values = [p0, p3]
    for t in roots:
        if 0 < t < 1:
            u = 1 - t
            values.append(u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3)
    return values


def _return_path(start: QPointF, end: QPointF, channel: float) -> QPainterPath:
    """Right out of ``start``, down to ``channel``, back left along it, down into ``end``
    (in plain numbers: thousands are made when a wrapped graph opens)."""
    sx, sy, ex, ey = start.x(), start.y(), end.x(), end.y()
    r = min(CORNER / 2, (channel - sy) / 2, (ey - channel) / 2)
    out, back = sx + CORNER, ex - CORNER
    path = QPainterPath(start)
    path.lineTo(out - r, sy)  # right, turning down
    path.quadTo(out, sy, out, sy + r)
    path.lineTo(out, channel - r)  # down, turning left
    path.quadTo(out, channel, out - r, channel)
    path.lineTo(back + r, channel)  # left, turning down
    path.quadTo(back, channel, back, channel + r)
    path.lineTo(back, ey - r)  # down, turning right
    path.quadTo(back, ey, back + r, ey)
    path.lineTo(ex, ey)
    return path


def edge_pen(colour: QColor, width: float) -> QPen:
    """The pen edges of that colour and width are drawn with (0: a hairline)."""
    return _pen(colour.rgba(), width)


@lru_cache(maxsize=64)
def _pen(rgba: int, width: float) -> QPen:
    """The pen of an edge of that colour and width (thousands paint at once; a few pens)."""
    return QPen(QColor.fromRgba(rgba), width, SOLID, ROUND) if width else QPen(QColor.fromRgba(rgba), 0)


class EdgeItem(QGraphicsItem):
    """One document edge; its ends follow the port positions the scene gives it.

    A graph opens with tens of thousands of edges, so an edge keeps plain numbers (its ends,
    its curve's bounds, its label's box) and makes Qt values (points, the path, the label's
    rectangle) when they are asked for; what most edges never change is a class default."""

    channel: float | None = None
    label = ""
    error = False
    hovered = False
    batched = False  # drawn with the others by the scene, unless it stands out
    _placed = False
    _ends = (0.0, 0.0, 0.0, 0.0)  # start x, y and end x, y
    _path: QPainterPath | None = NO_PATH  # None: made when first painted or hit
    _shape: QPainterPath | None = None
    _curve = (0.0, 0.0, 0.0, 0.0)  # the curve's left, top, right, bottom
    _middle = (0.0, 0.0)  # where the label sits
    _label_box: tuple[float, float, float, float] | None = None  # its left, top, width, height
    _bounds = NO_RECT

    def __init__(self, key: EdgeKey, style: st.CanvasStyle) -> None:
        super().__init__()
        self.key = key
        self.style = style
        self.setZValue(-1.0)
        self.setFlag(SELECTABLE)
        self.setAcceptHoverEvents(True)

    @property
    def start(self) -> QPointF:
        return QPointF(self._ends[0], self._ends[1])

    @property
    def end(self) -> QPointF:
        return QPointF(self._ends[2], self._ends[3])

    @property
    def path(self) -> QPainterPath:
        """The curve (made on first use: most edges of a big graph are not painted until
        scrolled to)."""
        if self._path is None:  # placed, and not routed (a routed path is made when placed)
            self._path = curve_path(*self._ends)
        return self._path

    @property
    def label_rect(self) -> QRectF:
        """Where the shape label is drawn (a null rectangle when the edge is too short)."""
        return NO_RECT if self._label_box is None else QRectF(*self._label_box)

    @property
    def curve_box(self) -> tuple[float, float, float, float]:
        """The curve's left, top, right and bottom (without its label)."""
        return self._curve

    def add_curve_to(self, path: QPainterPath) -> None:
        """Add its curve to ``path`` (the scene strokes many together)."""
        if self._path is None:  # not routed: from numbers, without a path of its own
            add_curve(path, *self._ends)
        elif self._placed:
            path.addPath(self._path)

    def stands_out(self) -> bool:
        """Selected, hovered or in error: drawn by itself even among batched edges."""
        return self.hovered or self.error or self.isSelected()

    def show_state(self) -> None:
        """Draw itself while batched only when it stands out (the state it is in changed)."""
        scene = self.scene()
        if not self.batched or scene is None or getattr(scene, "overview", False):
            return
        self.setFlag(NO_CONTENTS, not self.stands_out())
        scene.update(self._bounds)

    @property
    def ends_xy(self) -> tuple[float, float, float, float]:
        """Where it starts and ends: start x, y, end x, y."""
        return self._ends

    def set_ends(self, start: QPointF, end: QPointF, channel: float | None = None) -> None:
        self.place(start.x(), start.y(), end.x(), end.y(), channel)

    def place(self, sx: float, sy: float, ex: float, ey: float, channel: float | None = None) -> None:
        """Run from (``sx``, ``sy``) to (``ex``, ``ey``), along ``channel`` when it has one."""
        ends = (sx, sy, ex, ey)
        if self._placed and ends == self._ends and channel == self.channel:
            return
        self.prepareGeometryChange()
        self._placed = True
        self._ends, self.channel, self._shape = ends, channel, None
        if routed_xy(sx, sy, ex, ey, channel):  # a few: made now, for their bounds and middle
            self._path = edge_path(QPointF(sx, sy), QPointF(ex, ey), channel)
            bounds = self._path.boundingRect()
            self._curve = (bounds.left(), bounds.top(), bounds.right(), bounds.bottom())
            middle = self._path.pointAtPercent(0.5)
            self._middle = (middle.x(), middle.y())
        else:  # the symmetric curve: its bounds and middle (to 1e-11) found without making it
            self._path = None
            self._curve = curve_bounds(sx, sy, ex, ey)
            self._middle = ((sx + ex) / 2, (sy + ey) / 2)
        self._place_label()

    def set_label(self, text: str, error: bool = False) -> None:
        if (text, error) == (self.label, self.error):
            return
        self.label, self.error = text, error
        if self._placed:  # else placed with the ends (a scene being built labels first)
            self.prepareGeometryChange()
            self._place_label()
            self._shape = None
            self.update()
            self.show_state()

    def set_style(self, style: st.CanvasStyle) -> None:
        self.style = style
        self.update()

    def _place_label(self) -> None:
        left, top, right, bottom = self._curve
        sx, sy, ex, ey = self._ends
        width = st.text_width("small", self.label) + 12 if self.label else 0.0
        if self.label and abs(ex - sx) + abs(ey - sy) >= width + 2 * LABEL_MARGIN:
            x, y = self._middle
            self._label_box = (x - width / 2, y - 8, width, 16.0)
            left, top = min(left, x - width / 2), min(top, y - 8)
            right, bottom = max(right, x + width / 2), max(bottom, y + 8)
        else:
            self._label_box = None
        self._bounds = QRectF(left - 4, top - 4, right - left + 8, bottom - top + 8)

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
            self._shape = stroker.createStroke(self.path)
            if self._label_box is not None:
                self._shape.addRect(self.label_rect)
        return self._shape

    def hoverEnterEvent(self, event: Any) -> None:  # noqa: N802
        self.hovered = True
        self.update()
        self.show_state()

    def hoverLeaveEvent(self, event: Any) -> None:  # noqa: N802
        self.hovered = False
        self.update()
        self.show_state()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: Any = None) -> None:
        s = self.style
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        selected = self.isSelected()
        colour = s.selected if selected else s.error if self.error else (s.edge_hover if self.hovered else s.edge)
        if lod < st.BLOCK_LOD:
            painter.setPen(_pen(colour.rgba(), 0.0))
            painter.drawLine(QLineF(*self._ends))
            return
        painter.setPen(_pen(colour.rgba(), LIT_WIDTH if selected or self.hovered else WIDTH))
        painter.setBrush(NO_BRUSH)
        painter.drawPath(self.path)
        if self._label_box is not None and lod >= st.DETAIL_LOD:
            rect = self.label_rect
            painter.setPen(QPen(colour, 1.0))
            painter.setBrush(s.label_fill)
            painter.drawRoundedRect(rect, 8, 8)
            painter.setFont(st.font("small"))
            painter.setPen(s.error if self.error else s.muted if not selected else s.text)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextSingleLine, self.label)


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
