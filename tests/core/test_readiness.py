"""``dlstudio validate --target``: which nodes do not export, and why."""

from __future__ import annotations

import json

from dlstudio.cli import main
from dlstudio.core.analysis import analyze
from dlstudio.core.io import load_graph
from dlstudio.core.readiness import NOT_READY, TARGETS, export_problems
from tests.conftest import GRAPHS


def test_the_mixture_of_experts_is_named_with_its_reason_and_the_exit_is_one(capsys):
    path = str(GRAPHS / "moe_sequence.json")
    assert main(["validate", path, "--target", "onnx"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{path}: experts: MixtureOfExperts does not export to onnx: it splits tokens among experts "
                   "by counts known only from the data, which torch.export cannot trace (export --to python)"]
    assert main(["validate", path]) == 0


def test_int8_follows_onnx_and_a_graph_that_exports_says_ok(capsys):
    assert main(["validate", str(GRAPHS / "moe_sequence.json"), "--target", "int8"]) == 1
    assert "does not export to int8 (int8 starts from the ONNX export)" in capsys.readouterr().out
    assert main(["validate", str(GRAPHS / "cnn_digits.json"), "--target", "onnx"]) == 0
    assert capsys.readouterr().out.strip().endswith("cnn_digits.json: ok")


def test_mamba_is_ready_at_a_fixed_length_only(tmp_path):
    doc = json.loads((GRAPHS / "mamba_sequence.json").read_text())
    analysis = analyze(load_graph(doc))
    assert [p.node for p in export_problems(analysis, "onnx")] == ["mamba1", "mamba2"]
    assert [p.node for p in export_problems(analysis, "torchscript")] == ["mamba1", "mamba2"]
    for node in doc["nodes"]:
        if node["type"] == "Input":
            node["params"]["shape"] = [16]
    doc.pop("training")
    assert export_problems(analyze(load_graph(doc)), "onnx") == []


def test_every_listed_type_is_a_layer_and_every_target_known():
    from dlstudio.core.catalogue import BUILTINS

    for type_name, limits in NOT_READY.items():
        assert BUILTINS.get(type_name) is not None, type_name
        assert set(limits) <= set(TARGETS)


def test_a_layer_inside_a_block_that_does_not_export_is_named_by_its_path():
    from dlstudio.core.io import load_graph
    from dlstudio.core.readiness import export_problems
    from tests.conftest import GRAPHS

    (problem,) = export_problems(analyze(load_graph(GRAPHS / "mamba_130m.json")), "onnx")
    assert problem.node == "layers" and problem.message.startswith("layers.mixer: MambaBlock does not export")
    assert export_problems(analyze(load_graph(GRAPHS / "gpt2_small.json")), "onnx") == []


def test_each_node_is_ready_not_ready_with_its_reason_or_not_applicable():
    from dlstudio.core.readiness import Readiness, node_readiness

    analysis = analyze(load_graph(GRAPHS / "moe_sequence.json"))
    states = node_readiness(analysis, "torchscript")
    assert states["experts"].state is Readiness.NOT_READY
    assert states["experts"].problems[0].message.startswith("MixtureOfExperts does not export to torchscript")
    assert {n for n, s in states.items() if s.state is Readiness.NOT_APPLICABLE} == {
        n.id for n in analysis.graph.nodes if n.type in ("Input", "Output")}
    assert all(s.state is Readiness.READY for n, s in states.items()
               if n != "experts" and analysis.graph.node(n).type not in ("Input", "Output"))
    block = node_readiness(analyze(load_graph(GRAPHS / "mamba_130m.json")), "int8")["layers"]
    assert block.state is Readiness.NOT_READY and block.problems[0].message.startswith("layers.mixer: MambaBlock")
