"""``dlstudio validate --target``: which nodes do not export, and why."""

from __future__ import annotations

import json

import pytest

from dlstudio.cli import main
from dlstudio.core.analysis import analyze
from dlstudio.core.io import load_graph
from dlstudio.core.readiness import NOT_READY, TARGETS, export_problems
from tests.conftest import GRAPHS


def _scan_reason(node: str) -> str:
    return (f"{node}: MambaBlock does not export to torchscript: its selective scan steps through the "
            "sequence in a Python loop, so the export is fixed to the traced length (give the Input a "
            "fixed length)")


def test_a_layer_that_does_not_export_is_named_with_its_reason_and_the_exit_is_one(capsys):
    path = str(GRAPHS / "mamba_sequence.json")
    assert main(["validate", path, "--target", "torchscript"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{path}: {_scan_reason('mamba1')}", f"{path}: {_scan_reason('mamba2')}"]
    assert main(["validate", path]) == 0


def _pool_graph(tmp_path, layer: str, output_size: list | int, shape: list) -> str:
    """Input ``shape`` into an adaptive pool, saved at a path returned for the command line."""
    doc = {"format": "dlstudio.graph", "version": 1, "name": "pool",
           "nodes": [{"id": "x", "type": "Input", "params": {"shape": shape}},
                     {"id": "pool", "type": layer, "params": {"output_size": output_size}},
                     {"id": "out", "type": "Output"}],
           "edges": [{"source": "x", "target": "pool"}, {"source": "pool", "target": "out"}]}
    path = tmp_path / f"{layer}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_int8_follows_onnx_and_a_graph_that_exports_says_ok(tmp_path, capsys):
    path = _pool_graph(tmp_path, "AdaptiveAvgPool1d", 3, [4, "T"])
    assert main(["validate", path, "--target", "int8"]) == 1
    assert "does not export to int8 (int8 starts from the ONNX export)" in capsys.readouterr().out
    assert main(["validate", str(GRAPHS / "cnn_digits.json"), "--target", "onnx"]) == 0
    assert capsys.readouterr().out.strip().endswith("cnn_digits.json: ok")


@pytest.mark.parametrize("layer", ["AdaptiveAvgPool1d", "AdaptiveMaxPool1d"])
def test_an_adaptive_pool_of_a_variable_length_is_refused_unless_it_pools_to_one(tmp_path, capsys, layer):
    assert main(["validate", _pool_graph(tmp_path, layer, 3, [4, "T"]), "--target", "onnx"]) == 1
    assert f"pool: {layer} does not export to onnx: " in capsys.readouterr().out
    assert main(["validate", _pool_graph(tmp_path, layer, 1, [4, "T"]), "--target", "onnx"]) == 0
    assert main(["validate", _pool_graph(tmp_path, layer, 3, [4, 12]), "--target", "onnx"]) == 0
    square = layer.replace("1d", "2d")
    assert main(["validate", _pool_graph(tmp_path, square, [1, 3], [4, "H", 8]), "--target", "onnx"]) == 1
    assert main(["validate", _pool_graph(tmp_path, square, [1, 1], [4, "H", "W"]), "--target", "onnx"]) == 0


@pytest.mark.parametrize("name", sorted(p.stem for p in GRAPHS.glob("*.json")))
def test_every_example_graph_exports_to_onnx(name, capsys):
    """The experts and the Mamba graphs included: none of them has a node that is refused."""
    assert main(["validate", str(GRAPHS / f"{name}.json"), "--target", "onnx"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{name}.json: ok")


def test_mamba_is_ready_at_a_fixed_length_only(tmp_path):
    doc = json.loads((GRAPHS / "mamba_sequence.json").read_text())
    analysis = analyze(load_graph(doc))
    assert export_problems(analysis, "onnx") == []
    assert [p.node for p in export_problems(analysis, "torchscript")] == ["mamba1", "mamba2"]
    for node in doc["nodes"]:
        if node["type"] == "Input":
            node["params"]["shape"] = [16]
    doc.pop("training")
    assert export_problems(analyze(load_graph(doc)), "torchscript") == []


def test_every_listed_type_is_a_layer_and_every_target_known():
    from dlstudio.core.catalogue import BUILTINS

    for type_name, limits in NOT_READY.items():
        assert BUILTINS.get(type_name) is not None, type_name
        assert set(limits) <= set(TARGETS)


def test_a_layer_inside_a_block_that_does_not_export_is_named_by_its_path():
    from dlstudio.core.io import load_graph
    from dlstudio.core.readiness import export_problems
    from tests.conftest import GRAPHS

    analysis = analyze(load_graph(GRAPHS / "mamba_130m.json"))
    (problem,) = export_problems(analysis, "torchscript")
    assert problem.node == "layers" and problem.message.startswith("layers.mixer: MambaBlock does not export")
    assert export_problems(analysis, "onnx") == []
    assert export_problems(analyze(load_graph(GRAPHS / "gpt2_small.json")), "onnx") == []


def test_each_node_is_ready_not_ready_with_its_reason_or_not_applicable():
    from dlstudio.core.readiness import Readiness, node_readiness

    analysis = analyze(load_graph(GRAPHS / "mamba_sequence.json"))
    states = node_readiness(analysis, "torchscript")
    mamba = {"mamba1", "mamba2"}
    assert all(states[n].state is Readiness.NOT_READY for n in mamba)
    assert states["mamba1"].problems[0].message.startswith("MambaBlock does not export to torchscript")
    assert {n for n, s in states.items() if s.state is Readiness.NOT_APPLICABLE} == {
        n.id for n in analysis.graph.nodes if n.type in ("Input", "Output")}
    assert all(s.state is Readiness.READY for n, s in states.items()
               if n not in mamba and analysis.graph.node(n).type not in ("Input", "Output"))
    block = node_readiness(analyze(load_graph(GRAPHS / "mamba_130m.json")), "torchscript")["layers"]
    assert block.state is Readiness.NOT_READY and block.problems[0].message.startswith("layers.mixer: MambaBlock")
