"""Group into block, ungroup and make unique: each returns a new graph that analyses to the
same model (parameters and outputs), and leaves its argument as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlstudio.core.analysis import analyze
from dlstudio.core.block_edits import (
    BlockEditError,
    block_as_graph,
    block_uses,
    group_into_block,
    make_unique,
    ungroup,
    with_block_graph,
)
from dlstudio.core.catalogue import BUILTINS
from dlstudio.core.graph import Block, Edge, Graph, Node
from dlstudio.core.io import graph_to_json, load_graph
from dlstudio.core.layout import estimate_box

BLOCKY = Path(__file__).parent / "data" / "blocky.json"
#: The nodes of copy 0 of ``h`` once ``blocky.json`` is ungrouped.
FIRST_COPY = ["h_0_fc1", "h_0_act", "h_0_fc2", "h_0_add"]


def blocky() -> Graph:
    return load_graph(BLOCKY)


def same_model(a: Graph, b: Graph) -> None:
    first, second = analyze(a), analyze(b)
    assert first.ok and second.ok, [str(d) for d in first.errors + second.errors]
    assert first.total_params == second.total_params
    assert first.outputs() == second.outputs()


def chain(*types: str) -> Graph:
    """Input -> the layers -> Output, laid out top to bottom."""
    nodes = [Node(id="x", type="Input", params={"shape": [8]}, position=(0, 0))]
    nodes += [Node(id=f"n{i}", type=t, position=(0, 100 * (i + 1))) for i, t in enumerate(types)]
    nodes.append(Node(id="y", type="Output", position=(0, 100 * (len(types) + 1))))
    ids = [n.id for n in nodes]
    return Graph(nodes=nodes, edges=[Edge(source=a, target=b) for a, b in zip(ids, ids[1:], strict=False)])


def test_ungroup_inlines_every_copy_with_its_parameters() -> None:
    graph = blocky()
    flat = ungroup(graph, "h")
    assert flat.blocks is None and flat.needed_version == 2  # the head's tie stays
    assert [flat.node(f"h_{i}_fc1").params["out_features"] for i in range(3)] == [128, 64, 64]
    assert flat.node("h_2_fc2").params == {"out_features": 32}
    assert {(e.source, e.target) for e in flat.edges} >= {
        ("wte", "h_0_fc1"), ("wte", "h_0_add.in1"), ("h_0_add", "h_1_fc1"), ("h_2_add", "head")}
    same_model(graph, flat)
    assert graph_to_json(graph) == graph_to_json(blocky())


def test_ungroup_keeps_a_block_still_used_and_refuses_a_plain_node() -> None:
    graph = blocky()
    graph.nodes.append(Node(id="h2", type="Residual"))
    assert "Residual" in (ungroup(graph, "h").blocks or {})
    with pytest.raises(BlockEditError, match="not a block"):
        ungroup(graph, "wte")


def test_group_makes_a_block_with_a_port_per_outside_source_and_read_port() -> None:
    flat = ungroup(blocky(), "h")
    grouped = group_into_block(flat, FIRST_COPY, "Res")
    block = grouped.blocks["Res"]
    assert [n.id for n in block.nodes if n.type in ("Input", "Output")] == ["x", "y"]
    assert {(e.source, e.target) for e in block.edges} >= {("x", "h_0_fc1"), ("x", "h_0_add.in1"),
                                                           ("h_0_add", "y")}
    use = grouped.nodes_of_type("Res")[0]
    assert use.id == "res"
    assert {(e.source, e.target) for e in grouped.edges} >= {
        ("wte", "res.x"), ("res.y", "h_1_fc1"), ("res.y", "h_1_add.in1")}
    assert not set(FIRST_COPY) & set(grouped.node_ids())
    same_model(flat, grouped)


def test_group_places_the_block_node_at_the_selection_centre_keeping_relative_positions() -> None:
    graph = chain("Linear", "ReLU", "Linear")
    graph.node("n0").params["out_features"] = 4
    graph.node("n2").params["out_features"] = 2
    grouped = group_into_block(graph, ["n0", "n1", "n2"], "MLP")
    assert grouped.node("mlp").position == (0, 200)
    inner = {n.id: n.position for n in grouped.blocks["MLP"].nodes}
    assert inner["n1"][1] - inner["n0"][1] == 100 and inner["n2"][1] - inner["n1"][1] == 100
    assert [n.id for n in grouped.nodes] == ["x", "mlp", "y"]
    same_model(graph, grouped)


def test_group_gives_each_distinct_source_an_input_and_each_read_port_an_output() -> None:
    graph = Graph(nodes=[
        Node(id="a", type="Input", params={"shape": [4]}), Node(id="b", type="Input", params={"shape": [4]}),
        Node(id="add", type="Add"), Node(id="mul", type="Multiply"),
        Node(id="o1", type="Output"), Node(id="o2", type="Output")], edges=[
        Edge(source="a", target="add.in0"), Edge(source="b", target="add.in1"),
        Edge(source="a", target="mul.in0"), Edge(source="add", target="mul.in1"),
        Edge(source="add", target="o1"), Edge(source="mul", target="o2")])
    grouped = group_into_block(graph, ["add", "mul"], "Pair")
    ports = [(n.id, n.type) for n in grouped.blocks["Pair"].nodes if n.type in ("Input", "Output")]
    assert ports == [("x_a", "Input"), ("x_b", "Input"), ("y_add", "Output"), ("y_mul", "Output")]
    assert {(e.source, e.target) for e in grouped.edges} == {
        ("a", "pair.x_a"), ("b", "pair.x_b"), ("pair.y_add", "o1"), ("pair.y_mul", "o2")}
    same_model(graph, grouped)


@pytest.mark.parametrize(("ids", "name", "words"), [
    ([], "B", "select the nodes"),
    (["x", "n0"], "B", "Input or Output"),
    (["n0"], "Linear", "already a layer type"),
    (["n0"], "2bad", "not a legal block name"),
])
def test_group_refuses_what_cannot_be_a_block(ids: list[str], name: str, words: str) -> None:
    with pytest.raises(BlockEditError, match=words):
        group_into_block(chain("Linear"), ids, name)


def test_group_refuses_a_tie_across_the_boundary() -> None:
    with pytest.raises(BlockEditError, match="across the block's boundary"):
        group_into_block(blocky(), ["head"], "Head")


def test_group_then_ungroup_gives_back_the_same_model() -> None:
    graph = chain("Linear", "GELU", "Linear")
    graph.node("n0").params["out_features"] = 16
    graph.node("n2").params["out_features"] = 3
    back = ungroup(group_into_block(graph, ["n0", "n1", "n2"], "Body"), "body")
    assert back.blocks is None
    assert [n.type for n in back.nodes] == ["Input", "Linear", "GELU", "Linear", "Output"]
    same_model(graph, back)


def two_uses() -> Graph:
    """``blocky.json`` with a second use of Residual, ``h2``, after ``h``."""
    graph = blocky()
    graph.nodes.insert(3, Node(id="h2", type="Residual"))
    graph.edges[2:3] = [Edge(source="h", target="h2"), Edge(source="h2", target="head")]
    return graph


def test_make_unique_detaches_one_use() -> None:
    graph = two_uses()
    unique = make_unique(graph, "h2")
    assert unique.node("h2").type == "Residual_2" and unique.node("h").type == "Residual"
    assert block_uses(unique, "Residual") == [(None, "h")]
    unique.blocks["Residual_2"].node("act").type = "ReLU"  # editing the copy leaves "h" alone
    assert unique.blocks["Residual"].node("act").type == "GELU"
    same_model(graph, make_unique(graph, "h2"))


def test_editing_a_block_definition_changes_every_use() -> None:
    graph = two_uses()
    before = analyze(graph)
    graph.blocks["Residual"].node("fc2").params["bias"] = False
    after = analyze(graph)
    assert after.ok
    assert before.param_counts["h"] - after.param_counts["h"] == 3 * 32
    assert before.param_counts["h2"] - after.param_counts["h2"] == 32


def nested() -> Graph:
    """A block ``Outer`` whose parameter ``width`` reaches the Residual it uses."""
    graph = blocky()
    graph.blocks["Outer"] = Block(params={"width": 32}, nodes=[
        Node(id="i", type="Input"), Node(id="r", type="Residual", params={"width": "$width"}),
        Node(id="o", type="Output")], edges=[Edge(source="i", target="r"), Edge(source="r", target="o")])
    graph.node("h").type = "Outer"
    graph.node("h").params = {}
    return graph


def test_ungroup_inside_a_block_keeps_the_outer_block_parameters_as_expressions() -> None:
    graph = nested()
    inner = ungroup(block_as_graph(graph, "Outer"), "r")
    assert inner.node("r_fc1").params == {"out_features": "$width * 2"}
    assert inner.node("r_fc2").params == {"out_features": "$width"}
    edited = with_block_graph(graph, "Outer", inner)
    assert set(edited.blocks) == {"Outer"}  # Residual was used only there
    same_model(graph, edited)


def test_group_inside_a_block() -> None:
    graph = blocky()
    inner = group_into_block(block_as_graph(graph, "Residual"), ["fc1", "act"], "Up")
    edited = with_block_graph(graph, "Residual", inner)
    assert set(edited.blocks) == {"Residual", "Up"}
    assert [n.type for n in edited.blocks["Residual"].nodes].count("Up") == 1
    analysis = analyze(edited)
    # the grouped Linear's "$width * scale" names parameters Up does not have
    assert not analysis.ok and "unknown name 'width'" in analysis.errors[0].message


def test_ungroup_lays_the_copies_side_by_side_and_moves_what_was_right_of_the_node() -> None:
    graph = blocky()
    for index, node in enumerate(graph.nodes):
        node.position = (300.0 * index, 0.0)
    for index, node in enumerate(graph.blocks["Residual"].nodes):
        node.position = (250.0 * index, 40.0 * (node.id == "add"))
    flat = ungroup(graph, "h")
    boxes = {n.id: (n.position[0], n.position[1], n.position[0] + estimate_box(n.type, BUILTINS).width,
                    n.position[1] + estimate_box(n.type, BUILTINS).height) for n in flat.nodes}
    ids = sorted(boxes)
    overlapping = [(a, b) for a in ids for b in ids if a < b and boxes[a][0] < boxes[b][2]
                   and boxes[b][0] < boxes[a][2] and boxes[a][1] < boxes[b][3] and boxes[b][1] < boxes[a][3]]
    assert overlapping == []
    assert flat.node("h_0_fc1").position == graph.node("h").position  # the first copy takes its place
    assert boxes["head"][0] > max(boxes[f"h_2_{n}"][2] for n in ("fc1", "act", "fc2", "add"))
