"""Blocks in the editor as a user meets them: group a selection (Ctrl+G), ungroup, make unique,
double-click a block to edit it in place under a breadcrumb, and undo all of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox, QToolButton

from dlstudio.core.io import load_graph
from dlstudio.ui.main_window import MainWindow
from dlstudio.ui.panels.inspector import BlockPage, NodePage
from dlstudio.ui.panels.param_editors import ExpressionEditor
from tests.ui.windows import open_window

BLOCKY = Path(__file__).parents[1] / "core" / "data" / "blocky.json"


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch) -> MainWindow:
    monkeypatch.setattr(QMessageBox, "exec", lambda box: 0)  # closing with unsaved edits asks
    win = open_window(qtbot, tmp_path, (1400, 900))
    path = tmp_path / "blocky.json"
    shutil.copy(BLOCKY, path)
    assert win.files.open_path(path)
    win.document.reanalyse()
    return win


def node_point(window: MainWindow, node_id: str) -> QPoint:
    """Where node ``node_id``'s title is on the canvas, in viewport coordinates."""
    item = window.view.scene_.nodes[node_id]
    window.view.centerOn(item)
    return window.view.mapFromScene(item.sceneBoundingRect().center().x(), item.y() + 10)


def answer_name(name: str, tries: int = 200) -> None:
    """Type ``name`` into the block name dialog once it shows (looking every 10 ms), and OK."""
    dialog = QApplication.activeModalWidget()
    if isinstance(dialog, QInputDialog):
        dialog.setTextValue(name)
        dialog.accept()
    elif tries:
        QTimer.singleShot(10, lambda: answer_name(name, tries - 1))


def test_ctrl_g_groups_the_selection_into_a_named_block_and_undo_gives_back_the_file(qtbot, window):
    doc, view = window.document, window.view
    before = doc.to_json()
    view.select_nodes(["wte", "h", "head"])
    answer_name("Body")
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert [n.type for n in doc.graph.nodes] == ["Input", "Body", "Output"]
    assert view.selected_node_ids() == ["body"]
    assert set(view.scene_.nodes) == {"tokens", "body", "out"}
    assert "Body" in window.palette_panel.visible_types()
    doc.reanalyse()
    assert doc.analysis.ok and doc.analysis.total_params == 19_936
    assert window.undo_action.text() == "&Undo Group into Body"
    window.undo_action.trigger()
    assert doc.to_json() == before
    assert "Body" not in window.palette_panel.visible_types()
    window.redo_action.trigger()
    assert doc.node("body").type == "Body"


def test_grouping_is_offered_only_without_the_graph_s_inputs_and_outputs(window):
    window.view.select_nodes(["tokens", "wte"])
    assert not window.blocks.actions["group"].isEnabled()
    window.view.select_nodes(["wte"])
    assert window.blocks.actions["group"].isEnabled()
    assert not window.blocks.actions["ungroup"].isEnabled()
    window.view.select_nodes(["h"])
    assert all(window.blocks.actions[name].isEnabled() for name in ("ungroup", "unique", "open"))


def test_the_context_menu_selects_the_node_clicked_and_ungroups_it(qtbot, window):
    doc, view = window.document, window.view
    view.select_nodes(["wte"])
    window.blocks.show_context_menu(node_point(window, "h"))
    menu = window.blocks.menu
    assert view.selected_node_ids() == ["h"]
    entries = {a.text(): a for a in menu.actions()}
    assert list(entries) == ["&Group into Block…", "U&ngroup", "Make Block &Unique", "&Open Block"]
    menu.close()
    entries["U&ngroup"].trigger()
    assert "h" not in view.scene_.nodes and "h_2_fc1" in view.scene_.nodes
    assert len(view.selected_node_ids()) == 12
    assert doc.graph.blocks is None
    doc.reanalyse()
    assert doc.node("h_0_fc1").params == {"out_features": 128} and doc.analysis.total_params == 19_936
    window.undo_action.trigger()
    assert doc.node("h").type == "Residual" and "Residual" in window.palette_panel.visible_types()


def test_make_unique_gives_the_node_its_own_block(window):
    doc = window.document
    window.view.select_nodes(["h"])
    window.blocks.actions["unique"].trigger()
    assert doc.node("h").type == "Residual_2"
    assert set(doc.graph.blocks) == {"Residual", "Residual_2"}
    assert {"Residual", "Residual_2"} <= set(window.palette_panel.visible_types())
    assert window.view.scene_.nodes["h"].view.title == "Residual_2 ×3"


def test_a_block_node_shows_its_repeat_and_its_parameters_in_the_inspector(window):
    doc, view = window.document, window.view
    assert view.scene_.nodes["h"].view.title == "Residual ×3"
    view.select_node("h", center=False)
    page = window.inspector.page
    assert isinstance(page, NodePage) and list(page.rows) == ["repeat", "width", "scale"]
    scale = page.rows["scale"].editor
    assert isinstance(scale, ExpressionEditor) and scale.line.text() == "$4 if index == 0 else 2"
    assert page.rows["width"].editor.line.text() == "32"
    scale.line.setText("$3")
    scale.line.editingFinished.emit()
    assert doc.node("h").params["scale"] == "$3"
    page.rows["repeat"].editor.spin.setValue(2)
    assert view.scene_.nodes["h"].view.title == "Residual ×2"
    doc.reanalyse()
    assert doc.analysis.param_counts["h"] == 2 * (32 * 96 + 96 + 96 * 32 + 32)


def test_double_click_opens_the_block_with_its_first_use_s_shapes_and_the_breadcrumb_leads_back(qtbot, window):
    doc, view = window.document, window.view
    assert not window.breadcrumbs.isVisible()
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=node_point(window, "h"))
    assert doc.scope_path == ("Residual",)
    assert set(view.scene_.nodes) == {"x", "fc1", "act", "fc2", "add", "y"}
    assert view.scene_.nodes["fc1"].view.outputs["output"] == "[N, T, 128]"  # copy 0: scale 4
    assert window.breadcrumbs.isVisible() and window.breadcrumbs.crumbs() == ["blocky", "Residual"]
    assert isinstance(window.inspector.page, BlockPage)
    window.breadcrumbs.findChild(QToolButton, "crumb_0").click()
    assert doc.scope_path == () and "h" in view.scene_.nodes
    assert not window.breadcrumbs.isVisible()


def test_an_edit_inside_a_block_changes_every_use_saves_and_undoes_where_it_was_made(window):
    doc, view = window.document, window.view
    doc.open_block("h")
    view.select_node("fc1", center=False)
    row = window.inspector.page.rows["out_features"]
    assert isinstance(row.editor, ExpressionEditor) and row.editor.line.text() == "$width * scale"
    row.editor.line.setText("$width * 3")
    row.editor.line.editingFinished.emit()
    assert doc.graph.blocks["Residual"].node("fc1").params["out_features"] == "$width * 3"
    doc.reanalyse()
    assert view.scene_.nodes["fc1"].view.outputs["output"] == "[N, T, 96]"
    doc.open_path(())
    assert doc.analysis.param_counts["h"] == 3 * (32 * 96 + 96 + 96 * 32 + 32)
    assert doc.modified and "*" in window.windowTitle()
    recovery = window.autosaver.autosave()
    assert recovery is not None and "$width * 3" in recovery.read_text(encoding="utf-8")
    window.files.save()
    assert load_graph(doc.path).blocks["Residual"].node("fc1").params["out_features"] == "$width * 3"
    window.undo_action.trigger()
    assert doc.scope_path == ("Residual",)  # undone where it was made
    assert doc.node("fc1").params["out_features"] == "$width * scale"


def test_the_inspector_refuses_an_expression_naming_what_the_block_does_not_have(window):
    doc = window.document
    doc.open_block("h")
    window.view.select_node("fc2", center=False)
    row = window.inspector.page.rows["out_features"]
    row.editor.line.setText("$depth * 2")
    row.editor.line.editingFinished.emit()
    assert doc.node("fc2").params["out_features"] == "$width"
    assert "'depth' is not a parameter an expression here may use (scale, width)" in row.error.text()
    row.editor.line.setText("$width +")
    row.editor.line.editingFinished.emit()
    assert "is not an expression" in row.error.text()


def test_grouping_inside_an_opened_block_adds_a_block_the_outer_one_uses(window):
    doc, view = window.document, window.view
    doc.open_block("h")
    view.select_nodes(["act"])
    answer_name("Act")
    window.blocks.actions["group"].trigger()
    assert doc.scope_path == ("Residual",)
    assert [n.type for n in doc.graph.blocks["Residual"].nodes].count("Act") == 1
    assert doc.node("act").type == "Act" and view.selected_node_ids() == ["act"]
    doc.reanalyse()
    assert doc.analysis.ok
    window.blocks.actions["open"].trigger()
    assert doc.scope_path == ("Residual", "Act")
    assert window.breadcrumbs.crumbs() == ["blocky", "Residual", "Act"]
