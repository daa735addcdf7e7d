"""Looking inside: the selected node's output on the fixed probe batch, predictions, confusion.

Feature maps of convolutions as a grid, sequences and attention weights as heat maps, and a
histogram of every node's values (dense layers get only that). The views redraw at most twice a
second whatever the probe rate, so neither the UI nor the training slows down.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QTabWidget, QVBoxLayout, QWidget

from dlstudio.ui.document import GraphDocument
from dlstudio.ui.panels import plain_label, set_text_colour
from dlstudio.ui.theme import colors
from dlstudio.ui.training.images import ImageView, colourize, grid, lut, normalise, to_qimage
from dlstudio.ui.training.predictions import ConfusionView, PredictionsPage
from dlstudio.ui.training.widgets import BarsView, LiveText

MIN_GAP_S = 0.5
EMPTY = "Select a node on the canvas, then start training: its output on a fixed batch of samples shows here."
NO_PICTURE = "No picture for this output; its histogram is below."
WAITING = "Its picture comes with the next probe, in a second or two."
STATS = (("mean", "mean"), ("std", "std"), ("min", "min"), ("max", "max"), ("zeros", "zero_fraction"),
         ("dead units", "dead_fraction"), ("∇ output", "grad_norm"), ("∇ weights", "param_grad_norm"))


def number(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    if percent:
        return f"{value:.1%}"
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.2e}"


class ActivationPage(QWidget):
    """Statistics, a picture of the output and a histogram of one node."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        self.title = LiveText(EMPTY, lines=2)
        layout.addWidget(self.title)
        self.values: dict[str, Any] = {}
        stats = QGridLayout()
        stats.setHorizontalSpacing(10)
        stats.setVerticalSpacing(1)
        for index, (caption, key) in enumerate(STATS):
            row, col = divmod(index, 4)
            stats.addWidget(plain_label(caption, muted=True, small=True), row * 2, col)
            self.values[key] = LiveText("–")
            self.values[key].setMinimumWidth(self.values[key].fontMetrics().horizontalAdvance("-0.000e-00") + 4)
            stats.addWidget(self.values[key], row * 2 + 1, col)
        layout.addLayout(stats)
        self.warning = LiveText("")
        set_text_colour(self.warning, colors().warning)
        layout.addWidget(self.warning)
        pictures = QHBoxLayout()  # the picture as large as the height allows, the histogram beside it
        column = QVBoxLayout()
        self.picture = ImageView("")
        column.addWidget(self.picture, 1)
        self.caption = LiveText("", muted=True, small=True)
        column.addWidget(self.caption)
        pictures.addLayout(column, 3)
        column = QVBoxLayout()
        column.addWidget(LiveText("Histogram", muted=True, small=True))
        self.histogram = BarsView()
        column.addWidget(self.histogram, 1)
        pictures.addLayout(column, 2)
        layout.addLayout(pictures, 1)
        self.restyle()

    def restyle(self) -> None:
        set_text_colour(self.warning, colors().warning)

    def show_node(self, node: str, node_type: str, stats: Any, detail: Any, warning: str | None,
                  step: int, waiting: bool = False) -> None:
        """``waiting``: the report shown was not asked for this node's picture (the next one is)."""
        shape = f" · output [{', '.join(map(str, stats.shape))}]" if stats is not None else ""
        self.title.setText(f"{node} · {node_type}{shape}" if node else EMPTY)
        for key, label in self.values.items():
            value = getattr(stats, key, None) if stats is not None else None
            label.setText(number(value, percent=key in ("zero_fraction", "dead_fraction")))
        self.warning.setText(warning or "")
        self._picture(detail, step, waiting)
        self._histogram(stats)

    def _picture(self, detail: Any, step: int, waiting: bool) -> None:
        if detail is None:
            shown = self.values["mean"].text() != "–"
            self.picture.set_image(None, WAITING if waiting else NO_PICTURE if shown else "")
            self.caption.setText("")
            return
        base = self.palette().color(QPalette.ColorRole.Base)
        if detail.kind == "maps":
            rgb = colourize(grid(detail.values), lut("inferno"), base)
            what = f"{detail.values.shape[0]} maps" + (
                f" (of {detail.shape[1]})" if detail.shape[1] > detail.values.shape[0] else "")
        elif detail.kind == "heatmap":
            symmetric = float(np.nanmin(detail.values)) < 0
            rgb = colourize(normalise(detail.values, symmetric), lut("CET-D1" if symmetric else "viridis"))
            what = "attention weights" if detail.port != "output" else "positions × features"
        else:
            values = detail.values[None, :]
            rgb = colourize(normalise(values, bool((values < 0).any())), lut("CET-D1"))
            what = f"{detail.values.shape[0]} features"
        self.picture.set_image(to_qimage(rgb))
        self.caption.setText(f"{what} · sample 1 · step {step}")

    def _histogram(self, stats: Any) -> None:
        if stats is None or not stats.histogram:
            self.histogram.clear()
            return
        high = stats.max if stats.max > stats.min else stats.min + 1.0
        self.histogram.show_histogram(list(stats.histogram), stats.min, high, colors().accent)


class InsightPanel(QTabWidget):
    """Activations of the selected node, predictions and the confusion matrix.

    ``details_wanted`` asks the run to include the selected nodes' whole outputs in its probes.
    """

    details_wanted = Signal(list)

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("training_insight")
        self.document = document
        self.node = ""
        self.report: Any = None
        self._shown_at = 0.0
        self.activations = ActivationPage()
        self.predictions = PredictionsPage()
        self.confusion = ConfusionView()
        self.addTab(self.activations, "Activations")
        self.addTab(self.predictions, "Predictions")
        self.addTab(self.confusion, "Confusion")
        self._pending = QTimer(self, singleShot=True)
        self._pending.timeout.connect(self._render)

    def select(self, node_ids: list[str]) -> None:
        self.node = node_ids[0] if len(node_ids) == 1 else ""
        self.details_wanted.emit(self.details())
        self._render()

    def details(self) -> list[str]:
        """The nodes whose whole output the probes should include."""
        return [self.node] if self.node else []

    def show_report(self, report: Any) -> None:
        """A new probe report; shown now, or when half a second has passed since the last."""
        self.report = report
        wait = MIN_GAP_S - (time.monotonic() - self._shown_at)
        if wait <= 0:
            self._render()
        elif not self._pending.isActive():
            self._pending.start(int(wait * 1000))

    def show_confusion(self, report: Any) -> None:
        self.confusion.show_matrix(report.matrix, report.epoch)

    def clear(self) -> None:
        self.report = None
        self.predictions.show_predictions(())
        self.confusion.show_matrix(None)
        self._render()

    def _render(self) -> None:
        self._shown_at = time.monotonic()
        report, node = self.report, self.node
        node_type = self.document.node(node).type if node and self.document.has_node(node) else ""
        stats = report.stats.get(node) if report is not None and node else None
        detail = report.details.get(node) if report is not None and node else None
        warning = report.warnings.get(node) if report is not None and node else None
        waiting = report is not None and bool(node) and node not in report.requested
        self.activations.show_node(node, node_type, stats, detail, warning, report.step if report else 0, waiting)
        if report is not None:
            self.predictions.show_predictions(report.predictions)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        if event.type() == QEvent.Type.PaletteChange:
            self.activations.restyle()
        super().changeEvent(event)
