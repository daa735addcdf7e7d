"""The Predict panel: a trained run classifies a file, or a digit drawn with the mouse.

The run is the one selected in Runs (else the latest); :class:`~dlstudio.train.predict.Predictor`
preprocesses each input as the run's data was. The drawing pad copies how scikit-learn's digits
were made: strokes on a 32 x 32 bitmap, whose 4 x 4 blocks count their inked pixels (0..16) into
the 8 x 8 picture the digits examples train on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from dlstudio.ui.panels import plain_label
from dlstudio.ui.theme import colors
from dlstudio.ui.training.widgets import BarsView, LiveText

#: The pad's bitmap side and the digits' side: each digit pixel counts a 4 x 4 block.
BITMAP, DIGIT = 32, 8
#: Pen radius on the bitmap, in bitmap pixels.
PEN = 1.6
#: Classes listed per prediction.
TOP_K = 5


class DrawingPad(QWidget):
    """A square to draw on with the mouse; :meth:`digit` is the drawing as an 8 x 8 array 0..16."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bitmap = np.zeros((BITMAP, BITMAP), dtype=bool)
        self._last: tuple[float, float] | None = None
        self.setMinimumSize(QSize(160, 160))
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a digit with the mouse")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(160, 160)

    def clear(self) -> None:
        self.bitmap[:] = False
        self.update()
        self.changed.emit()

    def digit(self) -> np.ndarray:
        """Inked pixels per 4 x 4 block: the 8 x 8, 0..16 picture of the digits dataset."""
        blocks = self.bitmap.reshape(DIGIT, BITMAP // DIGIT, DIGIT, BITMAP // DIGIT)
        return blocks.sum(axis=(1, 3)).astype(np.float32)

    def stroke(self, points: list[QPoint]) -> None:
        """Ink a line through ``points`` (widget coordinates), as a mouse drag would."""
        self._last = None
        for point in points:
            self._ink(point)
        self._last = None
        self.changed.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._last = None
        self._ink(event.position().toPoint())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._ink(event.position().toPoint())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._last = None
        self.changed.emit()

    def _ink(self, point: QPoint) -> None:
        scale = BITMAP / min(self.width(), self.height())
        here = (point.x() * scale, point.y() * scale)
        start = self._last or here
        steps = max(1, int(np.hypot(here[0] - start[0], here[1] - start[1]) * 2))
        rows, columns = np.mgrid[0:BITMAP, 0:BITMAP] + 0.5
        for t in np.linspace(0.0, 1.0, steps + 1):
            x, y = start[0] + (here[0] - start[0]) * t, start[1] + (here[1] - start[1]) * t
            self.bitmap |= (columns - x) ** 2 + (rows - y) ** 2 <= PEN ** 2
        self._last = here
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        side = min(self.width(), self.height())
        cell = side / DIGIT
        digit = self.digit()
        base = self.palette().color(QPalette.ColorRole.Base)
        ink = self.palette().color(QPalette.ColorRole.Text)
        for r in range(DIGIT):
            for c in range(DIGIT):
                t = digit[r, c] / 16
                colour = QColor(round(base.red() + (ink.red() - base.red()) * t),
                                round(base.green() + (ink.green() - base.green()) * t),
                                round(base.blue() + (ink.blue() - base.blue()) * t))
                painter.fillRect(QRectF(c * cell, r * cell, cell, cell), colour)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1))
        painter.drawRect(QRectF(0, 0, side - 1, side - 1))


def digit_image(digit: np.ndarray) -> Any:
    """An 8 x 8 array 0..16 as a greyscale picture (bright ink on dark), as a file of it would be."""
    from PIL import Image

    return Image.fromarray(np.round(digit * 255 / 16).astype(np.uint8), mode="L")


class PredictPanel(QWidget):
    """Pick a file or draw a digit; the top classes of the run's network are shown as bars."""

    def __init__(self, run_source: Callable[[], Path | None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_source = run_source
        self.ask_file: Callable[[], str | None] = self._ask_file
        self.predictor: Any = None
        self.predictor_run: Path | None = None
        self.results: list[Any] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(plain_label("Classify new data with a trained run: the one selected in Runs, "
                                     "else the latest. Draw a digit for the digits examples.",
                                     muted=True, small=True, wrap=True))
        self.pad = DrawingPad()
        self.pad.changed.connect(self._drawing_changed)
        layout.addLayout(self._buttons())
        pad_row = QHBoxLayout()
        pad_row.addWidget(self.pad)
        pad_row.addStretch(1)
        layout.addLayout(pad_row)
        self.verdict = LiveText("", lines=3)
        self.verdict.setObjectName("predict_verdict")
        layout.addWidget(self.verdict)
        self.bars = BarsView("The top classes appear here.")
        layout.addWidget(self.bars, 1)

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.file_button = QPushButton("Predict a file…")
        self.file_button.setToolTip("An image, a CSV file (one prediction per row) or a text file")
        self.file_button.clicked.connect(lambda _checked=False: self.predict_file())
        self.clear_button = QPushButton("Clear drawing")
        self.clear_button.clicked.connect(self.pad.clear)
        row.addWidget(self.file_button)
        row.addWidget(self.clear_button)
        row.addStretch(1)
        self.run_label = QLabel("")
        row.addWidget(self.run_label)
        return row

    def predict_file(self, path: str | None = None) -> list[Any]:
        """Predict each input of a file (``path``, or one the user picks); shows the first."""
        chosen = path or self.ask_file()
        if not chosen:
            return []
        return self._predict(lambda p: [p.predict(item, Path(source).name, TOP_K)
                                        for item, source in p.inputs(chosen)])

    def predict_drawing(self) -> list[Any]:
        """Predict the digit on the pad."""
        image = digit_image(self.pad.digit())
        return self._predict(lambda p: [p.predict(image, "drawing", TOP_K)])

    def _drawing_changed(self) -> None:
        if self.pad.digit().any():
            self.predict_drawing()
        else:
            self.bars.clear()
            self.verdict.setText("")

    def _predict(self, work: Callable[[Any], list[Any]]) -> list[Any]:
        from dlstudio.train.errors import TrainError

        try:
            predictor = self._predictor()
            if predictor is None:
                return []
            self.results = work(predictor)
        except TrainError as error:
            advice = f" ({error.advice})" if error.advice else ""
            self._say(f"{error}{advice}", error=True)
            return []
        self._show(self.results)
        return self.results

    def _predictor(self) -> Any:
        run = self.run_source()
        if run is None:
            self._say("Train the graph first, or pick a run in the Runs panel.", error=True)
            return None
        if self.predictor is None or self.predictor_run != run:
            from dlstudio.train.predict import Predictor
            from dlstudio.train.rundir import RunDir

            self.predictor, self.predictor_run = Predictor(RunDir(run)), run
            self.run_label.setText(f"run {run.name}")
        return self.predictor

    def _show(self, results: list[Any]) -> None:
        if not results:
            self._say("The file holds nothing to predict.", error=True)
            return
        first = results[0]
        more = f" (and {len(results) - 1} more rows)" if len(results) > 1 else ""
        self._say(first.line() + more)
        if first.top:
            accent = colors().accent
            self.bars.show_bars([p for _, p in first.top], [accent] * len(first.top), [n for n, _ in first.top])
        else:
            self.bars.clear()

    def _say(self, text: str, error: bool = False) -> None:
        palette = self.verdict.palette()
        palette.setColor(QPalette.ColorRole.WindowText,
                         colors().error if error else self.palette().color(QPalette.ColorRole.WindowText))
        self.verdict.setPalette(palette)
        self.verdict.setText(text)
        self.verdict.update()

    def _ask_file(self) -> str | None:
        name, _ = QFileDialog.getOpenFileName(self, "Predict", str(Path.home()),
                                              "Images, CSV or text (*.png *.jpg *.jpeg *.bmp *.csv *.txt);;All files (*)")
        return name or None
