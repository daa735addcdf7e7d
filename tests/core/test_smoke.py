"""A small end-to-end check of load -> analyze -> compile -> export."""

import torch

from dlstudio import analyze, compile_graph, export_python, load_graph

MLP = {
    "format": "dlstudio.graph", "version": 1, "name": "tiny mlp",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [64]}},
        {"id": "fc1", "type": "Linear", "params": {"out_features": 32}},
        {"id": "act", "type": "ReLU"},
        {"id": "fc2", "type": "Linear", "params": {"out_features": 10}},
        {"id": "out", "type": "Output"},
    ],
    "edges": [
        {"source": "x", "target": "fc1"}, {"source": "fc1", "target": "act"},
        {"source": "act", "target": "fc2"}, {"source": "fc2", "target": "out"},
    ],
}


def test_mlp_end_to_end():
    analysis = analyze(load_graph(MLP))
    assert analysis.ok, analysis.diagnostics
    module = compile_graph(analysis)
    assert module(torch.randn(3, 64)).shape == (3, 10)
    assert analysis.total_params == sum(p.numel() for p in module.parameters())
    namespace: dict = {}
    exec(compile(export_python(analysis), "model.py", "exec"), namespace)
    exported = namespace["TinyMlp"]()
    exported.load_state_dict(module.state_dict(), strict=True)
    x = torch.randn(2, 64)
    assert torch.equal(exported(x), module(x))


def test_mismatched_in_features_names_both_sizes_and_the_fix():
    graph = load_graph(MLP)
    graph.node("fc2").params["in_features"] = 31
    messages = [d.one_line() for d in analyze(graph).errors]
    assert messages == [
        "fc2: Linear 'fc2' expects last dimension 31 but gets 32 from 'act' "
        "(remove in_features to infer it, or set it to 32)"
    ]
