"""Live indicators on the canvas: each node's activation statistics and gradient warnings.

A probe report becomes one short line above each node (``μ 0.12  σ 0.31  dead 4%``) and, for a
node whose gradient vanishes or explodes, a warning badge with the reason on hover. The canvas
is touched only when a line actually changes.
"""

from __future__ import annotations

import math
from typing import Any

#: Layer types whose dead-unit share is worth showing even when it is zero.
RECTIFIERS = frozenset({"ReLU", "ReLU6", "Hardtanh", "Threshold"})


def indicator_text(stats: Any, node_type: str) -> str:
    """``μ 0.12 · σ 0.31 · ∇ 3.1e-3``; rectifiers (and any layer with dead units) lead with
    ``dead 4%`` in place of σ. Short, because it sits above a node."""
    parts = [f"μ {_short(stats.mean)}"]
    if node_type in RECTIFIERS or (stats.dead_fraction > 0 and node_type != "Input"):
        parts.insert(0, f"dead {stats.dead_fraction:.0%}")
    else:
        parts.append(f"σ {_short(stats.std)}")
    if stats.grad_norm is not None:
        parts.append(f"∇ {_short(stats.grad_norm)}")
    return " · ".join(parts)


def _short(value: float) -> str:
    """Two significant digits; an exponent without padding (``3.1e-3``)."""
    if not math.isfinite(value) or value == 0 or 1e-2 <= abs(value) < 1e4:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


class NodeIndicators:
    """Applies probe reports to a :class:`~dlstudio.ui.canvas.GraphView`."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.texts: dict[str, str] = {}
        self.warnings: dict[str, str] = {}

    def show_report(self, report: Any, node_types: dict[str, str]) -> None:
        for node, stats in report.stats.items():
            if node not in node_types:
                continue
            text = indicator_text(stats, node_types[node])
            if self.texts.get(node) != text:
                self.texts[node] = text
                self.view.set_node_indicator(node, text)
        for node in [n for n in self.warnings if n not in report.warnings]:
            del self.warnings[node]
            self.view.set_node_warning(node, None)
        for node, warning in report.warnings.items():
            if node in node_types and self.warnings.get(node) != warning:
                self.warnings[node] = warning
                self.view.set_node_warning(node, warning)

    def clear(self) -> None:
        for node in self.texts:
            self.view.set_node_indicator(node, None)
        for node in self.warnings:
            self.view.set_node_warning(node, None)
        self.texts.clear()
        self.warnings.clear()
