"""Ports of a node on the canvas: which ones a node shows, where they sit, how they look.

Ports are painted by their node item rather than being items of their own, which keeps a
1,000-node scene at a third of the items; a port is addressed as ``(name, is_input)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen

from dlstudio.core.graph import Node
from dlstudio.core.params import output_ports_of
from dlstudio.core.spec import LayerSpec
from dlstudio.ui.canvas.style import PORT_RADIUS, CanvasStyle

PortKey = tuple[str, bool]  # (port name, is_input)
EdgeKey = tuple[str, str]  # (source end, target end)
End = tuple[str, str | None]  # an edge end split: the node, and its port (None: a bare end)


class PortState(Enum):
    FREE = 0
    CONNECTED = 1
    VALID = 2  # a valid target while dragging a connection
    HOVER = 3  # the target under the cursor


@dataclass(frozen=True)
class PortLists:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def rows(self) -> int:
        return max(len(self.inputs), len(self.outputs), 1)


def node_ports(node: Node, spec: LayerSpec | None, ends: Sequence[tuple[End, End]]) -> PortLists:
    """The ports a node shows: its declaration's, one spare for a variadic node, and for a
    missing layer type the ports its edges name (``ends``: each edge's source and target as
    ``(node, port)``), so they stay visible."""
    if spec is not None and not spec.variadic:  # the declaration's: the edges change nothing
        return PortLists(spec.inputs, output_ports_of(spec, node.params))
    named_in = [port or "input" for _, (node_id, port) in ends if node_id == node.id]
    if spec is None:
        named_out = [port or "output" for (node_id, port), _ in ends if node_id == node.id]
        inputs = tuple(dict.fromkeys(named_in)) or ("input",)
        outputs = tuple(dict.fromkeys(named_out)) or ("output",)
        return PortLists(inputs, outputs)
    used = [int(p[2:]) for p in named_in if spec.accepts_input(p)]
    return PortLists(spec.input_ports(max(used, default=-1) + 2), output_ports_of(spec, node.params))


def paint_port(painter: QPainter, centre: QPointF, state: PortState, style: CanvasStyle,
               accent: QColor, pointed: bool = False) -> None:
    """A small disc on the node border; filled when connected, ringed when it is a target,
    larger under the cursor."""
    radius = PORT_RADIUS + (1.5 if pointed else 0.0)
    if state in (PortState.VALID, PortState.HOVER):
        glow = QColor(style.valid)
        glow.setAlpha(90 if state is PortState.VALID else 160)
        painter.setPen(QPen(Qt.PenStyle.NoPen))
        painter.setBrush(glow)
        extra = 4.0 if state is PortState.VALID else 6.5
        painter.drawEllipse(centre, radius + extra, radius + extra)
    fill = accent if state is PortState.CONNECTED else style.node
    if state in (PortState.VALID, PortState.HOVER):
        fill = style.valid
    painter.setPen(QPen(accent if state is not PortState.HOVER else style.valid, 1.6))
    painter.setBrush(QBrush(fill))
    painter.drawEllipse(centre, radius, radius)
