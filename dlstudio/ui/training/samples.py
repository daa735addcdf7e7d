"""The Samples view: what a generative run draws, live after each epoch and on demand.

A run's task sends the pictures and texts it keeps after each epoch
(:class:`~dlstudio.train.events.EpochSample`: a GAN's fixed-noise grid, a language model's
text, an autoencoder's input/reconstruction pairs), one list per kind; the slider goes back
through the epochs, so a grid can be watched learning. Sample (in the Runs panel) draws anew
from a finished or stopped run on a worker thread (:class:`SampleJob`), so the window never
waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtGui import QFontDatabase, QImage
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QPlainTextEdit,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from dlstudio.ui.panels import plain_label
from dlstudio.ui.training.images import ImageView
from dlstudio.ui.training.widgets import LiveText

HINT = "Train a generative graph (a GAN, a language model) to watch its samples here after each epoch, " \
       "or pick a finished run in Runs and click Sample."
#: The source a drawn sample is listed under.
DRAWN = "drawn"


@dataclass(frozen=True)
class Picture:
    """One thing to show: a PNG or a text, with a line saying what it is."""

    header: str
    png: bytes = b""
    text: str = ""


class SamplesPanel(QWidget):
    """Pictures and texts by source (``samples``, ``reconstructions``, ``drawn``) and epoch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("samples_panel")
        self.history: dict[str, dict[int, Picture]] = {}  # by source, by epoch (0 for a drawn one)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        row = QHBoxLayout()
        self.source = QComboBox()
        self.source.setToolTip("What to show: what the run drew after each epoch, or samples drawn by Sample")
        self.source.activated.connect(lambda _i: self._source_changed())
        row.addWidget(self.source)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Go back through the epochs")
        self.slider.valueChanged.connect(lambda _v: self._show_current())
        row.addWidget(self.slider, 1)
        self.epoch_label = plain_label("", muted=True, small=True)
        row.addWidget(self.epoch_label)
        layout.addLayout(row)
        self.header = LiveText("", muted=True, small=True)
        layout.addWidget(self.header)
        self.stack = QStackedWidget()
        self.image = ImageView(HINT)
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.stack.addWidget(self.image)
        self.stack.addWidget(self.text)
        layout.addWidget(self.stack, 1)
        self.clear()

    # ----- what comes in ------------------------------------------------------------------------

    def add_epoch_sample(self, event: Any) -> None:
        """Keep a run's :class:`~dlstudio.train.events.EpochSample`; show it when its source is
        shown at its newest epoch (or nothing is shown yet)."""
        following = self._at_newest()
        pictures = self.history.setdefault(event.title, {})
        pictures[event.epoch] = Picture(f"{event.title} after epoch {event.epoch}", event.png, event.text)
        if self.source.findData(event.title) < 0:
            self.source.addItem(event.title.replace("_", " "), event.title)
        if self.current_source() in (None, event.title) and following:
            self._select(event.title, newest=True)
        else:
            self._update_controls()

    def show_drawn(self, run: str, drawn: Any) -> None:
        """Show samples drawn from run ``run`` (a :class:`~dlstudio.train.sampling.Drawn`)."""
        header = f"drawn from run {run} · seed {drawn.seed}"
        texts = list(drawn.texts)
        text = texts[0] if len(texts) == 1 else "".join(
            f"--- sample {i} ---\n{t.rstrip()}\n\n" for i, t in enumerate(texts, start=1))
        self.history[DRAWN] = {0: Picture(header, drawn.png, text)}
        if self.source.findData(DRAWN) < 0:
            self.source.addItem(DRAWN, DRAWN)
        self._select(DRAWN, newest=True)

    def clear(self) -> None:
        """Forget every picture (a new run, another graph)."""
        self.history = {}
        self.source.clear()
        self.image.set_image(None, HINT)
        self.text.clear()
        self.header.setText("")
        self.stack.setCurrentWidget(self.image)
        self._update_controls()

    # ----- what is shown --------------------------------------------------------------------------

    def current_source(self) -> str | None:
        return self.source.currentData()

    def shown(self) -> Picture | None:
        """The picture or text on screen now."""
        epochs = self._epochs()
        if not epochs:
            return None
        return self.history[self.current_source() or ""][epochs[self.slider.value()]]

    def _epochs(self) -> list[int]:
        return sorted(self.history.get(self.current_source() or "", {}))

    def _at_newest(self) -> bool:
        return self.slider.value() >= self.slider.maximum()

    def _select(self, source: str, newest: bool) -> None:
        self.source.setCurrentIndex(self.source.findData(source))
        self._update_controls()
        if newest:
            self.slider.setValue(self.slider.maximum())
        self._show_current()

    def _source_changed(self) -> None:
        self._update_controls()
        self.slider.setValue(self.slider.maximum())
        self._show_current()

    def _update_controls(self) -> None:
        epochs = self._epochs()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(epochs) - 1, 0))
        self.slider.blockSignals(False)
        self.slider.setVisible(len(epochs) > 1)
        self.source.setVisible(self.source.count() > 1)
        self.epoch_label.setText(f"{len(epochs)} epochs")
        self.epoch_label.setVisible(len(epochs) > 1)

    def _show_current(self) -> None:
        picture = self.shown()
        if picture is None:
            return
        self.header.setText(picture.header)
        if picture.png:
            self.image.set_image(QImage.fromData(picture.png, "PNG"))
            self.stack.setCurrentWidget(self.image)
        else:
            self.text.setPlainText(picture.text)
            self.stack.setCurrentWidget(self.text)


@dataclass(frozen=True)
class SampleResult:
    """What a :class:`SampleJob` drew from ``run`` (a Drawn), or why it could not."""

    run: Path
    drawn: Any = None
    message: str = ""


class SampleJob(QThread):
    """Draws samples from a run off the UI thread; ``done(SampleResult)`` when finished."""

    done = Signal(object)

    def __init__(self, run: Path, seed: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run_path, self.seed = run, seed
        self.result = SampleResult(run, message="not drawn")
        self.finished.connect(lambda: self.done.emit(self.result))

    def run(self) -> None:
        from dlstudio.train.errors import TrainError
        from dlstudio.train.rundir import RunDir
        from dlstudio.train.sampling import draw_to_view

        try:
            self.result = SampleResult(self.run_path, draw_to_view(RunDir(self.run_path), self.seed))
        except TrainError as error:
            advice = f" ({error.advice})" if error.advice else ""
            self.result = SampleResult(self.run_path, message=f"Cannot sample: {error}{advice}")
        except Exception as error:  # noqa: BLE001  (a sampler's bug must not take the app down)
            self.result = SampleResult(self.run_path, message=f"Sampling failed: {type(error).__name__}: {error}")
