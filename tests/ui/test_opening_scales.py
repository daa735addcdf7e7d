"""Opening a graph in the editor (layout of every node, the scene, the first analysis) does
work in proportion to its size: twice the nodes run at most about twice the Python lines.
The fan-out graph (one node feeding every layer) was quadratic while edges were routed by
asking the scene which items each edge crosses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from dlstudio.ui.main_window import MainWindow
from tests.core.test_scaling import LINEAR, SHAPES
from tests.core.work_count import growth
from tests.ui.windows import open_window


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch) -> MainWindow:
    monkeypatch.setattr(QMessageBox, "exec", lambda box: 0)
    win = open_window(qtbot, tmp_path, (1250, 760))
    win.code_dock.raise_()  # the code tab in front: its export on open counts in the work
    return win


@pytest.mark.parametrize("shape", ["chain", "residual", "fan-out"])
def test_opening_twice_the_nodes_at_most_doubles_the_work(window, qtbot, tmp_path, shape):
    def step_for(nodes: int) -> Callable[[], object]:
        path = tmp_path / f"{shape}_{nodes}.json"  # no positions: opening lays every node out
        path.write_text(json.dumps(SHAPES[shape](nodes)))

        def open_file() -> None:
            # the code panel shows the new file's code after a delay: waited for, so that it
            # counts in every run (a busy machine otherwise counted it only in the slower runs)
            with qtbot.waitSignal(window.code.updated, timeout=120_000):
                assert window.files.open_path(path, ask=False)
            QApplication.processEvents()

        return open_file

    assert growth(step_for, 400, repeats=2) <= LINEAR
    assert len(window.view.scene_.nodes) == len(SHAPES[shape](400)["nodes"])  # opened last
