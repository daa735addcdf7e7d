"""File > New from Template gives a runnable graph; runs never go beside the graph file."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMenu, QMessageBox

from dlstudio.core.starter import TEMPLATES
from dlstudio.train.rundir import RUNS_ENV
from dlstudio.ui.main_window import MainWindow
from tests.conftest import GRAPHS
from tests.ui.windows import open_window


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch) -> MainWindow:
    monkeypatch.setattr(QMessageBox, "exec", lambda box: 0)
    win = open_window(qtbot, tmp_path)
    yield win
    win.training.shutdown()
    win.document.undo_stack.setClean()


def template_actions(window: MainWindow) -> dict[str, object]:
    file_menu = window.menuBar().actions()[0].menu()
    [templates] = [a.menu() for a in file_menu.actions() if a.text() == "New from &Template"]
    assert isinstance(templates, QMenu)
    return {a.text(): a for a in templates.actions()}


def test_file_new_offers_templates_that_open_ready_to_train(window):
    actions = template_actions(window)
    assert set(actions) == {t.title for t in TEMPLATES.values()}
    actions["Sequence model"].trigger()
    window.document.reanalyse()
    assert window.document.path is None and window.document.graph.training.dataset.name == "copy"
    window.training.panel.refresh()
    assert window.training.panel.can_start


def test_runs_of_an_opened_example_go_to_the_working_directory(window, tmp_path, monkeypatch):
    monkeypatch.delenv(RUNS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert window.files.open_path(GRAPHS / "cnn_digits.json", ask=False)
    assert window.training.runs_root() == tmp_path / "runs"
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "mine"))
    assert window.training.runs_root() == tmp_path / "mine"
