"""Every graph in graphs/ loads, validates, compiles, exports and runs one forward pass."""

from __future__ import annotations

import pytest
import torch

from dlstudio import analyze, compile_graph, export_python, load_graph
from dlstudio.core.io import graph_to_json
from tests.conftest import GRAPHS
from tests.core.layer_check import sample_inputs

EXAMPLES = sorted(GRAPHS.glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_end_to_end(path):
    graph = load_graph(path)
    assert graph_to_json(graph) == path.read_text(), "example is not in the app's saved form"
    analysis = analyze(graph)
    assert analysis.ok, [d.one_line() for d in analysis.errors]
    module = compile_graph(analysis).eval()
    inputs = sample_inputs(analysis, {"T": 7, "S": 5})
    with torch.no_grad():
        result = module(*inputs)
    results = result if isinstance(result, tuple) else (result,)
    for tensor, expected in zip(results, analysis.outputs().values(), strict=True):
        assert tuple(tensor.shape) == expected.concrete({"N": 2, "T": 7, "S": 5})
    assert analysis.total_params == sum(p.numel() for p in module.parameters())
    namespace: dict = {}
    exec(compile(export_python(analysis), str(path), "exec"), namespace)


def test_resnet18_matches_torchvision_published_size():
    graph = load_graph(GRAPHS / "resnet18.json")
    analysis = analyze(graph)
    assert analysis.total_params == 11_689_512
    assert analysis.outputs()["logits"].concrete({"N": 1}) == (1, 1000)
    assert len(graph.nodes) <= 25 and graph.blocks
