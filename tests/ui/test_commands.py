"""Document edits as undo commands: each is one step, and undoing everything restores the file."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.io import load_graph, save_graph
from dlstudio.ui.document import GraphDocument, edge_key

MLP = {
    "format": "dlstudio.graph", "version": 1, "name": "mlp",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [16]}, "position": [0, 0]},
        {"id": "fc1", "type": "Linear", "params": {"out_features": 32}, "position": [300, 0]},
        {"id": "act", "type": "ReLU", "label": "<b>not bold</b>", "position": [600, 0]},
        {"id": "fc2", "type": "Linear", "params": {"out_features": 4}},
        {"id": "out", "type": "Output", "position": [1200, 0]},
    ],
    "edges": [
        {"source": "x", "target": "fc1"}, {"source": "fc1", "target": "act"},
        {"source": "act", "target": "fc2"}, {"source": "fc2", "target": "out"},
    ],
}


@pytest.fixture
def mlp_file(tmp_path):
    path = tmp_path / "mlp.json"
    save_graph(load_graph(MLP), path)
    return path


@pytest.fixture
def doc(qapp, mlp_file):
    return GraphDocument.open(mlp_file)


def undo_all(doc: GraphDocument) -> None:
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()


def test_add_connect_and_undo_each_step(doc):
    original = doc.to_json()
    new = doc.add_node("Linear", (10, 20), {"out_features": 8})
    assert new == "linear_1" and doc.node(new).position == (10.0, 20.0)
    doc.connect("act", new)
    assert ("act", new) in [edge_key(e) for e in doc.graph.edges]
    assert doc.undo_stack.count() == 2 and doc.modified
    doc.undo_stack.undo()
    assert doc.find_edge(("act", new)) is None and doc.has_node(new)
    doc.undo_stack.undo()
    assert doc.to_json() == original and not doc.modified


def test_connect_refuses_cycles_self_loops_and_bad_ports(doc):
    with pytest.raises(ValueError, match="cycle"):
        doc.connect("fc2", "fc1")
    with pytest.raises(ValueError, match="itself"):
        doc.connect("fc1", "fc1")
    with pytest.raises(ValueError, match="not an input port"):
        doc.connect("x", "fc1.nope")
    with pytest.raises(ValueError, match="already connected"):
        doc.connect("x", "fc1")
    assert doc.undo_stack.count() == 0


def test_connect_to_a_fed_port_replaces_its_edge_in_one_step(doc):
    doc.connect("x", "fc2")
    keys = [edge_key(e) for e in doc.graph.edges]
    assert ("x", "fc2") in keys and ("act", "fc2") not in keys
    assert keys.index(("x", "fc2")) == 2  # the replaced edge's place in the file
    doc.undo_stack.undo()
    assert ("act", "fc2") in [edge_key(e) for e in doc.graph.edges]


def test_delete_takes_the_edges_and_undo_restores_order(doc):
    original = doc.to_json()
    doc.remove_items(["fc1"])
    assert not doc.has_node("fc1")
    assert all("fc1" not in key for key in map(edge_key, doc.graph.edges))
    assert doc.undo_stack.undoText() == "Delete fc1"
    doc.undo_stack.undo()
    assert doc.to_json() == original


def test_moves_of_the_same_selection_merge(doc):
    doc.move_nodes({"fc1": (310, 0), "act": (610, 0)})
    doc.move_nodes({"fc1": (320, 0), "act": (620, 0)})
    assert doc.undo_stack.count() == 1
    doc.move_nodes({"fc1": (330, 0)})
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.node("fc1").position == (300.0, 0.0) and doc.node("act").position == (600.0, 0.0)


def test_param_edits_merge_per_field_and_none_restores_default(doc):
    doc.set_param("fc1", "out_features", 33)
    doc.set_param("fc1", "out_features", 34)
    assert doc.undo_stack.count() == 1 and doc.node("fc1").params["out_features"] == 34
    doc.set_param("fc1", "bias", False)
    doc.set_param("fc1", "out_features", None)
    assert "out_features" not in doc.node("fc1").params
    doc.set_param("fc1", "out_features", None)  # no change, no step
    assert doc.undo_stack.count() == 3
    undo_all(doc)
    assert doc.node("fc1").params == {"out_features": 32}


def test_rename_moves_edges_and_refuses_illegal_ids(doc):
    doc.rename_node("fc1", "encoder")
    assert ("x", "encoder") in [edge_key(e) for e in doc.graph.edges]
    with pytest.raises(ValueError, match="already used"):
        doc.rename_node("encoder", "act")
    with pytest.raises(ValueError, match="not a legal id"):
        doc.rename_node("encoder", "2fast")
    doc.undo_stack.undo()
    assert doc.has_node("fc1") and ("x", "fc1") in [edge_key(e) for e in doc.graph.edges]


def test_copy_paste_gives_new_ids_and_keeps_inner_edges(doc):
    payload = doc.copy_payload(["fc1", "act"])
    ids = doc.paste(payload, at=(1000, 500))
    assert ids == ["fc1_1", "act_1"]
    assert doc.node("fc1_1").position == (1000.0, 500.0) and doc.node("act_1").position == (1300.0, 500.0)
    assert doc.node("act_1").label == "<b>not bold</b>"
    assert ("fc1_1", "act_1") in [edge_key(e) for e in doc.graph.edges]
    assert not any(e.target_node == "fc1_1" for e in doc.graph.edges)  # x -> fc1 was not copied
    assert doc.duplicate(["fc1_1"]) == ["fc1_2"]
    assert doc.undo_stack.undoText() == "Duplicate 1 nodes"


def test_paste_refuses_foreign_or_broken_payloads(doc):
    for payload in ("hello", "[1, 2]", json.dumps({"format": "other"}),
                    json.dumps({"format": "dlstudio.nodes", "nodes": [{"id": "1bad", "type": "ReLU"}]})):
        with pytest.raises(ValueError):
            doc.paste(payload)
    assert doc.undo_stack.count() == 0


def test_insert_on_edge_splices_and_undoes(doc):
    original = doc.to_json()
    new = doc.insert_on_edge("Dropout", ("fc1", "act"), (450, 0))
    keys = [edge_key(e) for e in doc.graph.edges]
    assert ("fc1", new) in keys and (new, "act") in keys and ("fc1", "act") not in keys
    assert keys.index(("fc1", new)) == 1
    assert doc.reanalyse().ok
    doc.undo_stack.undo()
    assert doc.to_json() == original
    with pytest.raises(ValueError, match="no input"):
        doc.insert_on_edge("Input", ("fc1", "act"), (0, 0))


def test_reconnect_and_disconnect(doc):
    doc.reconnect(("act", "fc2"), "fc1", "fc2")
    assert doc.graph.edges[2].source == "fc1"
    doc.disconnect(("fc1", "fc2"))
    assert len(doc.graph.edges) == 3
    undo_all(doc)
    assert edge_key(doc.graph.edges[2]) == ("act", "fc2")


def test_graph_fields_are_validated_and_undoable(doc):
    doc.set_graph_field("description", "a small net")
    assert doc.graph.description == "a small net"
    with pytest.raises(ValueError):
        doc.set_graph_field("nodes", [])
    with pytest.raises(ValueError):
        doc.set_graph_field("name", 5)
    doc.undo_stack.undo()
    assert doc.graph.description == ""


def test_auto_layout_is_one_step_and_places_unpositioned(doc):
    doc.auto_layout()
    assert doc.undo_stack.count() == 1 and doc.undo_stack.undoText() == "Auto-layout"
    xs = [doc.node(n).position[0] for n in ("x", "fc1", "act", "fc2", "out")]
    assert xs == sorted(xs) and len(set(xs)) == 5
    doc.undo_stack.undo()
    assert doc.node("fc2").position is None


def test_place_unpositioned_does_not_mark_modified(doc):
    doc.place_unpositioned()
    assert doc.node("fc2").position is not None and not doc.modified
    assert doc.undo_stack.count() == 0


# ----- property: any edit sequence undoes back to the opened file ---------------------------

TYPES = sorted(t for t in CATALOGUE if t not in ("Input", "Output"))
OPS = ("add", "remove", "remove_edge", "connect", "disconnect", "reconnect", "move", "param",
       "label", "frozen", "rename", "paste", "duplicate", "layout", "insert", "field")


def apply_op(doc: GraphDocument, op: str, a: int, b: int, step: int) -> None:
    """Apply one edit picked by ``op``, choosing its targets from the integers ``a`` and ``b``."""
    ids = doc.graph.node_ids()
    edges = [edge_key(e) for e in doc.graph.edges]
    node = ids[a % len(ids)] if ids else None
    other = ids[b % len(ids)] if ids else None
    edge = edges[a % len(edges)] if edges else None
    try:
        if op == "add":
            doc.add_node(TYPES[a % len(TYPES)], (a * 10.0, b * 10.0))
        elif op == "remove" and node:
            doc.remove_items([node])
        elif op == "remove_edge" and edge:
            doc.remove_items([], [edge])
        elif op == "connect" and node and other:
            doc.connect(node, other)
        elif op == "disconnect" and edge:
            doc.disconnect(edge)
        elif op == "reconnect" and edge and other:
            doc.reconnect(edge, edge[0], other)
        elif op == "move" and node:
            doc.move_nodes({node: (a * 1.5, b * 2.5)}, merge=bool(b % 2))
        elif op == "param" and node:
            spec = CATALOGUE.get(doc.node(node).type)
            if spec and spec.params:
                param = spec.params[b % len(spec.params)]
                doc.set_param(node, param.name, None if a % 3 == 0 else param.default)
        elif op == "label" and node:
            doc.set_label(node, None if a % 2 else f"label {b}")
        elif op == "frozen" and node:
            doc.set_frozen(node, not doc.node(node).frozen)
        elif op == "rename" and node:
            doc.rename_node(node, f"renamed_{step}")
        elif op == "paste" and node:
            doc.paste(doc.copy_payload([node, other]), (float(a), float(b)) if a % 2 else None)
        elif op == "duplicate" and node:
            doc.duplicate([node])
        elif op == "layout":
            doc.auto_layout(None if a % 2 else ids[: b % 5 + 1])
        elif op == "insert" and edge:
            doc.insert_on_edge(TYPES[b % len(TYPES)], edge, (1.0, 2.0))
        elif op == "field":
            doc.set_graph_field("description" if a % 2 else "name", f"text {b}")
    except ValueError:
        pass  # a refused edit pushes nothing


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 50), st.integers(0, 50)),
                min_size=1, max_size=25))
def test_undo_everything_returns_the_opened_document(qapp, mlp_file, edits):
    doc = GraphDocument.open(mlp_file)
    opened = doc.to_json()
    for step, (op, a, b) in enumerate(edits):
        apply_op(doc, op, a, b, step)
    edited = doc.to_json()
    undo_all(doc)
    assert doc.to_json() == opened
    while doc.undo_stack.canRedo():
        doc.undo_stack.redo()
    assert doc.to_json() == edited
    undo_all(doc)
    assert doc.to_json() == mlp_file.read_text() and not doc.modified
