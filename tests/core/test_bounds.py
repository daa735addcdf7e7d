"""Every input is bounded before work is done: symbolic size expressions, variadic port indices,
nesting depth anywhere in the file, and the memory a training run would take. A small hostile
file is refused within seconds and a bounded amount of memory, with a message that names the
file, the node and the limit."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlstudio import analyze, load_graph
from dlstudio.core.errors import GraphFileError
from dlstudio.core.export import export_python
from dlstudio.core.io import MAX_DEPTH, MAX_EDGES, MAX_NODES, graph_to_json
from dlstudio.core.memory import training_memory
from dlstudio.core.spec import MAX_VARIADIC_INPUTS
from dlstudio.core.tensor import MAX_DIM_CHARS
from tests.conftest import GRAPHS
from tests.hostile import assert_plain, run_limited


def _doc(nodes: list[dict], edges: list[tuple[str, str]]) -> dict:
    return {"format": "dlstudio.graph", "version": 1, "name": "hostile", "nodes": nodes,
            "edges": [{"source": a, "target": b} for a, b in edges]}


def padded_doubling(levels: int) -> dict:
    """Pad a variable length by one and join it with itself, ``levels`` times: the size
    expression doubles at every level (5 KB of file for 40 levels)."""
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [4, "T"]}}]
    edges, previous = [], "x"
    for i in range(levels):
        nodes += [{"id": f"p{i}", "type": "ConstantPad1d", "params": {"padding": 1, "value": 0.0}},
                  {"id": f"c{i}", "type": "Concat", "params": {"dim": 2}}]
        edges += [(previous, f"p{i}"), (f"p{i}", f"c{i}.in0"), (previous, f"c{i}.in1")]
        previous = f"c{i}"
    return _doc([*nodes, {"id": "out", "type": "Output"}], [*edges, (previous, "out")])


def add_of(count: int, port: str | None = None) -> dict:
    """An Add with ``count`` inputs from one Input (or one edge into ``port``)."""
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [4]}}, {"id": "add", "type": "Add"},
             {"id": "out", "type": "Output"}]
    ports = [port] if port else [f"in{i}" for i in range(count)]
    return _doc(nodes, [*(("x", f"add.{p}") for p in ports), ("add", "out")])


def _write(tmp_path, doc: dict, name: str = "g.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


# --- symbolic size expressions ---------------------------------------------------------------------


def test_a_doubling_size_expression_stops_at_the_limit_on_the_node_that_exceeds_it():
    started = time.perf_counter()
    analysis = analyze(load_graph(padded_doubling(40)))
    assert time.perf_counter() - started < 2
    [error] = analysis.errors
    assert error.node == "c4" and f"over the limit of {MAX_DIM_CHARS} (MAX_DIM_CHARS)" in error.message
    assert ("c4", "output") not in analysis.ports  # left unknown: nothing downstream grows
    longest = max(len(d) for t in analysis.ports.values() for d in t.shape if isinstance(d, str))
    assert longest <= MAX_DIM_CHARS


@pytest.mark.parametrize("command", ["validate", "summary", "export"])
def test_the_doubling_graph_is_refused_by_every_command_in_little_memory(tmp_path, command):
    result = run_limited([command, _write(tmp_path, padded_doubling(40))], memory_gib=0.75, timeout=30)
    assert result.returncode == 1
    assert_plain(result.stderr)
    out = result.stdout + result.stderr
    assert "c4" in out and "MAX_DIM_CHARS" in out and len(out) < 2000


# --- variadic port indices -------------------------------------------------------------------------


def test_an_edge_to_a_huge_port_index_builds_nothing_and_names_the_limit(tmp_path):
    started = time.perf_counter()
    analysis = analyze(load_graph(add_of(1, port="in99999999")))
    assert time.perf_counter() - started < 1
    messages = [d.message + " " + d.fix for d in analysis.errors if d.node == "add"]
    assert any("in99999999" in m and "MAX_VARIADIC_INPUTS" in m for m in messages)
    result = run_limited(["validate", _write(tmp_path, add_of(1, port="in99999999"))], memory_gib=0.5)
    assert result.returncode == 1 and "MAX_VARIADIC_INPUTS" in result.stdout


@pytest.mark.parametrize("port", ["in00", "in-1", "in\u0661", "in1e3", "in 1", f"in{MAX_VARIADIC_INPUTS}"])
def test_odd_port_names_are_not_ports(port):
    analysis = analyze(load_graph(add_of(1, port=port)))
    assert any(port in d.message for d in analysis.errors)


def test_the_widest_add_allowed_validates_and_exports():
    source = export_python(add_of(MAX_VARIADIC_INPUTS))  # no RecursionError laying out the sum
    compile(source, "exported.py", "exec")
    assert not analyze(load_graph(add_of(MAX_VARIADIC_INPUTS))).errors
    assert analyze(load_graph(add_of(MAX_VARIADIC_INPUTS + 1))).errors


# --- number of nodes and edges ----------------------------------------------------------------------


def _many(nodes: int, edges: int = 0, block_nodes: int = 0) -> dict:
    """A document of ``nodes`` ReLUs (and ``edges`` edges), with a block of ``block_nodes`` more."""
    doc = _doc([{"id": f"n{i}", "type": "ReLU"} for i in range(nodes)], [("n0", "n1")] * edges)
    if block_nodes:
        doc["blocks"] = {"big": {"nodes": [{"id": f"b{i}", "type": "ReLU"} for i in range(block_nodes)]}}
    return doc


@pytest.mark.parametrize(("nodes", "edges", "block_nodes", "limit"), [
    (MAX_NODES + 1, 0, 0, f"{MAX_NODES:,} a graph file may hold (MAX_NODES"),
    (2, MAX_EDGES + 1, 0, f"{MAX_EDGES:,} a graph file may hold (MAX_EDGES"),
    (MAX_NODES - 5, 0, 10, "MAX_NODES"),  # a block's nodes count too
])
def test_too_many_nodes_or_edges_are_refused_before_any_is_built(nodes, edges, block_nodes, limit):
    doc = _many(nodes, edges, block_nodes)
    started = time.perf_counter()
    with pytest.raises(GraphFileError) as refused:
        load_graph(doc)
    assert time.perf_counter() - started < 0.5  # counted, not validated
    message = str(refused.value)
    assert message.startswith("<dict>: has ") and limit in message and "\n" not in message


def test_a_graph_at_the_node_limit_loads():
    assert len(load_graph(_many(MAX_NODES)).nodes) == MAX_NODES


def test_too_many_nodes_is_a_file_error_on_the_command_line(tmp_path):
    result = run_limited(["validate", _write(tmp_path, _many(MAX_NODES + 1))], memory_gib=1.5, timeout=60)
    assert result.returncode == 2
    assert_plain(result.stderr)
    [line] = result.stderr.splitlines()
    assert "g.json: has 200,001 nodes" in line and "MAX_NODES" in line


# --- nesting depth anywhere in the file: whatever loads, saves --------------------------------------


def _nest(depth: int, leaf: object = 1) -> object:
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def _example() -> dict:
    return json.loads((GRAPHS / "mlp_iris.json").read_text())


#: Where junk can go: an unknown key of the graph, the training section, a part of it, a node,
#: a node's params, an edge.
PLACES = ["graph", "training", "optimizer", "optimizer_params", "dataset_params", "node", "params", "edge"]


def _place(doc: dict, where: str, junk: object) -> dict:
    training = doc["training"]
    target = {"graph": doc, "training": training, "optimizer": training["optimizer"],
              "optimizer_params": training["optimizer"]["params"], "dataset_params": training["dataset"]["params"],
              "node": doc["nodes"][1], "params": doc["nodes"][1].setdefault("params", {}),
              "edge": doc["edges"][0]}[where]
    target["zz_junk"] = junk
    return doc


@pytest.mark.parametrize("where", PLACES)
def test_300_levels_deep_is_refused_everywhere_with_the_limit(where):
    with pytest.raises(GraphFileError, match=f"nested more than {MAX_DEPTH} levels deep"):
        load_graph(_place(_example(), where, _nest(300)))


JSON_LEAVES = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=8)
NESTED_JUNK = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(PLACES), depth=st.integers(0, 2 * MAX_DEPTH), junk=NESTED_JUNK)
def test_whatever_loads_saves_and_reopens_byte_identically(where, depth, junk):
    doc = _place(_example(), where, _nest(depth, junk))
    try:
        graph = load_graph(doc)
    except GraphFileError:
        return
    text = graph_to_json(graph)
    assert graph_to_json(load_graph(json.loads(text))) == text


# --- memory a run would take -----------------------------------------------------------------------


def test_training_memory_counts_parameters_with_gradients_and_optimizer_state_and_activations():
    graph = load_graph(GRAPHS / "mlp_iris.json")
    analysis = analyze(graph)
    estimate = training_memory(analysis, graph.training)
    params = analysis.total_params  # SGD with momentum: weight, gradient and one buffer
    assert estimate.parameters == params * 3 * 4
    per_sample = 4 + 16 + 16 + 3 + 3  # features, fc1, act, fc2, logits
    assert estimate.activations == per_sample * graph.training.batch_size * 4
    assert "GiB" in estimate.describe(16) or "MiB" in estimate.describe(16)
