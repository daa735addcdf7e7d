"""NodeIndex finds nodes by id in constant time and follows every edit of the node list."""

from __future__ import annotations

from dlstudio.core.graph import Graph, Node, NodeIndex


def graph_of(*ids: str) -> Graph:
    return Graph(nodes=[Node(id=node_id, type="ReLU") for node_id in ids])


def test_finds_each_node_and_none_for_an_unknown_id():
    graph = graph_of("a", "b", "c")
    index = NodeIndex(graph)
    assert [index.get(n) for n in ("a", "b", "c")] == graph.nodes
    assert index.get("d") is None


def test_follows_inserts_removals_and_renames():
    graph = graph_of("a", "b", "c")
    index = NodeIndex(graph)
    assert index.get("c") is graph.nodes[2]
    graph.nodes.insert(0, Node(id="z", type="ReLU"))
    assert index.get("c") is graph.nodes[3] and index.get("z") is graph.nodes[0]
    removed = graph.nodes.pop(1)
    assert index.get(removed.id) is None and index.get("b") is graph.nodes[1]
    graph.nodes[1].id = "renamed"
    assert index.get("b") is None and index.get("renamed") is graph.nodes[1]
