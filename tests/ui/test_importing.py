"""File > Import: ONNX files open as a new graph; a Python file runs only after the user
agrees in a dialog that says it will run, and a failure shows its one-line reason."""

from __future__ import annotations

import warnings

import pytest
import torch
from PySide6.QtWidgets import QMessageBox
from torch import nn

from tests.ui.windows import open_window

MODEL = """\
from pathlib import Path

import torch
from torch import nn

Path(__file__).with_name("ran").touch()


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return torch.relu(self.fc(x))
"""


@pytest.fixture
def boxes(monkeypatch) -> dict:
    """Message boxes record their text; ``answer`` names the button to click (none: close)."""
    seen: dict = {"texts": [], "answer": None}

    def fake_exec(box: QMessageBox) -> int:
        seen["texts"].append(f"{box.windowTitle()}: {box.text()}")
        for button in box.buttons():
            if button.text() == seen["answer"]:
                button.click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return seen


def _python_import(qtbot, tmp_path, source: str):
    (tmp_path / "model.py").write_text(source)
    window = open_window(qtbot, tmp_path)
    answers = iter(["Small", "x=4"])
    window.importer.ask_model_path = lambda: tmp_path / "model.py"
    window.importer.ask_text = lambda *args, **kwargs: next(answers)
    return window


def test_a_python_model_is_imported_after_the_user_agrees_to_run_it(qtbot, tmp_path, boxes):
    boxes["answer"] = "Run and Import"
    window = _python_import(qtbot, tmp_path, MODEL)
    file_menu = window.menuBar().actions()[0].menu()
    assert "&Import Model…" in [action.text() for action in file_menu.actions()]
    assert window.importer.import_model()
    assert boxes["texts"] == ["Run this file?: Importing model.py runs the Python code in it, and "
                              "whatever that code does, with your permissions."]
    assert [n.type for n in window.document.graph.nodes] == ["Input", "Linear", "ReLU", "Output"]
    assert window.document.path is None and (tmp_path / "ran").exists()
    assert window.statusBar().currentMessage().startswith("Imported model.py: mapped 2 operations")


def test_cancelling_the_warning_never_runs_the_file(qtbot, tmp_path, boxes):
    window = _python_import(qtbot, tmp_path, MODEL)
    before = window.document.graph.model_copy(deep=True)
    assert not window.importer.import_model()
    assert len(boxes["texts"]) == 1 and not (tmp_path / "ran").exists()
    assert window.document.graph == before


def test_a_file_that_raises_shows_one_line(qtbot, tmp_path, boxes):
    boxes["answer"] = "Run and Import"
    window = _python_import(qtbot, tmp_path, "raise ImportError('missing package')\n")
    assert not window.importer.import_model()
    assert boxes["texts"][-1] == (f"Cannot import: {tmp_path / 'model.py'}: importing it raised "
                                  "ImportError: missing package at line 1")


def test_an_onnx_file_opens_without_asking(qtbot, tmp_path, boxes):
    pytest.importorskip("onnx")
    path = tmp_path / "small.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(nn.Sequential(nn.Linear(4, 3), nn.Tanh()), (torch.randn(2, 4),), str(path),
                          dynamo=False, input_names=["x"])
    window = open_window(qtbot, tmp_path)
    window.importer.ask_model_path = lambda: path
    assert window.importer.import_model()
    assert boxes["texts"] == []
    assert [n.type for n in window.document.graph.nodes] == ["Input", "Linear", "Tanh", "Output"]
