"""Frozen nodes (transfer learning): saved only when set, counted apart, never trained, exported."""

from __future__ import annotations

import copy
import json
from typing import Any

import torch

from dlstudio import analyze, compile_graph, export_python, load_graph
from dlstudio.cli import main
from dlstudio.core.io import graph_to_json
from dlstudio.core.naming import class_name
from tests.train.helpers import mlp


def frozen_mlp(*frozen: str, **training: Any) -> dict[str, Any]:
    doc = mlp(**training)
    for node in doc["nodes"]:
        if node["id"] in frozen:
            node["frozen"] = True
    return doc


def test_frozen_is_saved_only_when_set_and_round_trips_byte_for_byte():
    text = graph_to_json(load_graph(frozen_mlp("fc1")))
    assert '"frozen": true' in text and text.count("frozen") == 1
    assert graph_to_json(load_graph(json.loads(text))) == text
    plain = graph_to_json(load_graph(mlp()))
    assert "frozen" not in plain
    assert graph_to_json(load_graph({**mlp(), "nodes": [{**n, "frozen": False} for n in mlp()["nodes"]]})) == plain


def test_trainable_params_leave_out_frozen_nodes():
    analysis = analyze(load_graph(frozen_mlp("fc1")))
    assert analysis.ok
    fc1, fc2 = analysis.param_counts["fc1"], analysis.param_counts["fc2"]
    assert (fc1, fc2) == (4 * 16 + 16, 16 * 3 + 3)
    assert analysis.total_params == fc1 + fc2 and analysis.trainable_params == fc2


def test_summary_json_reports_what_trains(tmp_path, capsys):
    path = tmp_path / "frozen.json"
    path.write_text(json.dumps(frozen_mlp("fc2")))
    assert main(["summary", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == 131 and report["trainable_params"] == 80


def test_freezing_a_layer_without_parameters_is_a_warning_with_a_fix():
    analysis = analyze(load_graph(frozen_mlp("act")))
    assert analysis.ok
    (warning,) = [d for d in analysis.diagnostics if d.node == "act"]
    assert warning.severity == "warning" and "no parameters" in warning.message
    assert warning.fix.startswith("unfreeze it")


def test_the_compiled_module_does_not_train_frozen_weights():
    module = compile_graph(load_graph(frozen_mlp("fc1")))
    grads = {name: p.requires_grad for name, p in module.named_parameters()}
    assert grads == {"fc1.weight": False, "fc1.bias": False, "fc2.weight": True, "fc2.bias": True}
    before = copy.deepcopy(module.state_dict())
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    torch.nn.functional.cross_entropy(module(torch.randn(8, 4)), torch.arange(8) % 3).backward()
    optimizer.step()
    after = module.state_dict()
    assert torch.equal(after["fc1.weight"], before["fc1.weight"])
    assert not torch.equal(after["fc2.weight"], before["fc2.weight"])


def test_export_freezes_the_same_layers_and_loads_the_weights():
    graph = load_graph(frozen_mlp("fc1"))
    source = export_python(graph)
    assert "        self.fc1.requires_grad_(False)\n" in source
    assert "fc2.requires_grad_" not in source
    namespace: dict[str, Any] = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102
    exported = namespace[class_name(graph.name)]()
    compiled = compile_graph(graph)
    exported.load_state_dict(compiled.state_dict(), strict=True)
    assert [n for n, p in exported.named_parameters() if p.requires_grad] == ["fc2.weight", "fc2.bias"]
    x = torch.randn(5, 4)
    assert torch.equal(exported(x), compiled(x))


def test_a_frozen_parameterless_layer_adds_nothing_to_the_export():
    assert export_python(load_graph(frozen_mlp("act"))) == export_python(load_graph(mlp()))


def test_summary_table_marks_frozen_nodes_and_counts_what_trains(tmp_path, capsys):
    path = tmp_path / "frozen.json"
    path.write_text(json.dumps(frozen_mlp("fc1")))
    assert main(["summary", str(path)]) == 0
    table = capsys.readouterr().out
    assert "fc1 (frozen)" in table and "fc2 (frozen)" not in table
    assert table.rstrip().splitlines()[-1].split() == ["trainable", "51"]
    path.write_text(json.dumps(mlp()))
    assert main(["summary", str(path)]) == 0
    assert "trainable" not in capsys.readouterr().out
