"""The Predict panel: a drawn digit or a picked file, classified by the selected or latest run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from dlstudio.train import RunDir, Trainer
from dlstudio.train.predict import Predictor
from dlstudio.ui.main_window import MainWindow
from dlstudio.ui.training.predict_panel import DrawingPad, digit_image
from tests.ui.windows import open_window

DIGITS = {"format": "dlstudio.graph", "version": 1, "name": "digits predictor",
          "nodes": [{"id": "image", "type": "Input", "params": {"shape": [1, 8, 8]}},
                    {"id": "flatten", "type": "Flatten"},
                    {"id": "head", "type": "Linear", "params": {"out_features": 10}},
                    {"id": "logits", "type": "Output"}],
          "edges": [{"source": "image", "target": "flatten"}, {"source": "flatten", "target": "head"},
                    {"source": "head", "target": "logits"}],
          "training": {"dataset": {"name": "digits", "inputs": {"image": "x"}}, "epochs": 2, "batch_size": 64,
                       "optimizer": {"type": "Adam", "params": {"lr": 0.02}}}}


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch) -> MainWindow:
    monkeypatch.setattr(QMessageBox, "exec", lambda box: 0)
    win = open_window(qtbot, tmp_path, (1400, 900))
    win.training.runs_root_override = tmp_path / "runs"
    yield win
    win.training.shutdown()
    win.document.undo_stack.setClean()


def trained_run(window: MainWindow, tmp_path: Path) -> Path:
    path = tmp_path / "digits.json"
    path.write_text(json.dumps(DIGITS), encoding="utf-8")
    assert window.files.open_path(path, ask=False)
    run = tmp_path / "runs" / "digits-run"
    Trainer(copy.deepcopy(window.document.graph), run_dir=RunDir(run)).fit()
    window.training.refresh_runs()
    return run


def drag(pad: DrawingPad, points: list[tuple[int, int]]) -> None:
    """Press, move and release the left button over ``points``, as a hand on the mouse does."""
    def send(kind: QEvent.Type, x: int, y: int, buttons: Qt.MouseButton) -> None:
        where = QPointF(x, y)
        event = QMouseEvent(kind, where, pad.mapToGlobal(where), Qt.MouseButton.LeftButton, buttons,
                            Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(pad, event)

    send(QEvent.Type.MouseButtonPress, *points[0], Qt.MouseButton.LeftButton)
    for x, y in points[1:]:
        send(QEvent.Type.MouseMove, x, y, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseButtonRelease, *points[-1], Qt.MouseButton.NoButton)


def test_the_pad_turns_strokes_into_the_digits_8x8_counts(qtbot) -> None:
    pad = DrawingPad()
    qtbot.addWidget(pad)
    pad.resize(160, 160)
    drag(pad, [(10, 80), (80, 80), (150, 80)])  # a horizontal line through the middle
    digit = pad.digit()
    assert digit.shape == (8, 8) and digit.max() <= 16
    assert digit[3:5].sum(axis=0).min() > 0  # every column of the middle rows is inked
    assert digit[:2].sum() == 0 and digit[6:].sum() == 0
    pad.clear()
    assert not pad.digit().any()


def test_a_drawn_digit_is_classified_by_the_latest_run(qtbot, window, tmp_path) -> None:
    run = trained_run(window, tmp_path)
    window.training.last_run = run
    panel = window.training.predict
    window.training.predict_dock.show()
    window.training.predict_dock.raise_()
    drag(panel.pad, [(80, 20), (80, 60), (80, 100), (80, 140)])  # a one
    assert panel.results, panel.verdict.text()
    expected = Predictor(RunDir(run)).predict(digit_image(panel.pad.digit()), "drawing", 5)
    assert panel.results[0] == expected
    assert panel.verdict.text().startswith("drawing: " + expected.top[0][0])
    assert panel.bars.labels == [name for name, _ in expected.top]
    assert panel.run_label.text() == "run digits-run"


def test_a_picked_file_is_classified_and_bad_files_say_why(qtbot, window, tmp_path) -> None:
    from PIL import Image

    run = trained_run(window, tmp_path)
    window.training.runs.select(run)
    panel = window.training.predict
    picture = tmp_path / "four.png"
    Image.fromarray(np.eye(8, dtype=np.uint8) * 255).save(picture)
    panel.ask_file = lambda: str(picture)
    panel.file_button.click()
    assert panel.verdict.text().startswith("four.png: ") and len(panel.bars.labels) == 5
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert panel.predict_file(str(notes)) == []
    assert "notes.txt: not a" in panel.verdict.text() and "give PNG or JPEG images" in panel.verdict.text()


def test_without_a_run_the_panel_says_to_train_first(qtbot, window, tmp_path) -> None:
    panel = window.training.predict
    panel.pad.stroke([QPoint(20, 20), QPoint(100, 100)])
    assert panel.results == []
    assert panel.verdict.text() == "Train the graph first, or pick a run in the Runs panel."
