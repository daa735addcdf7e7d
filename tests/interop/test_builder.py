"""The graph builder every importer uses: legal, unique ids from source names; edges that
name ports only where a node has several; Unsupported nodes counted apart from layers."""

from dlstudio import analyze
from dlstudio.interop.builder import GraphBuilder, Port, node_id_from


def test_source_names_become_legal_ids():
    assert node_id_from("layer1.0.conv1") == "layer1_0_conv1"
    assert node_id_from("/encoder/Conv") == "encoder_Conv"
    assert node_id_from("0.weight") == "n0_weight"
    assert node_id_from("...") == "node"
    assert len(node_id_from("a" * 200)) <= 58


def test_repeated_names_get_numbered_ids():
    builder = GraphBuilder("g")
    assert [builder.fresh_id("relu") for _ in range(3)] == ["relu", "relu_2", "relu_3"]


def test_edges_name_ports_only_on_nodes_with_several():
    builder = GraphBuilder("g")
    x = Port(builder.add("Input", "x", {"shape": [5, 8]}))
    lstm = builder.add("LSTM", "lstm", {"hidden_size": 4}, [(x, "input")])
    builder.add("Output", "out", {}, [(Port(lstm, "h_n"), "input")])
    result = builder.finish()
    assert [(e.source, e.target) for e in result.graph.edges] == [("x", "lstm.input"), ("lstm.h_n", "out")]
    assert analyze(result.graph).ok


def test_unsupported_nodes_are_listed_not_counted_as_layers():
    builder = GraphBuilder("g")
    x = Port(builder.add("Input", "x", {"shape": [4]}))
    builder.add_unsupported("torch.erf", "model.py:3", "erf", [x])
    result = builder.finish()
    assert result.mapped == {} and result.unsupported == ["torch.erf (model.py:3)"]
    assert result.summary() == ("mapped 0 operations to layers (); 1 unsupported, shown as "
                                "Unsupported nodes: torch.erf (model.py:3)")
