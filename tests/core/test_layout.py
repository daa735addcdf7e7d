"""Layered auto-layout: columns follow the data flow, nothing overlaps, ports line up."""

from __future__ import annotations

import time
from pathlib import Path

from dlstudio.core import layout
from dlstudio.core.catalogue import BUILTINS
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import load_graph
from dlstudio.core.layout import Box, estimate_box, layered_layout


def chain(*types: str) -> Graph:
    nodes = [Node(id=f"n{i}", type=t) for i, t in enumerate(types)]
    edges = [Edge(source=f"n{i}", target=f"n{i + 1}") for i in range(len(types) - 1)]
    return Graph(nodes=nodes, edges=edges)


def rects(graph: Graph, positions: dict) -> dict:
    return {n.id: (*positions[n.id], *_size(n.type)) for n in graph.nodes if n.id in positions}


def _size(type_name: str) -> tuple[float, float]:
    box = estimate_box(type_name, BUILTINS)
    return box.width, box.height


def overlaps(boxes: dict) -> list[tuple[str, str]]:
    items = list(boxes.items())
    found = []
    for i, (a, (ax, ay, aw, ah)) in enumerate(items):
        for b, (bx, by, bw, bh) in items[i + 1:]:
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                found.append((a, b))
    return found


def test_a_chain_is_one_straight_row_left_to_right():
    graph = chain("Input", "Linear", "ReLU", "Linear", "Output")
    positions = layered_layout(graph)
    xs = [positions[f"n{i}"][0] for i in range(5)]
    assert xs == sorted(xs) and len(set(xs)) == 5
    assert {positions[f"n{i}"][1] for i in range(5)} == {0.0}
    assert xs[1] - xs[0] == layout.WIDTH + layout.COLUMN_GAP


def test_branches_get_their_own_rows_and_merge_ports_line_up():
    graph = Graph(
        nodes=[Node(id="x", type="Input"), Node(id="a", type="Linear"), Node(id="b", type="ReLU"),
               Node(id="c", type="Tanh"), Node(id="add", type="Add"), Node(id="out", type="Output")],
        edges=[Edge(source="x", target="a"), Edge(source="a", target="b"), Edge(source="b", target="add.in0"),
               Edge(source="x", target="c"), Edge(source="c", target="add.in1"),
               Edge(source="add", target="out")],
    )
    positions = layered_layout(graph)
    assert not overlaps(rects(graph, positions))
    assert positions["x"][0] < positions["a"][0] < positions["b"][0] < positions["add"][0] < positions["out"][0]
    assert positions["a"][1] != positions["c"][1]
    box = estimate_box("Add", BUILTINS)
    add_y = positions["add"][1]
    assert positions["add"][1] + box.inputs["in0"] == positions["b"][1] + estimate_box("ReLU", BUILTINS).outputs["output"]
    assert positions["out"][1] + estimate_box("Output", BUILTINS).inputs["input"] == add_y + box.outputs["output"]


def test_sizes_from_the_canvas_are_respected():
    graph = Graph(nodes=[Node(id="x", type="Input"), Node(id="a", type="Linear"), Node(id="b", type="Linear")],
                  edges=[Edge(source="x", target="a"), Edge(source="x", target="b")])
    boxes = {"a": Box(400, 300, {"input": 50}, {"output": 50}), "b": Box(200, 70, {"input": 50}, {"output": 50})}
    positions = layered_layout(graph, boxes=boxes)
    top, bottom = sorted(("a", "b"), key=lambda n: positions[n][1])
    assert positions[bottom][1] >= positions[top][1] + boxes[top].height + layout.ROW_GAP - 10


def test_cycles_and_unknown_types_still_get_positions():
    graph = Graph(nodes=[Node(id="a", type="Linear"), Node(id="b", type="Mystery"), Node(id="c", type="ReLU")],
                  edges=[Edge(source="a", target="b"), Edge(source="b", target="c"), Edge(source="c", target="a"),
                         Edge(source="c", target="ghost")])
    positions = layered_layout(graph)
    assert set(positions) == {"a", "b", "c"}
    assert positions["a"][0] < positions["b"][0] < positions["c"][0]


def test_a_subset_is_laid_out_from_the_origin_given():
    graph = chain("Input", "Linear", "ReLU", "Output")
    positions = layered_layout(graph, ["n1", "n2"], origin=(500, 700))
    assert set(positions) == {"n1", "n2"}
    assert positions["n1"] == (500.0, 700.0)


def test_positions_are_on_the_grid_and_deterministic():
    graph = load_graph({"format": "dlstudio.graph", "version": 1, "nodes": [
        {"id": f"n{i}", "type": "Linear"} for i in range(30)], "edges": [
        {"source": f"n{i}", "target": f"n{j}"} for i in range(30) for j in (2 * i + 1, 2 * i + 2) if j < 30]})
    first = layered_layout(graph)
    assert first == layered_layout(graph)
    assert all(x % 10 == 0 and y % 10 == 0 for x, y in first.values())
    assert not overlaps(rects(graph, first))


def test_a_thousand_nodes_lay_out_quickly():
    graph = chain("Input", *["Linear", "ReLU"] * 500, "Output")
    start = time.perf_counter()
    positions = layered_layout(graph)
    assert len(positions) == 1002
    assert time.perf_counter() - start < 5.0


# ----- wrapped rows: how a deep network opens ---------------------------------------------------

def extent(graph: Graph, positions: dict) -> tuple[float, float]:
    boxes = rects(graph, positions).values()
    return max(x + w for x, _, w, _ in boxes), max(y + h for _, y, _, h in boxes)


def test_resnet18_wraps_into_a_column_of_blocks_with_branches_side_by_side():
    graph = load_graph(Path(__file__).parent / "data" / "resnet18_flat.json")
    positions = layered_layout(graph, wrap=layout.WRAP)
    width, height = extent(graph, positions)
    assert height > width and width <= layout.WRAP
    assert not overlaps(rects(graph, positions))
    main, shortcut = positions["layer2_0_conv1"], positions["layer2_0_down_conv"]
    assert main[0] == shortcut[0] and main[1] != shortcut[1]  # the same column, one above the other
    rows = {n: positions[n][1] for n in ("layer2_0_relu2", "layer2_1_conv1", "layer2_1_add")}
    assert max(rows.values()) - min(rows.values()) < 200  # a block's input, body and Add share a row
    assert positions["layer2_0_relu2"][0] == 0.0  # and the block's input starts it


def test_wrapping_keeps_a_short_graph_on_one_row_and_breaks_a_long_chain_into_rows():
    short = chain("Input", "Linear", "ReLU", "Output")
    positions = layered_layout(short, wrap=layout.WRAP)
    assert {y for _, y in positions.values()} == {0.0}
    assert [positions[f"n{i}"][0] for i in range(4)] == [i * (layout.WIDTH + layout.WRAP_COLUMN_GAP) for i in range(4)]
    long = chain("Input", *["Linear", "ReLU"] * 20, "Output")
    positions = layered_layout(long, wrap=layout.WRAP)
    width, height = extent(long, positions)
    assert width <= layout.WRAP and height > 4 * layout.ROW_BREAK
    assert not overlaps(rects(long, positions))
    assert positions["n0"] == (0.0, 0.0)
