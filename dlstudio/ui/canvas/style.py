"""Colours, fonts and metrics of the canvas, derived from the application palette.

The canvas reads the current ``QPalette`` (dark or light) and adds its own node, edge and
family accent colours on top, so it follows the theme the main window sets. Metrics are the
ones :mod:`dlstudio.core.layout` assumes, so auto-layout lines ports up exactly.
"""

from __future__ import annotations

import html
import math
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache

from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QGuiApplication, QPainter, QPalette, QPen

from dlstudio.core import layout

HEADER = layout.HEADER
ROW = layout.ROW
MIN_WIDTH = layout.WIDTH
MAX_WIDTH = 380.0
BOTTOM = 10.0
GRID = 10.0
PORT_RADIUS = 5.0
RADIUS = 7.0

#: Below this zoom a node is a coloured block; below DETAIL_LOD only its title shows.
BLOCK_LOD = 0.3
DETAIL_LOD = 0.55

#: Accent per layer family (hue picked to stay distinct in both themes).
FAMILY_HUES = {
    "Graph": 210, "Dense": 265, "Convolution": 200, "Pooling": 175, "Normalization": 140,
    "Regularization": 95, "Activation": 35, "Shape": 50, "Merge": 320, "Sequence": 290,
    "Attention": 345, "Advanced": 15, "State space": 235, "Experts": 305, "Adapters": 118,
}


@dataclass(frozen=True)
class CanvasStyle:
    """Every colour the canvas paints with."""

    dark: bool
    background: QColor
    grid_minor: QColor
    grid_major: QColor
    node: QColor
    node_border: QColor
    text: QColor
    muted: QColor
    selected: QColor
    edge: QColor
    edge_hover: QColor
    label_fill: QColor
    port: QColor
    valid: QColor
    error: QColor
    error_fill: QColor
    warning: QColor
    missing: QColor
    shadow: QColor

    def family(self, name: str) -> QColor:
        """A family's accent; a family missing from FAMILY_HUES gets a hue from its name,
        and a node of unknown type (no family) stays grey."""
        hue = FAMILY_HUES.get(name, zlib.crc32(name.encode()) % 360)
        return QColor.fromHsl(hue, 150 if name else 0, 150 if self.dark else 120)

    def header(self, name: str) -> QColor:
        """The header fill: the family colour blended into the node body."""
        return self._blend(name, 0.22 if self.dark else 0.14)

    def block(self, name: str) -> QColor:
        """A node's fill when zoomed out to a block."""
        return self._blend(name, 0.55)

    def _blend(self, name: str, mix: float) -> QColor:
        accent, body = self.family(name), self.node
        return QColor.fromRgbF(
            body.redF() + (accent.redF() - body.redF()) * mix,
            body.greenF() + (accent.greenF() - body.greenF()) * mix,
            body.blueF() + (accent.blueF() - body.blueF()) * mix,
        )


def canvas_style(palette: QPalette | None = None) -> CanvasStyle:
    """The style for ``palette`` (default: the application's)."""
    if palette is None:
        app = QGuiApplication.instance()
        palette = app.palette() if app is not None else QPalette()
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    return _style(dark, palette.color(QPalette.ColorRole.Highlight).name())


@cache
def _style(dark: bool, highlight: str) -> CanvasStyle:
    if dark:
        return CanvasStyle(
            dark=True, background=QColor("#1c1d20"), grid_minor=QColor("#24262a"),
            grid_major=QColor("#2c2e33"), node=QColor("#2b2d31"), node_border=QColor("#3d4046"),
            text=QColor("#e3e5e8"), muted=QColor("#959aa3"), selected=QColor("#5b93f7"),
            edge=QColor("#70757e"), edge_hover=QColor("#a9afb8"), label_fill=QColor("#1c1d20"),
            port=QColor("#8a9099"), valid=QColor("#5fc48a"), error=QColor("#f2766b"),
            error_fill=QColor("#4a2626"), warning=QColor("#e5b95c"), missing=QColor("#b48ead"),
            shadow=QColor(0, 0, 0, 90),
        )
    return CanvasStyle(
        dark=False, background=QColor("#f5f6f8"), grid_minor=QColor("#ecedf0"),
        grid_major=QColor("#e1e3e7"), node=QColor("#ffffff"), node_border=QColor("#c5c9d0"),
        text=QColor("#1f2328"), muted=QColor("#656b76"), selected=QColor(highlight or "#2f6fde"),
        edge=QColor("#9aa0a9"), edge_hover=QColor("#5c626b"), label_fill=QColor("#f4f5f7"),
        port=QColor("#7d838d"), valid=QColor("#1f9d55"), error=QColor("#d23c32"),
        error_fill=QColor("#fde8e6"), warning=QColor("#b7791f"), missing=QColor("#8e5ea2"),
        shadow=QColor(20, 30, 50, 28),
    )


@cache
def font(kind: str) -> QFont:
    """``title`` (bold), ``body`` or ``small``, sized in scene pixels so zoom scales them."""
    result = QFont(QGuiApplication.font()) if QGuiApplication.instance() else QFont()
    result.setPixelSize({"title": 13, "body": 11, "small": 10}[kind])
    result.setBold(kind == "title")
    result.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    return result


@lru_cache(maxsize=50_000)
@lru_cache(maxsize=4096)
def text_width(kind: str, text: str) -> float:
    """Width of ``text`` in the ``kind`` font (memoised: labels repeat a lot)."""
    return _metrics(kind).horizontalAdvance(text)


@cache
def _metrics(kind: str) -> QFontMetricsF:
    return QFontMetricsF(font(kind))


@cache
def title_font(pixels: int) -> QFont:
    """The title font at another size (for zoomed-out titles)."""
    result = QFont(font("title"))
    result.setPixelSize(max(1, min(pixels, 40)))
    return result


def plain_tooltip(text: str) -> str:
    """Tooltip markup that shows ``text`` literally (escaped, then marked as rich text)."""
    if not text:
        return ""
    return "<p style='white-space:pre-wrap'>" + html.escape(text) + "</p>"


def short_count(value: int) -> str:
    """``1234567`` -> ``1.23M``: parameter counts that fit a node header."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= limit:
            number = value / limit
            return f"{number:.3g}{suffix}"
    return str(value)


def paint_grid(painter: QPainter, rect: QRectF, zoom: float, style: CanvasStyle) -> None:
    """The canvas background: a fine and a coarse grid, each left out once it gets too dense."""
    painter.fillRect(rect, style.background)
    for step, colour in ((GRID * 2, style.grid_minor), (GRID * 10, style.grid_major)):
        if step * zoom < 16:
            continue
        left, top = math.floor(rect.left() / step) * step, math.floor(rect.top() / step) * step
        columns = int((rect.right() - left) / step) + 1
        rows = int((rect.bottom() - top) / step) + 1
        lines = [QLineF(left + i * step, rect.top(), left + i * step, rect.bottom()) for i in range(columns)]
        lines += [QLineF(rect.left(), top + i * step, rect.right(), top + i * step) for i in range(rows)]
        pen = QPen(colour, 0)
        painter.setPen(pen)
        painter.drawLines(lines)
