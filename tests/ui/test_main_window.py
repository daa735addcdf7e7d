"""The main window as a user meets it: title, shortcuts, palette to canvas, panels in step."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from dlstudio.core.analysis import analyze
from dlstudio.core.codegen import plan_module
from dlstudio.core.export import export_python
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import load_graph, save_graph
from dlstudio.ui.files import RecoveryStore
from dlstudio.ui.main_window import MainWindow
from dlstudio.ui.panels.inspector import NodePage
from dlstudio.ui.panels.palette import TYPE_ROLE
from tests.conftest import GRAPHS, ROOT
from tests.core.source_lines import lines_by_node
from tests.ui.windows import open_window


def mlp() -> Graph:
    return Graph(name="mlp", nodes=[
        Node(id="x", type="Input", params={"shape": [16]}, position=(0, 0)),
        Node(id="fc", type="Linear", params={"out_features": 8}, position=(260, 0)),
        Node(id="act", type="ReLU", position=(520, 0)),
        Node(id="out", type="Output", position=(780, 0)),
    ], edges=[Edge(source="x", target="fc"), Edge(source="fc", target="act"), Edge(source="act", target="out")])


@pytest.fixture
def messages(monkeypatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()) or 0)
    return shown


@pytest.fixture
def window(qtbot, tmp_path: Path, messages) -> MainWindow:
    win = open_window(qtbot, tmp_path, (1400, 900))
    return win


@pytest.fixture
def opened(window: MainWindow, tmp_path: Path) -> Path:
    path = tmp_path / "mlp.json"
    save_graph(mlp(), path)
    assert window.files.open_path(path)
    window.document.reanalyse()
    return path


def press(qtbot, widget, sequence: str) -> None:
    """Type a key sequence into ``widget`` (focused), as the user would."""
    widget.setFocus()
    combo = QKeySequence(sequence)[0]
    qtbot.keyClick(widget, combo.key(), combo.keyboardModifiers())


# ----- title and shortcuts -----------------------------------------------------------------------


def test_title_names_the_file_and_marks_unsaved_changes(qtbot, window, opened) -> None:
    assert window.windowTitle() == "mlp.json — DL Studio"
    window.document.set_param("fc", "out_features", 3)
    assert window.windowTitle() == "mlp.json* — DL Studio"
    window.document.undo_stack.undo()
    assert window.windowTitle() == "mlp.json — DL Studio"
    window.document.set_label("fc", "head")
    window.files.save()
    assert window.windowTitle() == "mlp.json — DL Studio"
    window.files.new()
    assert window.windowTitle() == "untitled.json — DL Studio"


def test_saving_an_untitled_graph_as_mlp_json_names_it_mlp(qtbot, window, tmp_path) -> None:
    window.document.add_node("Input", (0, 0))
    window.files.ask_save_path = lambda suggested, file_filter="": tmp_path / "mlp.json"
    assert window.files.save_as()
    assert window.document.graph.name == "mlp" and load_graph(tmp_path / "mlp.json").name == "mlp"
    assert window.windowTitle() == "mlp.json — DL Studio"
    window.document.set_graph_field("name", "my mlp")
    window.files.ask_save_path = lambda suggested, file_filter="": tmp_path / "other.json"
    assert window.files.save_as()
    assert load_graph(tmp_path / "other.json").name == "my mlp"  # a name the user gave stays


def test_every_shortcut_of_the_issue_is_bound(window) -> None:
    bound = {seq.toString() for action in window.findChildren(type(window.undo_action))
             for seq in action.shortcuts()}
    wanted = ["Ctrl+N", "Ctrl+O", "Ctrl+S", "Ctrl+Shift+S", "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Y",
              "Ctrl+C", "Ctrl+V", "Ctrl+D", "Ctrl+A", "Del", "F", "Tab", "Ctrl+F"]
    assert [key for key in wanted if key not in bound] == []


def test_undo_redo_delete_duplicate_select_all_by_keyboard(qtbot, window, opened) -> None:
    view = window.view
    view.select_node("act", center=False)
    press(qtbot, view, "Del")
    assert not window.document.has_node("act")
    press(qtbot, view, "Ctrl+Z")
    assert window.document.has_node("act")
    press(qtbot, view, "Ctrl+Shift+Z")
    assert not window.document.has_node("act")
    press(qtbot, view, "Ctrl+Z")
    press(qtbot, view, "Ctrl+Y")
    assert not window.document.has_node("act")
    press(qtbot, view, "Ctrl+Z")
    assert window.document.has_node("act")
    press(qtbot, view, "Ctrl+A")
    assert sorted(view.selected_node_ids()) == ["act", "fc", "out", "x"]
    view.select_node("fc", center=False)
    press(qtbot, view, "Ctrl+D")
    assert len(window.document.graph.nodes) == 5
    assert view.selected_node_ids() != ["fc"] and len(view.selected_node_ids()) == 1


def test_ctrl_f_focuses_the_palette_search_and_keys_stay_in_text_fields(qtbot, window, opened) -> None:
    press(qtbot, window.view, "Ctrl+F")
    assert window.palette_panel.search.hasFocus()
    qtbot.keyClicks(window.palette_panel.search, "f")  # "F" fits on the canvas, but types here
    assert window.palette_panel.search.text() == "f"
    window.view.select_node("fc", center=False)
    press(qtbot, window.palette_panel.search, "Del")
    assert window.document.has_node("fc")


def test_tab_opens_quick_add_on_the_canvas(qtbot, window, opened) -> None:
    press(qtbot, window.view, "Tab")
    popup = window.view._quick_add
    assert popup is not None and popup.isVisible()
    popup.hide()


# ----- palette to canvas ------------------------------------------------------------------------


def _palette_item(window: MainWindow, layer: str):
    return next(i for i in window.palette_panel.layer_items() if i.data(0, TYPE_ROLE) == layer)


def test_double_click_in_palette_adds_a_selected_node(qtbot, window, opened) -> None:
    before = set(window.document.graph.node_ids())
    item = _palette_item(window, "Dropout")
    window.palette_panel.tree.scrollToItem(item)
    rect = window.palette_panel.tree.visualItemRect(item)
    qtbot.mouseClick(window.palette_panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(window.palette_panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    [added] = set(window.document.graph.node_ids()) - before
    assert window.document.node(added).type == "Dropout"
    assert window.view.selected_node_ids() == [added]
    assert isinstance(window.inspector.page, NodePage) and window.inspector.page.node_id == added


def _drop(widget, mime: QMimeData, pos: QPoint) -> QDropEvent:
    actions = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    with warnings.catch_warnings():  # PySide6 offers only the QPoint constructors, marked deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        events = (QDragEnterEvent(pos, actions, mime, buttons, mods),
                  QDragMoveEvent(pos, actions, mime, buttons, mods))
    for event in events:
        QApplication.sendEvent(widget, event)
    drop = QDropEvent(QPointF(pos), actions, mime, buttons, mods)
    QApplication.sendEvent(widget, drop)
    return drop


def test_dragging_a_layer_from_the_palette_onto_the_canvas(qtbot, window, opened) -> None:
    mime = window.palette_panel.tree.mimeData([_palette_item(window, "LayerNorm")])
    viewport = window.view.viewport()
    target = QPoint(viewport.width() // 2, viewport.height() - 60)
    before = set(window.document.graph.node_ids())
    drop = _drop(viewport, mime, target)
    assert drop.isAccepted()
    [added] = set(window.document.graph.node_ids()) - before
    node = window.document.node(added)
    assert node.type == "LayerNorm"
    where = window.view.mapToScene(target)
    assert abs(node.position[1] - where.y()) < 60 and abs(node.position[0] - where.x()) < 200
    window.document.undo_stack.undo()
    assert set(window.document.graph.node_ids()) == before


def test_dropping_a_graph_file_opens_it(qtbot, window, tmp_path) -> None:
    path = tmp_path / "dropped.json"
    save_graph(mlp(), path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    _drop(window.view.viewport(), mime, QPoint(100, 100))
    assert window.document.path == path and window.windowTitle() == "dropped.json — DL Studio"


# ----- panels in step ------------------------------------------------------------------------------


def test_editing_in_the_inspector_then_undo_redo_from_the_menu(qtbot, window, opened) -> None:
    window.view.select_node("fc", center=False)
    page = window.inspector.page
    assert isinstance(page, NodePage) and page.node_id == "fc"
    page.rows["out_features"].editor.spin.setValue(20)
    window.document.reanalyse()
    assert "[N, 20]" in window.status_outputs.text()
    window.undo_action.trigger()
    window.document.reanalyse()
    assert window.document.node("fc").params["out_features"] == 8
    assert page.rows["out_features"].editor.spin.value() == 8 and "[N, 8]" in window.status_outputs.text()
    window.redo_action.trigger()
    window.document.reanalyse()
    assert page.rows["out_features"].editor.spin.value() == 20
    assert window.history.model().rowCount() == 2


def test_status_bar_shows_parameters_flops_and_outputs(qtbot, window, opened) -> None:
    analysis = window.document.analysis
    assert window.status_params.text() == f"Params {analysis.total_params:,}" == "Params 136"
    assert analysis.total_flops == 16 * 8 + 8  # Linear's multiply-adds, then ReLU's 8
    assert window.status_flops.text() == "FLOPs 136"
    assert window.status_outputs.text() == "Out out [N, 8]"
    assert window.status_problems.text() == "No problems"


def test_status_bar_counts_the_parameters_the_nodes_show_before_an_output_is_wired(
        qtbot, window, opened) -> None:
    """Building by hand, the layers show their counts before an Output is connected."""
    window.document.remove_items(["out"])
    window.document.reanalyse()
    assert window.view.scene_.nodes["fc"].view.params == "136 params"
    assert window.status_params.text() == "Params 0 + 136 not reaching an Output"
    window.inspector.show_nodes([])
    assert "Parameters: 0 + 136 not reaching an Output" in window.inspector.page.totals.text()


def test_shape_mismatch_is_listed_and_clicking_it_centres_the_node(qtbot, window, opened) -> None:
    window.document.set_param("fc", "in_features", 5)
    window.document.reanalyse()
    problems = window.problems
    rows = [problems.topLevelItem(i) for i in range(problems.topLevelItemCount())]
    row = next(r for r in rows if r.text(1) == "fc")
    assert "expects" in row.text(2) and "16" in row.text(2)
    assert window.status_problems.text().startswith("1 error")
    window.view.select_node("x", center=True)
    problems.itemClicked.emit(row, 2)
    assert window.view.selected_node_ids() == ["fc"]
    item = window.view.scene_.nodes["fc"]
    centre = window.view.mapToScene(window.view.viewport().rect().center())
    assert item.sceneBoundingRect().contains(centre) or (
        item.sceneBoundingRect().center() - centre).manhattanLength() < 40


def test_code_view_highlights_the_canvas_selection(qtbot, window, opened) -> None:
    window.code_dock.raise_()
    with qtbot.waitSignal(window.code.updated, timeout=10_000):
        window.code.regenerate()
    window.view.select_node("fc", center=False)
    lines = window.code.editor.toPlainText().splitlines()
    lit = [lines[i] for i in window.code.highlighted_lines()]
    assert any("self.fc = nn.Linear(16, 8)" in line for line in lit)



def test_selecting_each_node_on_the_canvas_lights_exactly_its_lines(qtbot, window) -> None:
    path = GRAPHS / "cnn_digits.json"
    assert window.files.open_path(path)
    window.code_dock.raise_()
    with qtbot.waitSignal(window.code.updated, timeout=20_000):
        window.code.regenerate()
    shown = window.code.editor.toPlainText()
    expected = lines_by_node(shown, plan_module(analyze(load_graph(path))))
    for node_id in window.view.scene_.nodes:
        window.view.select_node(node_id, center=False)
        assert set(window.code.highlighted_lines()) == expected[node_id], node_id


def test_export_python_writes_the_file(qtbot, window, opened, tmp_path) -> None:
    target = tmp_path / "model.py"
    window.files.ask_save_path = lambda suggested, file_filter="": target
    assert window.files.export_python() == target
    source = target.read_text()
    assert source == export_python(load_graph(opened))
    compile(source, str(target), "exec")


def test_export_of_an_invalid_graph_explains_why(qtbot, window, opened, messages) -> None:
    window.document.remove_items([], [("fc", "act")])
    window.files.ask_save_path = lambda *a: pytest.fail("no file should be asked for")
    assert window.files.export_python() is None
    assert messages and "has errors" in messages[-1]


def test_closing_with_unsaved_changes_asks_first(qtbot, window, opened) -> None:
    window.document.set_param("fc", "out_features", 2)
    window.autosaver.autosave()
    window.files.ask_unsaved = lambda: "cancel"
    assert not window.close() and window.isVisible()
    window.files.ask_unsaved = lambda: "discard"
    assert window.close()
    assert RecoveryStore(window.autosaver.store.folder).pending() == []
    assert load_graph(opened).node("fc").params["out_features"] == 8


# ----- start-up -------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["-m", "dlstudio"], ["-m", "dlstudio", "gui", "GRAPH"],
                                  ["-m", "dlstudio", "gui", "no/such/file.json"]])
def test_the_command_paints_a_window_before_torch_loads(tmp_path, args) -> None:
    """Also with a file that cannot be opened: the window comes up (with the error dialog)."""
    graph = next(iter(sorted(GRAPHS.glob("*.json"))))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DLSTUDIO_STARTUP_PROBE="1",
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    command = [sys.executable] + [str(graph) if a == "GRAPH" else a for a in args]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "painted torch_loaded=False" in done.stdout


def test_switching_theme_recolours_the_panels(qtbot, window, opened) -> None:
    from PySide6.QtGui import QPalette

    from dlstudio.ui.theme import DARK, LIGHT, apply_theme

    app = QApplication.instance()
    window.document.set_param("fc", "in_features", 3)
    window.document.reanalyse()
    try:
        apply_theme(app, dark=True)
        qtbot.waitUntil(lambda: window.code.editor.palette().color(QPalette.ColorRole.Base)
                        == DARK.code_background)  # the palette change arrives as an event
        assert window.problems.topLevelItem(0).foreground(1).color() == DARK.error
        assert window.status_problems.palette().color(QPalette.ColorRole.WindowText) == DARK.error
    finally:
        apply_theme(app, dark=False)
    qtbot.waitUntil(lambda: window.code.editor.palette().color(QPalette.ColorRole.Base)
                    == LIGHT.code_background)
    assert window.problems.topLevelItem(0).foreground(1).color() == LIGHT.error


def test_the_code_is_exported_only_while_its_tab_is_in_front(qtbot, window) -> None:
    """Qt keeps a tabbed-away dock "visible" (moved off the window): the code panel follows its
    dock's tab instead, so a big graph is not exported after every edit behind the Inspector."""
    window.inspector_dock.raise_()
    qtbot.waitUntil(lambda: not window.code.on_screen())
    generation = window.code.generation
    assert window.files.open_path(GRAPHS / "mlp_digits.json")
    window.document.set_param("fc1", "out_features", 48)
    qtbot.wait(400)  # longer than the panel's debounce
    assert window.code.generation == generation
    with qtbot.waitSignal(window.code.updated, timeout=10_000):
        window.code_dock.raise_()  # shown: the pending export runs
    assert "nn.Linear(64, 48)" in window.code.editor.toPlainText()
