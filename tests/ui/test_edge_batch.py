"""A big graph's edges between the overview and the detailed zoom: stroked together by the
scene, except the ones that stand out (selected, hovered, in error), which draw themselves."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsItem

from dlstudio.core.io import load_graph
from dlstudio.ui.canvas import GraphView
from dlstudio.ui.canvas import scene as scene_module
from dlstudio.ui.canvas import style as st
from dlstudio.ui.document import GraphDocument

NO_CONTENTS = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
MID_ZOOM = (st.BLOCK_LOD + st.DETAIL_LOD) / 2


def _fan_out(count: int) -> dict:
    """x feeds each of ``count`` ReLUs in a column, which all feed a Concat."""
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [4]}, "position": [0, 0]}]
    edges = []
    for index in range(count):
        nodes.append({"id": f"r{index}", "type": "ReLU", "position": [400, 90 * index]})
        edges += [{"source": "x", "target": f"r{index}"}, {"source": f"r{index}", "target": f"cat.in{index}"}]
    nodes += [{"id": "cat", "type": "Concat", "position": [800, 0]},
              {"id": "out", "type": "Output", "position": [1100, 0]}]
    edges.append({"source": "cat", "target": "out"})
    return {"format": "dlstudio.graph", "version": 1, "name": "fan", "nodes": nodes, "edges": edges}


@pytest.fixture
def view(qtbot, monkeypatch) -> GraphView:
    monkeypatch.setattr(scene_module, "BATCH_EDGES", 10)
    monkeypatch.setattr("dlstudio.ui.canvas.view.BATCH_EDGES", 10)
    graph_view = GraphView(GraphDocument(load_graph(_fan_out(8))))
    qtbot.addWidget(graph_view)
    graph_view.resize(900, 700)
    graph_view.show()
    qtbot.waitExposed(graph_view)
    graph_view.set_zoom(MID_ZOOM)
    graph_view.centerOn(500, 300)
    return graph_view


def _drawn(view: GraphView) -> list[tuple[int, int]]:
    """The pixels that are not background, on the canvas between x and the ReLUs."""
    image = view.grab().toImage()
    background = view.scene_.style.background.rgb()
    left = view.mapFromScene(QPointF(120, 0)).x()
    right = view.mapFromScene(QPointF(380, 0)).x()
    return [(x, y) for x in range(left, right, 2) for y in range(0, image.height(), 2)
            if image.pixelColor(x, y).rgb() != background and _not_grid(image.pixelColor(x, y), view)]


def _not_grid(colour, view) -> bool:
    style = view.scene_.style
    return colour.rgb() not in (style.grid_minor.rgb(), style.grid_major.rgb())


def test_mid_zoom_strokes_a_big_graphs_edges_together_and_they_look_the_same(view):
    scene = view.scene_
    assert scene.edge_batch and not scene.overview
    assert all(edge.flags() & NO_CONTENTS for edge in scene.edges.values())
    batched = _drawn(view)
    view.set_zoom(st.DETAIL_LOD + 0.05)  # one paint call each again
    assert not scene.edge_batch
    assert not any(edge.flags() & NO_CONTENTS for edge in scene.edges.values())
    view.set_zoom(MID_ZOOM)
    view.centerOn(500, 300)
    assert scene.edge_batch
    scene.set_edge_batch(False)
    one_by_one = _drawn(view)
    assert len(batched) > 200  # eight curves from x cross the band
    same = set(batched) & set(one_by_one)
    assert len(same) >= 0.9 * max(len(batched), len(one_by_one))


def test_a_batched_edge_that_stands_out_draws_itself_until_it_no_longer_does(view, qtbot):
    scene = view.scene_
    edge = scene.edges[("x", "r3")]
    edge.setSelected(True)
    assert not edge.flags() & NO_CONTENTS
    scene.clearSelection()
    assert edge.flags() & NO_CONTENTS
    edge.hoverEnterEvent(None)
    assert not edge.flags() & NO_CONTENTS
    edge.hoverLeaveEvent(None)
    assert edge.flags() & NO_CONTENTS
    edge.set_label(edge.label, error=True)
    assert not edge.flags() & NO_CONTENTS
    view.set_zoom(0.1)  # the overview draws everything itself
    assert scene.overview and not scene.edge_batch and edge.flags() & NO_CONTENTS
    view.set_zoom(1.0)
    assert not edge.flags() & NO_CONTENTS


def test_the_batch_follows_a_moved_node(view, qtbot):
    scene = view.scene_
    before = _drawn(view)
    scene.document.move_nodes({"x": (0.0, 600.0)})
    assert scene._batch is None  # gathered again on the next paint
    after = _drawn(view)
    assert after != before
    curves = scene._batch[1]
    assert curves.elementAt(0).y == pytest.approx(scene.nodes["x"].port_scene_pos("output", False).y())


def test_a_small_graph_paints_its_edges_one_by_one(qtbot):
    graph_view = GraphView(GraphDocument(load_graph(_fan_out(3))))
    qtbot.addWidget(graph_view)
    graph_view.show()
    graph_view.set_zoom(MID_ZOOM)
    assert not graph_view.scene_.edge_batch
