"""Port ends are resolved in one place: what the editor asks about one end is what analysis
made of the edge, and the names the editor writes resolve back to their port."""

from __future__ import annotations

import pytest

from dlstudio.core.analysis import analyze
from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import load_graph
from dlstudio.core.wiring import end_name, first_ports, resolve_end
from tests.conftest import GRAPHS

EXAMPLES = sorted(GRAPHS.glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_edge_of_the_examples_resolves_as_analysis_resolved_it(path):
    graph = load_graph(path)
    links = analyze(graph).links
    assert len(links) == len(graph.edges)
    for edge, link in zip(graph.edges, links, strict=True):
        assert resolve_end(graph, edge.source, True) == (link.source, link.source_port)
        assert resolve_end(graph, edge.target, False) == (link.target, link.target_port)
        name = end_name(graph.node(link.target).type, link.target, link.target_port, False)
        assert resolve_end(graph, name, False) == (link.target, link.target_port)


def test_ends_that_name_nothing_resolve_to_none_and_a_missing_layer_keeps_its_port():
    graph = Graph(nodes=[Node(id="x", type="Input", params={"shape": [4]}),
                         Node(id="cat", type="Concat"), Node(id="gone", type="NoSuchLayer")],
                  edges=[Edge(source="x", target="cat.in1")])
    assert resolve_end(graph, "nobody", True) is None
    assert resolve_end(graph, "x.nope", True) is None
    assert resolve_end(graph, "cat", False) is None  # a variadic input must be named
    assert resolve_end(graph, "cat.in7", False) == ("cat", "in7")
    assert resolve_end(graph, "gone.a", False) == ("gone", "a") and resolve_end(graph, "gone", True) is None


def test_first_ports_and_short_names_follow_the_declaration():
    assert first_ports("Linear") == ("input", "output") and first_ports("Input")[0] is None
    assert first_ports("NoSuchLayer") == (None, None)
    assert end_name("Linear", "fc", "input", False) == "fc"
    assert end_name("Concat", "cat", CATALOGUE["Concat"].inputs[0], False).startswith("cat.")
