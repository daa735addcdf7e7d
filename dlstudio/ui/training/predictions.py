"""Insight into predictions: one probe sample's image, probabilities and saliency; the confusion matrix."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dlstudio.ui.panels import plain_label
from dlstudio.ui.theme import colors
from dlstudio.ui.training.images import ImageView, colourize, grey_or_colour, lut, to_qimage
from dlstudio.ui.training.widgets import BarsView, LiveText

NOT_IMAGES = ("Predictions appear here for image classifiers (an image input and a "
              "classification loss) once training starts.")


class PredictionsPage(QWidget):
    """A probe sample: its image, the saliency map over it, and the class probabilities."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: tuple = ()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        top = QHBoxLayout()
        top.addWidget(QLabel("Sample"))
        self.sample = QSpinBox()
        self.sample.setRange(1, 1)
        self.sample.valueChanged.connect(lambda _v: self._render())
        top.addWidget(self.sample)
        self.verdict = LiveText("")
        top.addWidget(self.verdict, 1)
        layout.addLayout(top)
        images = QHBoxLayout()
        self.image = ImageView(NOT_IMAGES)
        self.saliency = ImageView("")
        self.image.setToolTip("The probe sample as the network sees it")
        self.saliency.setToolTip("Saliency: how strongly each input pixel moves the predicted class's score")
        images.addWidget(self._captioned(self.image, "Input"))
        images.addWidget(self._captioned(self.saliency, "Saliency"))
        layout.addLayout(images, 3)
        layout.addWidget(plain_label("Class probabilities (green: predicted and right, red: predicted "
                                     "but wrong, light: the true class)", muted=True, small=True, wrap=True))
        self.bars = BarsView()
        layout.addWidget(self.bars, 2)

    @staticmethod
    def _captioned(view: QWidget, caption: str) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(view, 1)
        label = plain_label(caption, muted=True, small=True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column.addWidget(label)
        return box

    def show_predictions(self, predictions: tuple) -> None:
        self.predictions = predictions
        self.sample.setRange(1, max(1, len(predictions)))
        self._render()

    def _render(self) -> None:
        if not self.predictions:
            self.image.set_image(None)
            self.saliency.set_image(None)
            self.verdict.setText("")
            self.bars.clear()
            return
        p = self.predictions[min(self.sample.value(), len(self.predictions)) - 1]
        self.image.set_image(to_qimage(grey_or_colour(p.image)))
        self.saliency.set_image(to_qimage(colourize(p.saliency, lut("inferno"))))
        confidence = float(p.probabilities[p.predicted])
        mark = "right" if p.predicted == p.target else "wrong"
        self.verdict.setText(f"predicted {p.predicted} ({confidence:.0%}) · true {p.target} · {mark}")
        self._bars(p)

    def _bars(self, p) -> None:  # noqa: ANN001  (a Prediction)
        accent, ok, error = colors().accent, colors().ok, colors().error
        colours = [ok if i == p.predicted == p.target else error if i == p.predicted
                   else accent.lighter(150) if i == p.target else accent for i in range(len(p.probabilities))]
        self.bars.show_bars([float(v) for v in p.probabilities], colours,
                            [str(i) for i in range(len(p.probabilities))])


class ConfusionView(QWidget):
    """A confusion matrix as a grid: rows are true classes, columns predicted ones."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix: np.ndarray | None = None
        self.caption = "The confusion matrix of the validation data appears after each epoch."
        self.setMinimumSize(QSize(160, 160))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_matrix(self, matrix: np.ndarray | None, epoch: int = 0) -> None:
        self.matrix = matrix
        if matrix is not None:
            total = int(matrix.sum())
            right = int(np.trace(matrix))
            self.caption = f"epoch {epoch} · {right} of {total} validation predictions right ({right / max(total, 1):.1%})"
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        text = self.palette().color(QPalette.ColorRole.Text)
        painter.setPen(text)
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.85))
        painter.setFont(small)
        caption = QRectF(self.rect()).adjusted(6, 2, -6, 0)
        caption.setHeight(20)
        painter.drawText(caption, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.caption)
        if self.matrix is None or not self.matrix.size:
            return
        self._grid(painter, QRectF(self.rect()).adjusted(50, 60, -10, -8), text)

    def _grid(self, painter: QPainter, room: QRectF, text: QColor) -> None:
        m = self.matrix
        assert m is not None
        n = m.shape[0]
        side = min(room.width(), room.height()) / n
        area = QRectF(room.left() + (room.width() - side * n) / 2, room.top(), side * n, side * n)
        painter.drawText(QRectF(area.left(), area.top() - 38, area.width(), 16), Qt.AlignmentFlag.AlignCenter,
                         "predicted class")
        painter.save()
        painter.translate(area.left() - 36, area.center().y())
        painter.rotate(-90)
        painter.drawText(QRectF(-area.height() / 2, -8, area.height(), 16), Qt.AlignmentFlag.AlignCenter,
                         "true class")
        painter.restore()
        rows = m / np.maximum(m.sum(1, keepdims=True), 1)
        accent, error = colors().accent, colors().error
        base = self.palette().color(QPalette.ColorRole.Base)
        for r in range(n):
            for c in range(n):
                cell = QRectF(area.left() + c * side, area.top() + r * side, side, side)
                tint = accent if r == c else error
                painter.fillRect(cell, _mix(base, tint, float(rows[r, c])))
                if side >= 18 and m[r, c]:
                    painter.setPen(base if rows[r, c] > 0.55 else text)
                    painter.drawText(cell, Qt.AlignmentFlag.AlignCenter, str(int(m[r, c])))
        painter.setPen(text)
        if side >= 10:
            for i in range(n):
                painter.drawText(QRectF(area.left() - 26, area.top() + i * side, 22, side),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, str(i))
                painter.drawText(QRectF(area.left() + i * side, area.top() - 18, side, 16),
                                 Qt.AlignmentFlag.AlignCenter, str(i))


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    t = max(0.0, min(1.0, t)) ** 0.7
    return QColor(round(a.red() + (b.red() - a.red()) * t), round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t))
