"""The canvas, driven the way a user drives it: drops, drags, clicks and keys on the viewport."""

from __future__ import annotations

import warnings

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QGuiApplication, QWheelEvent
from PySide6.QtWidgets import QApplication, QGraphicsItem

from dlstudio.core.io import load_graph
from dlstudio.ui.canvas import LAYER_MIME, NODES_MIME, GraphView
from dlstudio.ui.canvas.port_item import PortState
from dlstudio.ui.document import GraphDocument, edge_key

LEFT = Qt.MouseButton.LeftButton

CHAIN = {
    "format": "dlstudio.graph", "version": 1, "name": "chain",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [16]}, "position": [0, 0]},
        {"id": "fc1", "type": "Linear", "params": {"out_features": 32}, "position": [300, 0]},
        {"id": "act", "type": "ReLU", "label": "<b>bold?</b>", "position": [600, 0]},
        {"id": "fc2", "type": "Linear", "params": {"out_features": 4}, "position": [900, 0]},
        {"id": "out", "type": "Output", "position": [1200, 0]},
    ],
    "edges": [
        {"source": "x", "target": "fc1"}, {"source": "fc1", "target": "act"},
        {"source": "act", "target": "fc2"}, {"source": "fc2", "target": "out"},
    ],
}


def make_view(qtbot, doc: GraphDocument) -> GraphView:
    view = GraphView(doc)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_zoom(0.7)
    view.centerOn(650, 40)
    return view


@pytest.fixture
def chain(qtbot):
    doc = GraphDocument(load_graph(CHAIN))
    return doc, make_view(qtbot, doc)


def port_point(view: GraphView, node_id: str, port: str, is_input: bool) -> QPoint:
    return view.mapFromScene(view.scene_.nodes[node_id].port_scene_pos(port, is_input))


def node_point(view: GraphView, node_id: str) -> QPoint:
    item = view.scene_.nodes[node_id]
    return view.mapFromScene(item.mapToScene(QPointF(item.width / 2, 12)))


def drag(qtbot, view: GraphView, start: QPoint, end: QPoint, button=LEFT) -> None:
    viewport = view.viewport()
    qtbot.mousePress(viewport, button, pos=start)
    for step in range(1, 5):
        qtbot.mouseMove(viewport, start + (end - start) * step / 4)
    qtbot.mouseRelease(viewport, button, pos=end)


def drop_layer(view: GraphView, type_name: str, point: QPoint) -> bool:
    """What a drag from the palette delivers: enter, move and drop events with the layer mime."""
    mime = QMimeData()
    mime.setData(LAYER_MIME, type_name.encode())
    action = Qt.DropAction.CopyAction
    with warnings.catch_warnings():  # PySide6 6.12 deprecates the QPoint form 6.11 requires
        warnings.simplefilter("ignore", DeprecationWarning)
        events = (QDragEnterEvent(point, action, mime, LEFT, Qt.KeyboardModifier.NoModifier),
                  QDragMoveEvent(point, action, mime, LEFT, Qt.KeyboardModifier.NoModifier))
    for event in events:
        QApplication.sendEvent(view.viewport(), event)
    drop = QDropEvent(QPointF(point), action, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), drop)
    return drop.isAccepted()


def settle(doc: GraphDocument) -> None:
    doc.reanalyse()
    QApplication.processEvents()


def test_build_a_graph_by_dropping_layers_and_dragging_ports(qtbot):
    doc = GraphDocument()
    view = make_view(qtbot, doc)
    view.set_zoom(1.0)
    view.centerOn(0, 0)
    for type_name, x in (("Input", 100), ("Linear", 450), ("Output", 800)):
        assert drop_layer(view, type_name, QPoint(x, 300))
    assert [n.type for n in doc.graph.nodes] == ["Input", "Linear", "Output"]
    assert view.selected_node_ids() == ["output_1"]
    doc.set_param("input_1", "shape", [8])
    drag(qtbot, view, port_point(view, "input_1", "output", False), port_point(view, "linear_1", "input", True))
    drag(qtbot, view, port_point(view, "linear_1", "output", False), port_point(view, "output_1", "input", True))
    assert [edge_key(e) for e in doc.graph.edges] == [("input_1", "linear_1"), ("linear_1", "output_1")]
    settle(doc)
    assert doc.analysis.ok
    assert view.scene_.nodes["linear_1"].view.outputs == {"output": "[N, 64]"}
    assert view.scene_.edges[("linear_1", "output_1")].label == "[N, 64]"
    assert view.scene_.nodes["linear_1"].view.params == "576 params"
    assert doc.undo_stack.count() == 6


def test_valid_targets_highlight_and_invalid_drops_say_why(chain, qtbot):
    doc, view = chain
    messages: list[str] = []
    view.status_message.connect(messages.append)
    viewport = view.viewport()
    qtbot.mousePress(viewport, LEFT, pos=port_point(view, "act", "output", False))
    qtbot.mouseMove(viewport, port_point(view, "fc1", "input", True))
    states = {n: item.port_states for n, item in view.scene_.nodes.items()}
    assert states["out"][("input", True)] is PortState.VALID
    assert ("input", True) not in states["fc1"]  # upstream of act: a cycle
    assert ("output", False) not in states["fc2"]  # outputs are not targets of an output
    qtbot.mouseRelease(viewport, LEFT, pos=port_point(view, "fc1", "input", True))
    assert messages[-1] == "Cannot connect: connecting act to fc1 would make a cycle"
    drag(qtbot, view, port_point(view, "act", "output", False), port_point(view, "fc2", "output", False))
    assert messages[-1].startswith("Cannot connect: both ends are outputs")
    assert doc.undo_stack.count() == 0
    assert all(not item.port_states for item in view.scene_.nodes.values())


def test_edge_end_detaches_and_reconnects(chain, qtbot):
    doc, view = chain
    drag(qtbot, view, port_point(view, "fc2", "input", True), port_point(view, "out", "input", True))
    assert ("act", "out") in [edge_key(e) for e in doc.graph.edges]
    assert ("fc2", "out") not in [edge_key(e) for e in doc.graph.edges]  # replaced in one step
    assert doc.undo_stack.count() == 1
    end = port_point(view, "out", "input", True)
    drag(qtbot, view, end, end + QPoint(0, 250))
    assert not any(e.target_node == "out" for e in doc.graph.edges)
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert [edge_key(e) for e in doc.graph.edges][-1] == ("fc2", "out")
    assert ("fc2", "out") in view.scene_.edges and view.scene_.edges[("fc2", "out")].isVisible()


def test_edit_params_then_undo_and_redo(chain):
    doc, view = chain
    item = view.scene_.nodes["fc2"]
    settle(doc)
    assert item.view.outputs["output"] == "[N, 4]"
    doc.set_param("fc2", "out_features", 10)
    settle(doc)
    assert item.view.outputs["output"] == "[N, 10]"
    assert view.scene_.edges[("fc2", "out")].label == "[N, 10]"
    doc.undo_stack.undo()
    settle(doc)
    assert item.view.outputs["output"] == "[N, 4]"
    doc.undo_stack.redo()
    settle(doc)
    assert item.view.outputs["output"] == "[N, 10]" and item.view.params == "330 params"
    doc.set_frozen("fc2", True)
    settle(doc)
    assert item.view.params == "330 params · frozen"


def test_shape_mismatch_turns_the_node_red_with_a_plain_text_tooltip(chain):
    doc, view = chain
    doc.set_param("fc2", "in_features", 31)
    settle(doc)
    item = view.scene_.nodes["fc2"]
    assert item.has_error and item._border()[0] == view.scene_.style.error
    message = "Linear 'fc2' expects last dimension 31 but gets 32 from 'act'"
    assert message in item.problem_text
    assert message.replace("'", "&#x27;") in item.toolTip()
    assert not view.scene_.nodes["fc1"].has_error
    act = view.scene_.nodes["act"]
    assert act.view.subtitle.startswith("<b>bold?</b>")
    assert "&lt;b&gt;bold?&lt;/b&gt;" in act.toolTip() and "<b>" not in act.toolTip()
    doc.undo_stack.undo()
    settle(doc)
    assert not item.has_error and item.toolTip().count("error") == 0


def test_dropping_on_an_edge_inserts_the_layer(chain):
    doc, view = chain
    edge = view.scene_.edges[("fc1", "act")]
    middle = view.mapFromScene(edge.path.pointAtPercent(0.5))
    assert drop_layer(view, "Dropout", middle)
    keys = [edge_key(e) for e in doc.graph.edges]
    assert ("fc1", "dropout_1") in keys and ("dropout_1", "act") in keys and ("fc1", "act") not in keys
    settle(doc)
    assert doc.analysis.ok
    doc.undo_stack.undo()
    assert ("fc1", "act") in view.scene_.edges and "dropout_1" not in view.scene_.nodes


def test_copy_paste_duplicate_and_delete_keep_ids_fresh(chain, qtbot):
    doc, view = chain
    view.select_nodes(["fc1", "act"])
    view.copy_selection()
    assert QGuiApplication.clipboard().mimeData().hasFormat(NODES_MIME)
    view.paste()
    assert view.selected_node_ids() == ["fc1_1", "act_1"]
    assert ("fc1_1", "act_1") in view.scene_.edges
    view.duplicate_selection()
    assert view.selected_node_ids() == ["fc1_2", "act_2"]
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert "fc1_2" not in view.scene_.nodes and not doc.has_node("act_2")
    doc.undo_stack.undo()
    assert "fc1_2" in view.scene_.nodes and ("fc1_2", "act_2") in view.scene_.edges


def test_dragging_a_node_snaps_and_is_one_undo_step(chain, qtbot):
    doc, view = chain
    start = node_point(view, "fc2")
    drag(qtbot, view, start, start + QPoint(37, 71))
    x, y = doc.node("fc2").position
    assert (x, y) != (900.0, 0.0) and x % 10 == 0 and y % 10 == 0
    assert doc.undo_stack.count() == 1 and doc.undo_stack.undoText() == "Move fc2"
    item_pos = view.scene_.nodes["fc2"].pos()
    assert (item_pos.x(), item_pos.y()) == (x, y)
    edge = view.scene_.edges[("fc2", "out")]
    assert edge.start == view.scene_.nodes["fc2"].port_scene_pos("output", False)
    doc.undo_stack.undo()
    assert view.scene_.nodes["fc2"].pos() == QPointF(900, 0)


def test_dragged_nodes_snap_and_pull_their_edges_while_the_mouse_moves(chain, qtbot):
    doc, view = chain
    view.select_nodes(["act", "fc2"])
    scene, viewport = view.scene_, view.viewport()
    assert scene.nodes["fc2"].zValue() > scene.nodes["fc1"].zValue()  # selected: drawn on top
    start = node_point(view, "fc2")
    qtbot.mousePress(viewport, LEFT, pos=start)
    qtbot.mouseMove(viewport, start + QPoint(20, 10))
    qtbot.mouseMove(viewport, start + QPoint(43, 67))
    for node_id in ("act", "fc2"):  # both selected nodes move, on the grid, before the release
        pos = scene.nodes[node_id].pos()
        assert pos.x() % 10 == 0 and pos.y() % 10 == 0
        assert (pos.x(), pos.y()) != tuple(doc.node(node_id).position)
    assert scene.edges[("fc2", "out")].start == scene.nodes["fc2"].port_scene_pos("output", False)
    assert scene.edges[("fc1", "act")].end == scene.nodes["act"].port_scene_pos("input", True)
    qtbot.mouseRelease(viewport, LEFT, pos=start + QPoint(43, 67))
    assert doc.undo_stack.count() == 1
    view.select_nodes(["fc1"])
    assert scene.nodes["fc2"].zValue() == 0.0 and scene.nodes["fc1"].zValue() == 1.0


def test_rubber_band_selects_and_reports_ids(chain, qtbot):
    doc, view = chain
    reported: list[list[str]] = []
    view.selection_changed.connect(reported.append)
    top_left = view.mapFromScene(QPointF(280, -60))
    drag(qtbot, view, top_left, view.mapFromScene(QPointF(880, 120)))
    assert view.selected_node_ids() == ["fc1", "act"]
    assert reported[-1] == ["fc1", "act"]
    assert doc.undo_stack.count() == 0


def test_quick_add_filters_and_places_with_enter(chain, qtbot):
    doc, view = chain
    view.show_quick_add(QPointF(600, 400))
    popup = view._quick_add
    assert popup.isVisible()
    qtbot.keyClicks(popup.search, "batchnorm1")
    assert popup.current_type() == "BatchNorm1d"
    qtbot.keyClick(popup.search, Qt.Key.Key_Return)
    assert not popup.isVisible()
    node = doc.graph.nodes[-1]
    assert node.type == "BatchNorm1d" and view.selected_node_ids() == [node.id]
    assert abs(node.position[0] + view.scene_.nodes[node.id].width / 2 - 600) <= 20


@pytest.mark.parametrize(("query", "first"), [("relu", "ReLU"), ("linear", "Linear")])
def test_quick_add_lists_the_exact_name_first_and_enter_adds_it(chain, qtbot, query, first):
    doc, view = chain
    view.show_quick_add(QPointF(600, 400))
    popup = view._quick_add
    qtbot.keyClicks(popup.search, query)
    listed = [popup.list.topLevelItem(i).text(0) for i in range(popup.list.topLevelItemCount())]
    assert listed[0] == first and popup.current_type() == first
    description_only = next(i for i, name in enumerate(listed) if query not in name.lower())
    assert all(query in name.lower() for name in listed[:description_only])
    qtbot.keyClick(popup.search, Qt.Key.Key_Return)
    assert doc.graph.nodes[-1].type == first


def test_the_output_node_offers_no_output_port(chain, qtbot):
    """Its shape shows, but there is no port disc to draw or to start a wire from."""
    doc, view = chain
    out = view.scene_.nodes["out"]
    assert out.ports() == [("input", True)] and out.view.outputs == {"output": "[N, 4]"}
    right_edge = out.port_scene_pos("output", False)
    assert out.port_at(right_edge) is None
    drag(qtbot, view, view.mapFromScene(right_edge), port_point(view, "fc1", "input", True))
    assert ("out", "fc1") not in {edge_key(e) for e in doc.graph.edges}
    assert ("output", False) in view.scene_.nodes["fc2"].ports()


def test_an_edge_a_file_draws_from_an_output_keeps_its_port(qtbot):
    graph = load_graph({**CHAIN, "nodes": [*CHAIN["nodes"], {"id": "tap", "type": "Identity",
                                                             "position": [1500, 0]},
                                           {"id": "out2", "type": "Output", "position": [1800, 0]}],
                        "edges": [*CHAIN["edges"], {"source": "out", "target": "tap"},
                                  {"source": "tap", "target": "out2"}]})
    view = make_view(qtbot, GraphDocument(graph))
    assert ("output", False) in view.scene_.nodes["out"].ports()
    assert ("output", False) not in view.scene_.nodes["out2"].ports()


def test_tab_and_double_click_open_quick_add(chain, qtbot):
    doc, view = chain
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert view._quick_add is not None and view._quick_add.isVisible()
    view._quick_add.close()
    qtbot.mouseDClick(view.viewport(), LEFT, pos=view.mapFromScene(QPointF(600, 500)))
    assert view._quick_add.isVisible()
    view._quick_add.close()


def test_pan_zoom_and_fit(chain, qtbot):
    doc, view = chain
    before = view.mapToScene(view.viewport().rect().center())
    drag(qtbot, view, QPoint(500, 300), QPoint(400, 250), Qt.MouseButton.MiddleButton)
    after = view.mapToScene(view.viewport().rect().center())
    assert after.x() - before.x() == pytest.approx(100 / view.zoom(), abs=2)
    view.set_zoom(1.0)
    view.fit_all()
    rect = view.mapFromScene(view.scene_.itemsBoundingRect()).boundingRect()
    assert view.viewport().rect().contains(rect)
    assert doc.undo_stack.count() == 0


def test_zoomed_out_overview_still_selects(chain, qtbot):
    doc, view = chain
    view.set_zoom(0.1)
    assert view.scene_.overview
    assert view.scene_.nodes["fc1"].flags() & QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
    image = view.grab().toImage()
    centre = view.mapFromScene(view.scene_.nodes["fc1"].sceneBoundingRect().center())
    assert image.pixelColor(centre) != view.scene_.style.background
    qtbot.mouseClick(view.viewport(), LEFT, pos=centre)
    assert view.selected_node_ids() == ["fc1"]
    view.set_zoom(1.0)
    assert not view.scene_.overview


def test_file_without_positions_is_laid_out_without_becoming_modified(qtbot):
    data = {**CHAIN, "nodes": [{k: v for k, v in n.items() if k != "position"} for n in CHAIN["nodes"]]}
    doc = GraphDocument(load_graph(data))
    view = make_view(qtbot, doc)
    xs = [doc.node(n).position[0] for n in ("x", "fc1", "act", "fc2", "out")]
    assert xs == sorted(xs) and len(set(xs)) == 5 and not doc.modified
    rects = [item.sceneBoundingRect() for item in view.scene_.nodes.values()]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])


def test_missing_layer_types_show_as_placeholders_with_their_edges(qtbot):
    data = {**CHAIN, "nodes": [*CHAIN["nodes"][:2], {"id": "act", "type": "FancyAct", "params": {"k": 1},
                                                      "position": [600, 0]}, *CHAIN["nodes"][3:]]}
    doc = GraphDocument(load_graph(data))
    view = make_view(qtbot, doc)
    item = view.scene_.nodes["act"]
    assert item.view.missing and item.has_error and "missing layer" in item.view.subtitle
    assert ("fc1", "act") in view.scene_.edges and ("act", "fc2") in view.scene_.edges


def test_indicator_and_warning_api(chain):
    doc, view = chain
    view.set_node_indicator("fc1", "loss 0.25")
    view.set_node_warning("fc1", "gradient <exploding>")
    item = view.scene_.nodes["fc1"]
    assert item.indicator == "loss 0.25"
    assert "gradient &lt;exploding&gt;" in item.toolTip()
    view.set_node_warning("fc1", None)
    assert "exploding" not in item.toolTip()


def test_clicking_an_edge_selects_it_and_delete_disconnects(chain, qtbot):
    doc, view = chain
    edge = view.scene_.edges[("fc1", "act")]
    qtbot.mouseClick(view.viewport(), LEFT, pos=view.mapFromScene(edge.path.pointAtPercent(0.3)))
    assert edge.isSelected() and view.selected_node_ids() == []
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert ("fc1", "act") not in [edge_key(e) for e in doc.graph.edges]
    assert ("fc1", "act") not in view.scene_.edges and doc.has_node("fc1")
    doc.undo_stack.undo()
    assert ("fc1", "act") in view.scene_.edges


def test_space_drag_pans_without_selecting_and_the_wheel_zooms_at_the_cursor(chain, qtbot):
    doc, view = chain
    before = view.mapToScene(view.viewport().rect().center())
    qtbot.keyPress(view, Qt.Key.Key_Space)
    drag(qtbot, view, node_point(view, "act"), node_point(view, "act") + QPoint(-120, 0))
    qtbot.keyRelease(view, Qt.Key.Key_Space)
    after = view.mapToScene(view.viewport().rect().center())
    assert after.x() - before.x() == pytest.approx(120 / view.zoom(), abs=2)
    assert view.selected_node_ids() == [] and doc.undo_stack.count() == 0
    cursor = node_point(view, "fc2")
    under = view.mapToScene(cursor)
    zoom = view.zoom()
    wheel = QWheelEvent(QPointF(cursor), QPointF(view.viewport().mapToGlobal(cursor)), QPoint(0, 0),
                        QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom() > zoom * 1.3
    assert (view.mapToScene(cursor) - under).manhattanLength() < 3 / view.zoom()


def test_escape_cancels_a_connection_drag(chain, qtbot):
    doc, view = chain
    viewport = view.viewport()
    qtbot.mousePress(viewport, LEFT, pos=port_point(view, "x", "output", False))
    qtbot.mouseMove(viewport, QPoint(500, 500))
    assert any(item.port_states for item in view.scene_.nodes.values())
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    qtbot.mouseRelease(viewport, LEFT, pos=port_point(view, "fc2", "input", True))
    assert doc.undo_stack.count() == 0
    assert all(not item.port_states for item in view.scene_.nodes.values())


def test_split_shows_one_output_port_per_section_and_connects_to_the_last(qtbot):
    data = {**CHAIN, "nodes": [*CHAIN["nodes"][:2], {"id": "split", "type": "Split", "position": [400, 0],
                                                      "params": {"split_size_or_sections": [8, 8, 16]}}]}
    data["edges"] = [{"source": "x", "target": "fc1"}, {"source": "fc1", "target": "split"}]
    doc = GraphDocument(load_graph(data))
    view = make_view(qtbot, doc)
    assert view.scene_.nodes["split"].view.ports.outputs == ("out0", "out1", "out2")
    doc.add_node("Output", (700.0, 0.0))
    out_id = [n.id for n in doc.graph.nodes if n.type == "Output"][0]
    doc.connect("split.out2", out_id)
    assert doc.find_edge(("split.out2", out_id)) is not None


def test_every_layer_family_has_its_own_colour_and_unknown_types_stay_grey(qtbot):
    from dlstudio.core.catalogue import families
    from dlstudio.ui.canvas.style import canvas_style

    style = canvas_style()
    colours = {name: style.family(name) for name in families()}
    assert all(colour.saturation() > 0 for colour in colours.values())
    assert len({colour.hue() for colour in colours.values()}) == len(colours)
    assert style.family("").saturation() == 0
    assert style.family("Some family") == style.family("Some family")
    assert style.family("Some family").saturation() > 0


def _skip_over(between: int) -> GraphDocument:
    """x feeds an Add far to its right, over ``between`` ReLUs in a line."""
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [4]}, "position": [0, 0]}]
    edges, previous = [], "x"
    for index in range(between):
        nodes.append({"id": f"r{index}", "type": "ReLU", "position": [300 * (index + 1), 0]})
        edges.append({"source": previous, "target": f"r{index}"})
        previous = f"r{index}"
    nodes += [{"id": "add", "type": "Add", "position": [300 * (between + 1), 0]},
              {"id": "out", "type": "Output", "position": [300 * (between + 2), 0]}]
    edges += [{"source": previous, "target": "add.in0"}, {"source": "x", "target": "add.in1"},
              {"source": "add", "target": "out"}]
    return GraphDocument(load_graph({"format": "dlstudio.graph", "version": 1, "name": "skip",
                                     "nodes": nodes, "edges": edges}))


def test_a_long_edge_runs_around_the_nodes_in_its_way_and_follows_a_move(qtbot):
    from dlstudio.ui.canvas.scene import GraphScene

    scene = GraphScene(_skip_over(3))
    skip = scene.edges[("x", "add.in1")]
    assert skip.channel is not None  # clear of the three ReLUs
    blockers = [scene.nodes[f"r{i}"] for i in range(3)]
    assert skip.channel > max(n.y() + n.height for n in blockers) or skip.channel < min(n.y() for n in blockers)
    assert scene.edges[("r2", "add.in0")].channel is None  # a short edge runs straight
    scene.document.move_nodes({**{f"r{i}": (300.0 * (i + 1), 600.0) for i in range(3)}, "x": (0.0, 10.0)})
    assert skip.channel is None  # the way is clear now (the edge is placed again when an end moves)


def test_an_edge_routes_around_an_unrelated_node_moved_onto_it_and_straightens_when_it_leaves(qtbot):
    from dlstudio.ui.canvas.scene import GraphScene

    scene = GraphScene(_skip_over(3))
    scene.document.move_nodes({f"r{i}": (300.0 * (i + 1), 600.0) for i in range(3)})
    skip = scene.edges[("x", "add.in1")]
    assert skip.channel is None  # the way is clear
    scene.document.move_nodes({"r1": (600.0, 0.0)}, merge=False)  # back under the edge; not one of its ends
    r1 = scene.nodes["r1"]
    assert skip.channel is not None
    assert skip.channel > r1.y() + r1.height or skip.channel < r1.y()
    assert not skip.shape().intersects(r1.sceneBoundingRect().adjusted(14, 26, -14, -14))  # drawn clear of it
    scene.document.move_nodes({"r1": (600.0, 600.0)}, merge=False)
    assert skip.channel is None  # straight again
    scene.document.undo_stack.undo()
    assert skip.channel is not None  # undo moves it back under the edge
    scene.document.remove_items(["r1"])
    assert skip.channel is None  # and straight once it is removed


def test_an_edge_over_more_nodes_than_the_route_limit_runs_straight(qtbot):
    from dlstudio.ui.canvas.scene import ROUTE_LIMIT, GraphScene

    routed, crowded = GraphScene(_skip_over(ROUTE_LIMIT)), GraphScene(_skip_over(ROUTE_LIMIT + 1))
    assert routed.edges[("x", "add.in1")].channel is not None
    assert crowded.edges[("x", "add.in1")].channel is None
