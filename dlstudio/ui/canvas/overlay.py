"""What a canvas overlay shows on each node: export readiness for a target, or sparsity.

An overlay turns a per-node fact from the core (:func:`~dlstudio.core.readiness.node_readiness`,
:func:`~dlstudio.core.sparsity.node_sparsity`) into a :class:`Mark`: a tint, an optional badge
under the node, an optional bar (the fraction of zero weights) and a line for the tooltip.
A node whose question does not apply (an Input, a layer without weights) is veiled instead of
tinted, so the nodes that matter stand out. :func:`paint_mark` draws a mark on top of what
the node painted; a node without a mark costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen

from dlstudio.core.findings import Analysis, Diagnostic
from dlstudio.core.readiness import NodeReadiness, Readiness, node_readiness
from dlstudio.ui.canvas import style as st

#: Export targets as the user reads them.
TARGET_NAMES = {"onnx": "ONNX", "torchscript": "TorchScript", "int8": "int8"}
NO_PEN = QPen(Qt.PenStyle.NoPen)
NO_BRUSH = QBrush(Qt.BrushStyle.NoBrush)
BADGE_HEIGHT = 13.0
BADGE_DARK_TEXT, BADGE_LIGHT_TEXT = QColor("#1f2328"), QColor("#ffffff")
NO_WEIGHTS_YET = "no weights to read: load some (View › Load Weights for Overlay…) or train a run"
#: Sparsity ramp: one hue, from pale (dense weights) to deep (all zero), in HSL lightness.
SPARSE_HUE, DENSE_LIGHTNESS, SPARSE_LIGHTNESS = 24, 205, 105


@dataclass(frozen=True)
class Mark:
    """An overlay's look on one node; ``veiled``: the overlay does not apply to it."""

    colour: QColor
    tooltip: str
    badge: str = ""
    fraction: float | None = None
    veiled: bool = False
    state: Readiness | None = None  # in a readiness overlay


@dataclass(frozen=True)
class TintedStyle(st.CanvasStyle):
    """The canvas style with one accent in place of every family's: a marked node's header,
    strip and ports take the mark's colour instead of its layer family's."""

    tint: QColor = field(default_factory=QColor)

    def family(self, name: str) -> QColor:
        return self.tint


_tinted: dict[tuple[int, int], TintedStyle] = {}


def tinted(style: st.CanvasStyle, mark: Mark) -> TintedStyle:
    """``style`` with ``mark``'s colour as every family accent (made once per colour)."""
    key = (id(style), mark.colour.rgba())
    if key not in _tinted:
        values = {f.name: getattr(style, f.name) for f in fields(st.CanvasStyle)}
        _tinted[key] = TintedStyle(**values, tint=QColor(mark.colour))
    return _tinted[key]


def readiness_marks(analysis: Analysis, target: str, style: st.CanvasStyle) -> dict[str, Mark]:
    """Each node's readiness for ``target`` as a mark."""
    name = TARGET_NAMES[target]
    return {node: readiness_mark(found, name, style) for node, found in node_readiness(analysis, target).items()}


def readiness_mark(found: NodeReadiness, target_name: str, style: st.CanvasStyle) -> Mark:
    head = f"{target_name} export: {found.state.value}"
    if found.state is Readiness.READY:
        return Mark(style.valid, head, state=found.state)
    if found.state is Readiness.NOT_APPLICABLE:
        return Mark(style.muted, f"{head}: {found.note}", veiled=True, state=found.state)
    return Mark(style.error, "\n".join([head, *map(reason_text, found.problems)]),
                badge=f"not ready for {target_name}", state=found.state)


def reason_text(problem: Diagnostic) -> str:
    """A problem in plain words with its fix on a line of its own."""
    return f"• {problem.message}" + (f"\n  Fix: {problem.fix}" if problem.fix else "")


def sparsity_marks(fractions: dict[str, float], weighted: set[str], node_ids: list[str], source: str,
                   style: st.CanvasStyle) -> dict[str, Mark]:
    """Each node's fraction of zero weights (from ``source``); nodes without weights, or
    without any in ``source``, are veiled."""
    marks = {}
    for node in node_ids:
        if node in fractions:
            share = fractions[node]
            marks[node] = Mark(sparsity_colour(share), f"Sparsity: {share:.1%} of its weights are zero ({source})",
                               badge=f"{share:.0%} zero", fraction=share)
        elif node in weighted:
            missing = f"{source} holds no weights for it" if source else NO_WEIGHTS_YET
            marks[node] = Mark(style.muted, f"Sparsity: {missing}", veiled=True)
        else:
            marks[node] = Mark(style.muted, "Sparsity: it has no weights", veiled=True)
    return marks


def sparsity_colour(share: float) -> QColor:
    """Pale orange for dense weights, deepening as more of them are zero."""
    share = min(1.0, max(0.0, share))
    return QColor.fromHsl(SPARSE_HUE, 200, round(DENSE_LIGHTNESS + (SPARSE_LIGHTNESS - DENSE_LIGHTNESS) * share))


# ----- painting ---------------------------------------------------------------------------------

def paint_mark(painter: QPainter, mark: Mark, body: QPainterPath, width: float, height: float,
               style: st.CanvasStyle, lod: float) -> None:
    """Draw ``mark`` over a node of this outline and size, at level of detail ``lod``."""
    if mark.veiled:
        veil = QColor(style.background)
        veil.setAlpha(150)
        painter.setPen(NO_PEN)
        painter.setBrush(veil)
        painter.drawPath(body)
        return
    if lod < st.BLOCK_LOD:  # a block: the mark's colour fills it
        painter.setPen(NO_PEN)
        painter.setBrush(mark.colour)
        painter.drawRect(QRectF(0, 0, width, height))
        return
    painter.setBrush(NO_BRUSH)
    painter.setPen(QPen(mark.colour, 2.5))
    painter.drawPath(body)
    if mark.fraction is not None:
        _paint_bar(painter, mark, width, height, style)
    if mark.badge and lod >= st.DETAIL_LOD:
        _paint_badge(painter, mark, width, height, style)


def _paint_bar(painter: QPainter, mark: Mark, width: float, height: float, style: st.CanvasStyle) -> None:
    """The share of zero weights as a bar along the node's foot."""
    track = QRectF(st.RADIUS, height - 7, width - 2 * st.RADIUS, 4)
    painter.setPen(NO_PEN)
    painter.setBrush(style.grid_major)
    painter.drawRoundedRect(track, 2, 2)
    painter.setBrush(mark.colour)
    painter.drawRoundedRect(QRectF(track.topLeft(), QPointF(track.left() + track.width() * (mark.fraction or 0.0),
                                                             track.bottom())), 2, 2)


def _paint_badge(painter: QPainter, mark: Mark, width: float, height: float, style: st.CanvasStyle) -> None:
    """The mark's few words in a pill just under the node."""
    painter.setFont(st.font("small"))
    text_width = st.text_width("small", mark.badge)
    rect = QRectF(width - text_width - 14, height + 1, text_width + 12, BADGE_HEIGHT)
    painter.setPen(NO_PEN)
    painter.setBrush(mark.colour)
    painter.drawRoundedRect(rect, BADGE_HEIGHT / 2, BADGE_HEIGHT / 2)
    painter.setPen(BADGE_DARK_TEXT if mark.colour.lightness() > 150 else BADGE_LIGHT_TEXT)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, mark.badge)
