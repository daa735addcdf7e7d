"""The panels around the canvas, each driven the way a user drives it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit

from dlstudio.core.analysis import analyze
from dlstudio.core.catalogue import CATALOGUE, families
from dlstudio.core.codegen import plan_module
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import load_graph
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.panels.code_view import CodePanel, generate
from dlstudio.ui.panels.history import HistoryPanel
from dlstudio.ui.panels.inspector import InspectorPanel, NodePage
from dlstudio.ui.panels.palette import LAYER_MIME, TYPE_ROLE, PalettePanel
from dlstudio.ui.panels.problems import ProblemsPanel
from tests.conftest import GRAPHS
from tests.core.source_lines import lines_by_node


def cnn() -> Graph:
    return Graph(name="cnn", nodes=[
        Node(id="image", type="Input", params={"shape": [3, 32, 32]}, position=(0, 0)),
        Node(id="conv", type="Conv2d", params={"out_channels": 8, "kernel_size": 3}, position=(0, 100)),
        Node(id="drop", type="Dropout", position=(0, 200)),
        Node(id="flat", type="Flatten", position=(0, 300)),
        Node(id="fc", type="Linear", params={"out_features": 10}, position=(0, 400)),
        Node(id="out", type="Output", position=(0, 500)),
    ], edges=[Edge(source=a, target=b) for a, b in
              [("image", "conv"), ("conv", "drop"), ("drop", "flat"), ("flat", "fc"), ("fc", "out")]])


@pytest.fixture
def document(qtbot) -> GraphDocument:
    doc = GraphDocument(cnn())
    yield doc
    doc.deleteLater()


@pytest.fixture
def inspector(qtbot, document) -> InspectorPanel:
    panel = InspectorPanel(document)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def page_of(panel: InspectorPanel, node_id: str) -> NodePage:
    panel.show_nodes([node_id])
    assert isinstance(panel.page, NodePage)
    return panel.page


def settle(document: GraphDocument) -> None:
    document.reanalyse()


# ----- palette --------------------------------------------------------------------------------


def test_palette_lists_every_layer_grouped_by_family(qtbot) -> None:
    palette = PalettePanel(GraphDocument())
    qtbot.addWidget(palette)
    assert sorted(palette.visible_types()) == sorted(CATALOGUE)
    root = palette.tree.invisibleRootItem()
    groups = [root.child(i).data(0, Qt.ItemDataRole.UserRole) for i in range(root.childCount())]
    assert groups == list(families())
    for i, specs in enumerate(families().values()):
        group = root.child(i)
        assert {group.child(j).data(0, TYPE_ROLE) for j in range(group.childCount())} == {s.type for s in specs}


def test_palette_search_filters_and_enter_adds_first_match(qtbot) -> None:
    palette = PalettePanel(GraphDocument())
    qtbot.addWidget(palette)
    qtbot.keyClicks(palette.search, "conv2")
    shown = palette.visible_types()
    assert shown and all("conv2" in t.lower() for t in shown)
    with qtbot.waitSignal(palette.add_requested) as added:
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert added.args == [shown[0]]
    palette.search.clear()
    assert len(palette.visible_types()) == len(CATALOGUE)
    qtbot.keyClicks(palette.search, "no such layer at all")
    assert palette.visible_types() == []


@pytest.mark.parametrize(("query", "first"), [("relu", "ReLU"), ("linear", "Linear")])
def test_palette_highlights_the_best_match_and_enter_adds_it(qtbot, query, first) -> None:
    """Not the first of the tree (Hardswish's summary mentions ReLU; Bilinear sorts first)."""
    palette = PalettePanel(GraphDocument())
    qtbot.addWidget(palette)
    qtbot.keyClicks(palette.search, query)
    assert palette.tree.currentItem().data(0, TYPE_ROLE) == first
    assert palette.visible_types()[0] == first  # listed first too, not where the alphabet puts it
    with qtbot.waitSignal(palette.add_requested) as added:
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert added.args == [first]


def test_palette_lists_a_family_best_match_first_and_alphabetically_without_a_search(qtbot) -> None:
    palette = PalettePanel(GraphDocument())
    qtbot.addWidget(palette)
    alphabetical = palette.visible_types()
    qtbot.keyClicks(palette.search, "relu")
    assert palette.visible_types() == ["ReLU", "ReLU6", "LeakyReLU", "PReLU", "Hardswish"]
    palette.search.clear()
    assert palette.visible_types() == alphabetical


def test_palette_family_counts_follow_the_search(qtbot) -> None:
    palette = PalettePanel(GraphDocument())
    qtbot.addWidget(palette)
    activation = next(palette.tree.invisibleRootItem().child(i) for i in range(len(families()))
                      if palette.tree.invisibleRootItem().child(i).data(0, Qt.ItemDataRole.UserRole)
                      == "Activation")
    total = len(families()["Activation"])
    assert activation.text(0) == f"Activation  ({total})"
    qtbot.keyClicks(palette.search, "relu")
    shown = sum(not activation.child(j).isHidden() for j in range(activation.childCount()))
    assert 0 < shown < total and activation.text(0) == f"Activation  ({shown})"
    palette.search.clear()
    assert activation.text(0) == f"Activation  ({total})"


def test_palette_drag_data_and_double_click(qtbot) -> None:
    palette = PalettePanel(GraphDocument())
    qtbot.addWidget(palette)
    item = next(i for i in palette.layer_items() if i.data(0, TYPE_ROLE) == "Linear")
    mime = palette.tree.mimeData([item])
    assert bytes(mime.data(LAYER_MIME).data()).decode() == "Linear"
    with qtbot.waitSignal(palette.add_requested) as added:
        palette.tree.itemDoubleClicked.emit(item, 0)
    assert added.args == ["Linear"]


# ----- inspector ------------------------------------------------------------------------------


def test_editing_a_parameter_then_undo_and_redo(qtbot, document, inspector) -> None:
    page = page_of(inspector, "conv")
    spin = page.rows["out_channels"].editor.spin
    assert spin.value() == 8
    spin.setValue(32)
    assert document.node("conv").params["out_channels"] == 32
    settle(document)
    assert "[N, 32, 30, 30]" in page.info.text()
    document.undo_stack.undo()
    settle(document)
    assert document.node("conv").params["out_channels"] == 8 and spin.value() == 8
    assert "[N, 8, 30, 30]" in page.info.text()
    document.undo_stack.redo()
    settle(document)
    assert spin.value() == 32


def test_tuple_and_float_and_choice_and_bool_editors(qtbot, document, inspector) -> None:
    page = page_of(inspector, "conv")
    line = page.rows["kernel_size"].editor.line
    line.setText("5, 3")
    line.editingFinished.emit()
    assert document.node("conv").params["kernel_size"] == [5, 3]
    padding = page.rows["padding"].editor.line
    padding.setText("same")
    padding.editingFinished.emit()
    assert document.node("conv").params["padding"] == "same"
    page.rows["bias"].editor.check.setChecked(False)
    assert document.node("conv").params["bias"] is False
    combo = page.rows["padding_mode"].editor.combo
    combo.activated.emit(combo.findData("reflect"))
    assert document.node("conv").params["padding_mode"] == "reflect"
    drop = page_of(inspector, "drop")
    p = drop.rows["p"].editor.line
    p.setText("0.25")
    p.editingFinished.emit()
    assert document.node("drop").params["p"] == 0.25
    assert document.undo_stack.count() == 5


def test_input_shape_takes_sizes_and_named_dimensions(qtbot, document, inspector) -> None:
    page = page_of(inspector, "image")
    line = page.rows["shape"].editor.line
    assert line.text() == "3, 32, 32"
    line.setText("3, H, W")
    line.editingFinished.emit()
    assert document.node("image").params["shape"] == [3, "H", "W"]
    line.setText("[1, 28, 28]")
    line.editingFinished.emit()
    assert document.node("image").params["shape"] == [1, 28, 28]
    settle(document)
    assert "[N, 1, 28, 28]" in page.info.text()


def test_invalid_values_are_refused_with_the_reason(qtbot, document, inspector) -> None:
    page = page_of(inspector, "drop")
    p = page.rows["p"].editor.line
    p.setText("1.5")
    p.editingFinished.emit()
    assert "p" not in document.node("drop").params
    assert page.rows["p"].error.isVisible() and "1.5" in page.rows["p"].error.text()
    p.setText("lots")
    p.editingFinished.emit()
    assert "not a number" in page.rows["p"].error.text()
    conv = page_of(inspector, "conv")
    kernel = conv.rows["kernel_size"].editor.line
    kernel.setText("3, x")
    kernel.editingFinished.emit()
    assert conv.rows["kernel_size"].error.text() and document.node("conv").params["kernel_size"] == 3
    assert document.undo_stack.count() == 0
    spin = conv.rows["out_channels"].editor.spin
    assert spin.minimum() == CATALOGUE["Conv2d"].param("out_channels").min


def test_inferred_values_show_greyed_and_can_be_set_and_validated(qtbot, document, inspector) -> None:
    page = page_of(inspector, "fc")
    row = page.rows["in_features"]
    assert row.editor.spin.value() == 8 * 30 * 30
    assert row.tag.isVisible() and row.tag.text() == "inferred"
    assert row.editor.spin.font().italic() and not row.reset.isVisible()
    row.editor.spin.setValue(100)
    settle(document)
    assert document.node("fc").params["in_features"] == 100
    assert not row.tag.isVisible() and row.reset.isVisible()
    assert not row.editor.spin.font().italic()
    problems = " ".join(w.text() for w in page.findChildren(QLabel))
    assert "expects" in problems and "7200" in problems
    row.reset.click()
    settle(document)
    assert "in_features" not in document.node("fc").params
    assert row.editor.spin.value() == 7200 and row.tag.isVisible()


def test_help_text_is_shown_for_each_parameter(qtbot, document, inspector) -> None:
    page = page_of(inspector, "conv")
    for param in CATALOGUE["Conv2d"].params:
        if param.help:
            assert page.rows[param.name].help.text() == param.help
            assert not page.rows[param.name].help.isHidden()


def test_renaming_checks_legal_and_unique_ids(qtbot, document, inspector) -> None:
    page = page_of(inspector, "conv")
    for bad, reason in (("1conv", "not a legal id"), ("fc", "already used"), ("a b", "not a legal id")):
        page.id_edit.setText(bad)
        page.id_edit.editingFinished.emit()
        assert reason in page.id_error.text() and page.id_error.isVisible()
        assert document.has_node("conv") and page.id_edit.text() == "conv"
    page.id_edit.setText("features")
    page.id_edit.editingFinished.emit()
    assert document.has_node("features") and not page.id_error.isVisible()
    assert inspector.page.node_id == "features"
    assert document.graph.edges[0].target == "features"
    document.undo_stack.undo()
    assert document.has_node("conv") and inspector.node_ids == ["conv"]


def test_freezing_a_layer_is_one_undo_step_and_shows_on_the_page(qtbot, document, inspector) -> None:
    page = page_of(inspector, "conv")
    assert page.frozen_box.isVisibleTo(page) and not page.frozen_box.isChecked()
    trainable = document.analysis.trainable_params
    page.frozen_box.click()
    settle(document)
    assert document.node("conv").frozen and page.frozen_box.isChecked()
    assert document.analysis.trainable_params == trainable - document.analysis.param_counts["conv"]
    assert document.undo_stack.undoText() == "Freeze conv"
    document.undo_stack.undo()
    settle(document)
    assert not document.node("conv").frozen and not page.frozen_box.isChecked()
    assert not page_of(inspector, "drop").frozen_box.isVisibleTo(inspector.page)  # nothing to freeze


def test_label_edit_and_user_text_is_plain(qtbot, document, inspector) -> None:
    page = page_of(inspector, "conv")
    page.label_edit.setText("<b>features</b>")
    page.label_edit.editingFinished.emit()
    assert document.node("conv").label == "<b>features</b>"
    for label in inspector.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText


def test_missing_layer_page_keeps_and_shows_params(qtbot) -> None:
    graph = cnn()
    graph.nodes.append(Node(id="odd", type="FancyLayer", params={"alpha": [1, 2]}))
    document = GraphDocument(graph)
    panel = InspectorPanel(document)
    qtbot.addWidget(panel)
    panel.show_nodes(["odd"])
    texts = [label.text() for label in panel.page.findChildren(QLabel)]
    assert "Missing layer: FancyLayer" in texts
    assert any("alpha = [1, 2]" in t for t in texts)
    assert any("unknown layer type 'FancyLayer'" in t for t in texts)


def test_nothing_selected_edits_the_graph(qtbot, document, inspector) -> None:
    inspector.show_nodes([])
    name = inspector.page.findChild(QLineEdit, "graph_name")
    name.setText("small_cnn")
    name.editingFinished.emit()
    assert document.graph.name == "small_cnn"
    document.undo_stack.undo()
    assert document.graph.name == "cnn"


# ----- problems, code, history ------------------------------------------------------------------


def test_problems_lists_every_diagnostic_and_click_names_node(qtbot, document) -> None:
    document.set_param("fc", "in_features", 5)
    document.remove_items([], [("flat", "fc")])
    analysis = document.reanalyse()
    panel = ProblemsPanel()
    qtbot.addWidget(panel)
    panel.show_analysis(analysis)
    assert panel.topLevelItemCount() == len(analysis.diagnostics) >= 2
    texts = [panel.topLevelItem(i).text(2) for i in range(panel.topLevelItemCount())]
    assert {d.message for d in analysis.diagnostics} == set(texts)
    item = next(panel.topLevelItem(i) for i in range(panel.topLevelItemCount()) if panel.topLevelItem(i).text(1) == "fc")
    with qtbot.waitSignal(panel.node_activated) as activated:
        panel.itemClicked.emit(item, 2)
    assert activated.args == ["fc"]


def test_a_long_problem_wraps_to_show_all_of_itself(qtbot, document) -> None:
    """Its whole text shows in the row (more lines), and on hover."""
    from dlstudio.core.analysis import Analysis, Diagnostic

    long = "expects a tensor of rank 4 " * 12
    panel = ProblemsPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 300)
    panel.show()
    qtbot.waitExposed(panel)
    panel.show_analysis(Analysis(document.graph, document.catalogue, diagnostics=[
        Diagnostic("error", "conv", long.strip(), fix="Reshape first"),
        Diagnostic("warning", "drop", "unused")]))
    long_row, short_row = panel.topLevelItem(0), panel.topLevelItem(1)
    line = panel.fontMetrics().height()
    assert panel.visualItemRect(long_row).height() >= 3 * line
    assert panel.visualItemRect(short_row).height() < 2 * line
    assert panel.textElideMode() == Qt.TextElideMode.ElideNone
    assert long.strip() in long_row.toolTip(2)


def test_code_view_follows_edits_and_highlights_the_selected_node(qtbot, document) -> None:
    panel = CodePanel(document)
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.updated, timeout=10_000):
        panel.regenerate()
    text = panel.editor.toPlainText()
    assert "class Cnn(nn.Module):" in text and "nn.Conv2d(3, 8, 3)" in text
    panel.highlight(["conv"])
    lines = text.splitlines()
    lit = [lines[i] for i in panel.highlighted_lines()]
    assert any("self.conv = nn.Conv2d" in line for line in lit)
    assert any(line.strip().startswith("conv = self.conv(") for line in lit)
    assert not any("self.fc" in line for line in lit)
    with qtbot.waitSignal(panel.updated, timeout=10_000):
        document.set_param("conv", "out_channels", 4)
    assert "nn.Conv2d(3, 4, 3)" in panel.editor.toPlainText()
    assert any("self.conv = nn.Conv2d" in panel.editor.toPlainText().splitlines()[i]
               for i in panel.highlighted_lines())
    with qtbot.waitSignal(panel.updated, timeout=10_000):
        document.remove_items([], [("flat", "fc")])
    assert panel.editor.toPlainText().startswith("# The graph has")


def test_code_spans_cover_inputs_outputs_and_multiline_calls() -> None:
    from dlstudio.core.io import graph_to_json

    result = generate(graph_to_json(cnn()))
    lines = result.text.splitlines()
    for node_id in ("image", "conv", "drop", "flat", "fc"):
        assert result.spans.get(node_id), node_id
    first, count = result.spans["image"][0]
    assert "def forward(" in lines[first] and "image" in " ".join(lines[first:first + count])



@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.json")), ids=lambda p: p.stem)
def test_code_view_lights_exactly_the_lines_of_each_node_of_every_example(qtbot, path) -> None:
    document = GraphDocument(load_graph(path))
    panel = CodePanel(document)
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.updated, timeout=20_000):
        panel.regenerate()
    shown = panel.editor.toPlainText()
    expected = lines_by_node(shown, plan_module(analyze(document.graph)))
    for node in document.graph.nodes:
        panel.highlight([node.id])
        assert set(panel.highlighted_lines()) == expected[node.id], node.id
    document.deleteLater()


def test_history_lists_each_step(qtbot, document) -> None:
    view = HistoryPanel(document)
    qtbot.addWidget(view)
    document.set_param("conv", "out_channels", 4)
    document.set_label("fc", "head")
    assert view.model().rowCount() == 3  # "as opened" + two steps
    view.setCurrentIndex(view.model().index(0, 0))
    assert document.undo_stack.index() == 0


def test_every_catalogue_layer_gets_an_editor_for_every_parameter(qtbot) -> None:
    """The inspector is generated from the declarations: no layer is left without a page."""
    for spec in CATALOGUE.values():
        document = GraphDocument(Graph(nodes=[Node(id="node", type=spec.type)]))
        panel = InspectorPanel(document)
        page = page_of(panel, "node")
        assert set(page.rows) == {p.name for p in spec.params}, spec.type
        for name, row in page.rows.items():
            assert row.editor.focus_widget().isEnabled(), (spec.type, name)
        panel.deleteLater()
        document.deleteLater()


@pytest.mark.parametrize("how", ["click", "tab"])
def test_typing_into_a_focused_field_replaces_its_value(qtbot, document, inspector, how) -> None:
    """Input's shape shows 1; the user clicks (or tabs) into it and types 64: the shape is 64."""
    document.set_param("image", "shape", [1])
    inspector.show()
    page = page_of(inspector, "image")
    line = page.rows["shape"].editor.line
    assert line.text() == "1"
    if how == "click":
        qtbot.mouseClick(line, Qt.MouseButton.LeftButton, pos=line.rect().center())
    else:
        page.label_edit.setFocus()
        qtbot.waitUntil(page.label_edit.hasFocus)
        while not line.hasFocus():
            qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: line.selectedText() == "1")
    qtbot.keyClicks(line, "64")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    assert document.node("image").params["shape"] == [64]


def test_clicking_a_number_box_selects_its_number(qtbot, document, inspector) -> None:
    inspector.show()
    spin = page_of(inspector, "conv").rows["out_channels"].editor.spin
    qtbot.mouseClick(spin.lineEdit(), Qt.MouseButton.LeftButton, pos=spin.lineEdit().rect().center())
    qtbot.waitUntil(lambda: spin.lineEdit().selectedText() == "8")
    qtbot.keyClicks(spin, "16")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert document.node("conv").params["out_channels"] == 16


def test_a_code_view_bug_shows_one_plain_line_and_logs_the_details(qtbot, document, tmp_path, monkeypatch) -> None:
    from dlstudio.bugs import LOG_DIR_ENV, LOG_NAME
    from tests.hostile import assert_plain

    def planted(*args: object) -> None:
        raise KeyError("planted")

    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path))
    monkeypatch.setattr("dlstudio.ui.panels.code_view.generate", planted)
    panel = CodePanel(document)
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.updated, timeout=10_000):
        panel.regenerate()
    text = panel.editor.toPlainText()
    assert text.startswith("# Export failed: code view: internal error (details for a bug report in ")
    assert_plain(text)
    assert "KeyError: 'planted'" in (tmp_path / LOG_NAME).read_text()
