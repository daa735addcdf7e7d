"""Validation collects every problem, each with node, message and fix; analysis never raises."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlstudio import analyze, load_graph
from dlstudio.core import analysis as analysis_module
from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.spec import LayerSpec, Param
from dlstudio.core.tensor import TensorType

MLP = {
    "format": "dlstudio.graph", "version": 1, "name": "mlp",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [16]}},
        {"id": "fc1", "type": "Linear", "params": {"out_features": 8}},
        {"id": "act", "type": "ReLU"},
        {"id": "fc2", "type": "Linear", "params": {"out_features": 4}},
        {"id": "out", "type": "Output"},
    ],
    "edges": [{"source": a, "target": b} for a, b in [("x", "fc1"), ("fc1", "act"), ("act", "fc2"),
                                                      ("fc2", "out")]],
}


def edit(**changes: Any) -> dict:
    doc = copy.deepcopy(MLP)
    doc.update(changes)
    return doc


def errors(doc: dict) -> list[str]:
    return [d.one_line() for d in analyze(load_graph(doc)).errors]


def test_a_valid_graph_has_types_counts_and_flops_for_every_node():
    analysis = analyze(load_graph(MLP))
    assert analysis.ok and analysis.diagnostics == []
    assert analysis.order == ["x", "fc1", "act", "fc2", "out"]
    assert analysis.ports[("fc1", "output")] == TensorType(("N", 8))
    assert analysis.outputs() == {"out": TensorType(("N", 4))}
    assert analysis.params["fc1"]["in_features"] == 16
    assert analysis.param_counts == {"x": 0, "fc1": 16 * 8 + 8, "act": 0, "fc2": 8 * 4 + 4, "out": 0}
    assert analysis.flops["fc1"] == 16 * 8 and analysis.total_flops == 16 * 8 + 8 + 8 * 4
    assert analysis.total_params == 16 * 8 + 8 + 8 * 4 + 4


def test_unknown_type_is_an_error_and_its_parameters_are_kept():
    doc = copy.deepcopy(MLP)
    doc["nodes"][2] = {"id": "act", "type": "Swish9000", "params": {"beta": 2}}
    graph = load_graph(doc)
    assert errors(doc) == ["act: unknown layer type 'Swish9000' (replace it with a layer from the "
                           "palette; its parameters are kept)"]
    assert graph.node("act").params == {"beta": 2}


@pytest.mark.parametrize(("value", "expected"), [
    (0, "out_features=0 is not valid: expected a whole number (1 <= value"),
    (2.5, "out_features=2.5 is not valid"),
    (True, "out_features=True is not valid"),
    ("8", "out_features='8' is not valid"),
])
def test_bad_parameter_values_name_the_node_and_the_parameter(value, expected):
    doc = copy.deepcopy(MLP)
    doc["nodes"][1]["params"]["out_features"] = value
    found = analyze(load_graph(doc)).errors
    assert len(found) == 1 and found[0].node == "fc1" and found[0].param == "out_features"
    assert expected in found[0].message and found[0].fix


def test_an_unknown_parameter_lists_the_known_ones():
    doc = copy.deepcopy(MLP)
    doc["nodes"][1]["params"]["outfeatures"] = 3
    assert errors(doc) == ["fc1: Linear 'fc1': unknown parameter 'outfeatures' (parameters of Linear: "
                           "in_features, out_features, bias) (change or remove the value)"]


def test_missing_input_two_edges_into_a_port_and_unknown_ends():
    doc = edit(edges=[{"source": "x", "target": "fc1"}, {"source": "x", "target": "fc1.input"},
                      {"source": "fc1", "target": "ghost"}, {"source": "act.nope", "target": "fc2"},
                      {"source": "fc2", "target": "out"}])
    assert errors(doc) == [
        "fc1: port 'input' has two incoming edges (from 'x' and 'x') (remove one of the edges)",
        "edge target 'ghost' names no node (delete the edge or create the node)",
        "act: ReLU 'act' has no port 'nope' (connect to one of: output)",
        "act: ReLU 'act' has nothing connected to 'input' (connect a node to act.input)",
    ]  # fc2's input edge is broken at its source: reported once, on the edge


def test_a_bare_target_on_a_node_with_several_inputs_must_name_a_port():
    if "Add" not in CATALOGUE:
        pytest.skip("needs the merge family")
    doc = copy.deepcopy(MLP)
    doc["nodes"].insert(3, {"id": "sum", "type": "Add"})
    doc["edges"] = [{"source": "x", "target": "fc1"}, {"source": "fc1", "target": "act"},
                    {"source": "act", "target": "sum"}, {"source": "fc1", "target": "sum.in1"},
                    {"source": "sum", "target": "fc2"}, {"source": "fc2", "target": "out"}]
    found = errors(doc)
    assert found[0] == "sum: edge target 'sum' must name a port: Add has in0, in1, ... (use 'sum.in0')"


def test_cycles_are_named_from_their_first_node():
    doc = edit(edges=[*MLP["edges"], {"source": "fc2", "target": "act.input"}])
    doc["edges"] = [e for e in doc["edges"] if e != {"source": "fc1", "target": "act"}]
    found = errors(doc)
    assert "act: cycle: act -> fc2 -> act (remove one edge of the cycle (networks are acyclic; use a " \
           "recurrent layer for loops))" in found


def test_a_self_loop_is_a_cycle():
    doc = edit(edges=[{"source": "fc1", "target": "fc1"}, *MLP["edges"][1:]])
    assert any("cycle: fc1 -> fc1" in line for line in errors(doc))


def test_no_input_and_no_output():
    doc = edit(nodes=MLP["nodes"][1:-1], edges=MLP["edges"][1:-1])
    found = errors(doc)
    assert "the graph has no Input node (add an Input node)" in found
    assert "the graph has no Output node (add an Output node)" in found


def test_a_node_that_reaches_no_output_is_a_warning_and_not_counted():
    doc = copy.deepcopy(MLP)
    doc["nodes"].append({"id": "spare", "type": "Linear", "params": {"out_features": 3}})
    doc["edges"].append({"source": "act", "target": "spare"})
    analysis = analyze(load_graph(doc))
    assert analysis.ok
    assert [(d.severity, d.node) for d in analysis.diagnostics] == [("warning", "spare")]
    assert analysis.param_counts["spare"] == 8 * 3 + 3
    assert analysis.total_params == analyze(load_graph(MLP)).total_params


def test_a_float_layer_on_integers_is_a_dtype_error():
    doc = copy.deepcopy(MLP)
    doc["nodes"][0]["params"]["dtype"] = "int64"
    assert errors(doc) == ["fc1: Linear 'fc1' needs a floating-point input but gets int64 "
                           "(feed it from an Embedding or a float Input)"]


def test_every_problem_is_collected_not_only_the_first():
    doc = copy.deepcopy(MLP)
    doc["nodes"][1]["params"]["out_features"] = -1
    doc["nodes"][3]["params"]["in_features"] = 99
    doc["nodes"].append({"id": "mystery", "type": "Mystery"})
    doc["edges"].append({"source": "nowhere", "target": "out"})
    found = analyze(load_graph(doc)).errors
    assert {d.node for d in found} == {"fc1", "mystery", None}
    assert len(found) == 3  # fc2 waits for fc1 instead of repeating its problem


def test_shape_mismatch_names_both_sizes_and_the_fix():
    doc = copy.deepcopy(MLP)
    doc["nodes"][3]["params"]["in_features"] = 7
    assert errors(doc) == ["fc2: Linear 'fc2' expects last dimension 7 but gets 8 from 'act' "
                           "(remove in_features to infer it, or set it to 8)"]


def test_a_layer_holding_more_than_2_31_parameters_is_refused():
    doc = copy.deepcopy(MLP)
    doc["nodes"][0]["params"]["shape"] = [2**16]
    doc["nodes"][1]["params"]["out_features"] = 2**16
    found = analyze(load_graph(doc)).errors
    assert len(found) == 1 and found[0].node == "fc1"
    assert "would hold 4,295,032,832 parameters, over the limit of 2,147,483,648" in found[0].message


def test_a_model_holding_more_than_2_31_parameters_in_total_is_refused():
    doc = copy.deepcopy(MLP)
    doc["nodes"][0]["params"]["shape"] = [2**15]
    doc["nodes"][1]["params"]["out_features"] = 2**15
    doc["nodes"][3]["params"]["out_features"] = 2**15
    found = analyze(load_graph(doc)).errors
    assert [d.node for d in found] == [None]
    assert "the model would hold 2,147,549,184 parameters" in found[0].message


def test_caches_give_the_same_answers_and_follow_edits():
    graph = load_graph(MLP)
    first, second = analyze(graph), analyze(graph)
    assert first.ports == second.ports and first.params == second.params
    assert first.params["fc1"] is not second.params["fc1"]  # callers may edit their copy
    graph.node("fc1").params["out_features"] = 5
    assert analyze(graph).ports[("fc2", "output")] == TensorType(("N", 4))
    assert analyze(graph).params["fc2"]["in_features"] == 5
    graph.node("fc1").params["bias"] = 1  # equal to True, but not a bool
    assert [d.param for d in analyze(graph).errors] == ["bias"]
    graph.node("fc1").params["bias"] = True
    assert analyze(graph).ok


def test_a_declaration_that_crashes_becomes_a_diagnostic(monkeypatch):
    def broken(ctx):
        return ctx.input.with_shape((1 // 0,))

    spec = LayerSpec(type="Broken", family="Test", summary="raises", infer=broken)
    monkeypatch.setitem(CATALOGUE, "Broken", spec)
    doc = copy.deepcopy(MLP)
    doc["nodes"][2]["type"] = "Broken"
    found = analyze(load_graph(doc)).errors
    assert len(found) == 1 and found[0].node == "act"
    assert "internal error in its declaration (ZeroDivisionError: integer division or modulo by zero)" \
        in found[0].message
    analysis_module.clear_caches()


# -- every layer, extreme but legal parameters, odd inputs: never a crash -------------------

SHAPES = [[1], [7], [2, 5], [3, "T"], [1, 1, 1], [4, 9, 9], [2, 3, 4, 5], [2**20], [65536, 65536]]


@st.composite
def extreme_value(draw: st.DrawFn, p: Param) -> Any:
    lo = -(2**31) + 1 if p.min is None else p.min
    hi = 2**31 - 1 if p.max is None else p.max
    if p.kind == "int":
        return draw(st.sampled_from([int(lo), int(hi), 0, 1, 2, 3]).filter(lambda v: lo <= v <= hi))
    if p.kind == "float":
        return draw(st.sampled_from([float(lo), float(hi), 0.0, 0.5]).filter(lambda v: lo <= v <= hi))
    if p.kind == "ints":
        item = st.sampled_from([int(lo), int(hi), 1, 2]).filter(lambda v: lo <= v <= hi)
        return draw(st.lists(item, min_size=p.length or 0, max_size=p.length or 4) | item)
    if p.kind == "choice":
        return draw(st.sampled_from(p.choices))
    if p.kind == "bool":
        return draw(st.booleans())
    return p.default


@st.composite
def one_layer_graphs(draw: st.DrawFn) -> dict:
    spec = draw(st.sampled_from([s for name, s in sorted(CATALOGUE.items()) if name not in ("Input", "Output")]))
    params = {p.name: draw(extreme_value(p)) for p in spec.params if draw(st.booleans())}
    dtype = draw(st.sampled_from(["float32", "int64"]))
    nodes = [{"id": "x", "type": "Input", "params": {"shape": draw(st.sampled_from(SHAPES)), "dtype": dtype}},
             {"id": "layer", "type": spec.type, "params": params}]
    ports = [p for p in spec.input_ports(draw(st.integers(1, 3))) if p not in spec.optional_inputs]
    edges = [{"source": "x", "target": f"layer.{port}"} for port in ports]
    nodes.append({"id": "out", "type": "Output"})
    edges.append({"source": f"layer.{spec.outputs[0]}", "target": "out"})
    return {"format": "dlstudio.graph", "version": 1, "nodes": nodes, "edges": edges}


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(one_layer_graphs())
def test_extreme_parameters_never_crash_a_shape_rule(doc):
    analysis = analyze(load_graph(doc))
    internal = [d.one_line() for d in analysis.diagnostics if "internal error" in d.message]
    assert not internal, internal
    for tensor in analysis.ports.values():
        assert all(not isinstance(d, int) or 0 < d <= 2**31 for d in tensor.shape[1:]), tensor
    for count in analysis.param_counts.values():
        assert isinstance(count, int) and 0 <= count <= analysis_module.MAX_PARAMETERS
    for flops in analysis.flops.values():
        assert flops is None or (isinstance(flops, int) and flops >= 0)


def test_in_place_activation_on_a_shared_tensor_is_a_warning():
    from dlstudio import analyze, load_graph

    graph = load_graph({
        "format": "dlstudio.graph", "version": 1, "name": "inplace",
        "nodes": [
            {"id": "x", "type": "Input", "params": {"shape": [4]}},
            {"id": "fc", "type": "Linear", "params": {"out_features": 4}},
            {"id": "relu", "type": "ReLU", "params": {"inplace": True}},
            {"id": "add", "type": "Add"},
            {"id": "out", "type": "Output"},
        ],
        "edges": [
            {"source": "x", "target": "fc"}, {"source": "fc", "target": "relu"},
            {"source": "fc", "target": "add.in0"}, {"source": "relu", "target": "add.in1"},
            {"source": "add", "target": "out"},
        ],
    })
    warnings = [d for d in analyze(graph).diagnostics if d.param == "inplace"]
    assert [(d.node, d.severity, d.fix) for d in warnings] == [("relu", "warning", "turn inplace off")]
    assert "also read by other nodes" in warnings[0].message
    graph.edges[2].source = "x"
    assert not [d for d in analyze(graph).diagnostics if d.param == "inplace"]
