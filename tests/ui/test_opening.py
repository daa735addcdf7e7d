"""A graph as it opens: laid out in rows, framed on its inputs at a zoom where titles are drawn,
everything one key (F) away."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QMessageBox

from dlstudio.core.io import load_graph, save_graph
from dlstudio.ui.canvas import style as st
from dlstudio.ui.main_window import MainWindow
from tests.conftest import GRAPHS
from tests.ui.windows import open_window


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch) -> MainWindow:
    monkeypatch.setattr(QMessageBox, "exec", lambda box: 0)
    win = open_window(qtbot, tmp_path, (1250, 760))
    return win


def visible(window: MainWindow) -> QRectF:
    view = window.view
    return view.mapToScene(view.viewport().rect()).boundingRect()


@pytest.mark.parametrize("name", ["cnn_digits", "resnet18", "transformer_sequence"])
def test_an_example_opens_readable_on_its_inputs_and_f_fits_all(window, qtbot, name):
    assert window.files.new_from_example(GRAPHS / f"{name}.json")
    view, scene = window.view, window.view.scene_
    assert view.zoom() >= st.BLOCK_LOD and not scene.overview  # titles are drawn
    assert visible(window).contains(scene.input_rect())
    qtbot.keyClick(view, Qt.Key.Key_F)
    assert visible(window).contains(scene.itemsBoundingRect())


def test_a_long_flat_network_opens_as_a_column_of_rows(window):
    window.files.new_from_example(Path(__file__).parent.parent / "core" / "data" / "resnet18_flat.json")
    rect = window.view.scene_.itemsBoundingRect()
    assert rect.height() > rect.width()


def test_saved_positions_are_kept(window, tmp_path):
    graph = load_graph(GRAPHS / "mlp_digits.json")
    for index, node in enumerate(graph.nodes):
        node.position = (0.0, 400.0 * index)  # the user's own column
    path = tmp_path / "mine.json"
    save_graph(graph, path)
    window.files.open_path(path, ask=False)
    assert [window.document.node(n.id).position for n in graph.nodes] == [n.position for n in graph.nodes]
    assert not window.document.modified


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.json")), ids=lambda p: p.stem)
def test_no_two_nodes_of_an_opened_example_overlap(window, path):
    """Auto-layout uses the sizes the nodes are drawn at (it once used sizes made from the
    previous graph's analysis, so a wide attention node covered the Add beside it)."""
    window.files.open_path(GRAPHS / "mlp_iris.json", ask=False)  # another graph open before
    assert window.files.open_path(path, ask=False)
    items = window.view.scene_.nodes
    body = {k: QRectF(v.pos().x(), v.pos().y(), v.width, v.height) for k, v in items.items()}
    overlapping = [(a, b) for a in body for b in body if a < b and body[a].intersects(body[b])]
    assert overlapping == []
