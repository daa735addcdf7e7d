"""Blocks (named subgraphs used as layers), repeats and tied parameters, end to end in core."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dlstudio.core.analysis import analyze
from dlstudio.core.blocks import ExpressionError, bind, evaluate
from dlstudio.core.io import graph_to_json, load_graph

RESIDUAL = Path(__file__).parent / "blocks_data" / "residual.json"


def _doc() -> dict:
    return json.loads(RESIDUAL.read_text())


def test_a_block_is_analysed_per_copy_and_counts_once_what_is_tied():
    analysis = analyze(load_graph(RESIDUAL))
    assert analysis.ok, [d.one_line() for d in analysis.diagnostics]
    copies = analysis.blocks["h"]
    assert [c.env for c in copies] == [{"width": 32, "scale": 4}, {"width": 32, "scale": 2}] + [
        {"width": 32, "scale": 2}]
    assert copies[1] is copies[2]  # alike copies are analysed once
    # embedding 100x32, copy 0: 32->128->32, copies 1-2: 32->64->32, the head shares the embedding
    expected = 3200 + (32 * 128 + 128 + 128 * 32 + 32) + 2 * (32 * 64 + 64 + 64 * 32 + 32)
    assert analysis.total_params == expected
    assert analysis.param_counts["head"] == 0
    assert str(analysis.outputs()["out"]) .startswith("[N, T, 100]")


def test_files_with_blocks_save_as_version_two_and_round_trip_byte_identically(tmp_path):
    graph = load_graph(RESIDUAL)
    text = graph_to_json(graph)
    assert json.loads(text)["version"] == 2
    (tmp_path / "g.json").write_text(text)
    assert graph_to_json(load_graph(tmp_path / "g.json")) == text


def test_a_problem_inside_a_block_is_named_by_its_path():
    doc = _doc()
    doc["blocks"]["Residual"]["nodes"][3]["params"]["out_features"] = 7  # fc2 no longer fits the Add
    analysis = analyze(load_graph(doc))
    messages = [d.message for d in analysis.errors]
    assert any(m.startswith("h[0].add: ") for m in messages), messages
    assert all(d.node == "h" for d in analysis.errors)


def test_a_block_that_uses_itself_is_a_diagnostic_naming_the_cycle():
    doc = _doc()
    doc["blocks"]["Loop"] = copy.deepcopy(doc["blocks"]["Residual"])
    doc["blocks"]["Loop"]["nodes"][2]["type"] = "Residual"
    doc["blocks"]["Residual"]["nodes"][2] = {"id": "act", "type": "Loop"}
    analysis = analyze(load_graph(doc))
    assert any("uses itself: Residual -> Loop -> Residual" in d.message for d in analysis.errors)


def test_a_block_named_like_a_built_in_is_refused():
    doc = _doc()
    doc["blocks"]["Linear"] = doc["blocks"].pop("Residual")
    analysis = analyze(load_graph(doc))
    assert any("has the name of a built-in layer type" in d.message for d in analysis.errors)


def test_a_tie_between_shapes_that_differ_names_both_shapes_and_the_fix():
    doc = _doc()
    doc["nodes"][3]["params"]["out_features"] = 99
    analysis = analyze(load_graph(doc))
    (error,) = [d for d in analysis.errors if d.node == "head"]
    assert "[99, 32]" in error.message and "[100, 32]" in error.message and error.fix


def test_a_tie_to_a_missing_parameter_lists_what_can_be_shared():
    doc = _doc()
    doc["nodes"][3]["tie"] = {"weight": "wte.bias"}
    (error,) = analyze(load_graph(doc)).errors
    assert "'bias', which 'wte' does not have" in error.message and "weight" in error.message


def test_repeat_needs_one_output():
    doc = _doc()
    block = doc["blocks"]["Residual"]
    block["nodes"].append({"id": "z", "type": "Output"})
    block["edges"].append({"source": "fc1", "target": "z"})
    errors = analyze(load_graph(doc)).errors
    assert any("repeats a block with 2 outputs" in d.message for d in errors)


def test_expressions_are_evaluated_without_running_code():
    assert evaluate("$channels * 4", {"channels": 16}) == 64
    assert evaluate("$2 if index == 0 else 1", {"index": 0}) == 2
    assert bind("$width * scale + index", {"width": 3, "scale": 2}) == "$3 * 2 + index"
    for hostile in ("$__import__('os').system('true')", "$(1).__class__", "$[x for x in range(9)]",
                    "$9 ** 9 ** 9", "$" + "1+" * 200 + "1", "$lambda: 1"):
        with pytest.raises(ExpressionError):
            evaluate(hostile, {})


def test_compiled_keys_follow_the_nesting_and_the_export_computes_the_same(tmp_path):
    torch = pytest.importorskip("torch")
    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.export import export_python

    graph = load_graph(RESIDUAL)
    module = compile_graph(graph)
    keys = list(module.state_dict())
    assert keys[:3] == ["wte.weight", "h.0.fc1.weight", "h.0.fc1.bias"] and "h.2.fc2.bias" in keys
    assert module.head.weight is module.wte.weight
    assert sum(p.numel() for p in module.parameters()) == analyze(graph).total_params
    source = export_python(graph)
    assert source.count("class Residual(nn.Module):") == 1
    assert "[Residual(scale=4 if index == 0 else 2) for index in range(3)]" in source
    namespace: dict = {}
    exec(compile(source, "exported.py", "exec"), namespace)  # noqa: S102  (our own export)
    exported = namespace["Blocky"]()
    exported.load_state_dict(module.state_dict(), strict=True)
    assert exported.head.weight is exported.wte.weight
    tokens = torch.randint(0, 100, (2, 7))
    torch.testing.assert_close(exported(tokens), module(tokens), rtol=0, atol=0)


def test_the_release_that_writes_version_two_is_the_one_a_version_one_reader_names():
    import dlstudio
    from dlstudio.core.io import required_app_version

    # a version-1 reader refuses a file with blocks with "requires DL Studio >= 0.2"
    assert dlstudio.__version__.startswith(required_app_version(2) + ".")


def test_summary_lists_the_nodes_inside_blocks_by_their_state_dict_paths():
    from dlstudio.core.summary import summarize

    rows = summarize(load_graph(RESIDUAL), depth=2).rows()
    assert [r.node for r in rows if r.level == 1][:3] == ["h.0.fc1", "h.0.act", "h.0.fc2"]
    assert sum(r.params for r in rows if r.level == 1) == next(r.params for r in rows if r.node == "h")
    assert all(r.level == 0 for r in summarize(load_graph(RESIDUAL)).rows())


def test_a_node_frozen_inside_a_block_is_frozen_in_every_copy():
    torch = pytest.importorskip("torch")
    from dlstudio.core.compiler import compile_graph

    doc = _doc()
    doc["blocks"]["Residual"]["nodes"][1]["frozen"] = True  # fc1
    analysis = analyze(load_graph(doc))
    fc1 = (32 * 128 + 128) + 2 * (32 * 64 + 64)
    assert analysis.trainable_params == analysis.total_params - fc1
    module = compile_graph(analysis)
    assert all(not module.h[i].fc1.weight.requires_grad for i in range(3))
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == analysis.trainable_params
    assert isinstance(module.h[0].fc2.weight, torch.nn.Parameter) and module.h[0].fc2.weight.requires_grad


def test_probes_record_the_nodes_inside_blocks_by_path():
    torch = pytest.importorskip("torch")
    from dlstudio.core.codegen import plan_module
    from dlstudio.core.compiler import build_module
    from dlstudio.train.probes import ProbeCapture

    analysis = analyze(load_graph(RESIDUAL))
    plan = plan_module(analysis)
    module = build_module(plan)
    tokens = torch.randint(0, 100, (4, 6))
    target = torch.randint(0, 100, (4, 6))

    def loss(scores, labels):
        return torch.nn.functional.cross_entropy(scores.transpose(1, 2), labels)

    report = ProbeCapture(module, plan, analysis, [tokens], target, loss, None, False).run(0, 0)
    assert {"h", "h.0.fc1", "h.2.add", "head"} <= set(report.stats)
    assert report.stats["h.1.fc2"].grad_norm is not None and report.stats["h.1.fc2"].param_norm > 0
    with torch.no_grad():
        assert report.stats["head"].mean == pytest.approx(float(module(tokens[:16]).mean()), rel=1e-5)


def test_a_lora_adapter_inside_a_block_takes_the_pretrained_linear_weights_by_nested_key():
    pytest.importorskip("torch")
    from dlstudio.core.compiler import compile_graph

    plain = compile_graph(load_graph(RESIDUAL))
    doc = _doc()
    doc["blocks"]["Residual"]["nodes"][1] = {"id": "fc1", "type": "LoRALinear",
                                             "params": {"out_features": "$width * scale", "r": 4}}
    adapted = compile_graph(load_graph(doc))
    missing, unexpected = adapted.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".fc1.lora_" in key for key in missing)


TIED_AUTOENCODER = {
    "format": "dlstudio.graph", "version": 2, "name": "tied autoencoder",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [16]}},
        {"id": "enc", "type": "Linear", "params": {"out_features": 4}},
        {"id": "dec", "type": "Linear", "params": {"out_features": 16}, "tie": {"weight": "enc.weight.T"}},
        {"id": "out", "type": "Output"},
    ],
    "edges": [{"source": "x", "target": "enc"}, {"source": "enc", "target": "dec"},
              {"source": "dec", "target": "out"}],
}


def test_a_transposed_tie_is_named_explicitly_and_shares_one_tensor():
    torch = pytest.importorskip("torch")
    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.export import export_python

    plain = copy.deepcopy(TIED_AUTOENCODER)
    plain["nodes"][2]["tie"] = {"weight": "enc.weight"}
    (error,) = analyze(load_graph(plain)).errors
    assert 'they are transposed: write "enc.weight.T"' in error.message
    analysis = analyze(load_graph(TIED_AUTOENCODER))
    assert analysis.ok and analysis.total_params == (16 * 4 + 4) + 16
    module = compile_graph(analysis)
    assert module.dec.parametrizations.weight.original is module.enc.weight
    assert sum(p.numel() for p in module.parameters()) == analysis.total_params
    torch.testing.assert_close(module.dec.weight, module.enc.weight.T)
    namespace: dict = {}
    exec(compile(export_python(analysis), "tied.py", "exec"), namespace)  # noqa: S102  (our own export)
    exported = namespace["TiedAutoencoder"]()
    exported.load_state_dict(module.state_dict(), strict=True)
    x = torch.randn(3, 16)
    torch.testing.assert_close(exported(x), module(x), rtol=0, atol=0)
    assert exported.dec.parametrizations.weight.original is exported.enc.weight


def test_repeats_of_repeats_that_would_build_too_many_nodes_are_refused_quickly():
    import time

    blocks = {"L0": {"params": {}, "nodes": [{"id": "x", "type": "Input"}, {"id": "r", "type": "ReLU"},
                                             {"id": "y", "type": "Output"}],
                     "edges": [{"source": "x", "target": "r"}, {"source": "r", "target": "y"}]}}
    for level in range(1, 8):
        blocks[f"L{level}"] = {"params": {}, "nodes": [
            {"id": "x", "type": "Input"}, {"id": "b", "type": f"L{level - 1}", "params": {"repeat": 1000}},
            {"id": "y", "type": "Output"}], "edges": [{"source": "x", "target": "b"}, {"source": "b", "target": "y"}]}
    doc = {"format": "dlstudio.graph", "version": 2, "name": "bomb", "blocks": blocks,
           "nodes": [{"id": "x", "type": "Input", "params": {"shape": [4]}}, {"id": "b", "type": "L7"},
                     {"id": "out", "type": "Output"}],
           "edges": [{"source": "x", "target": "b"}, {"source": "b", "target": "out"}]}
    started = time.perf_counter()
    errors = analyze(load_graph(doc)).errors
    assert time.perf_counter() - started < 10
    assert any("MAX_EXPANDED_NODES" in d.message for d in errors)


@pytest.mark.parametrize(("where", "name"), [("param", "x: int = 0) -> None:\n    import os #"),
                                             ("param", "torch"), ("block", "nn"), ("block", "super")])
def test_names_that_would_reach_generated_code_must_be_plain(where, name):
    doc = _doc()
    if where == "param":
        doc["blocks"]["Residual"]["params"][name] = 1
    else:
        doc["blocks"][name] = doc["blocks"].pop("Residual")
        doc["nodes"][2]["type"] = name
    errors = analyze(load_graph(doc)).errors if where == "param" or name.isidentifier() else []
    assert any("not a plain name" in d.message or "Python or the generated code uses" in d.message
               for d in errors)


def test_an_expression_reaches_the_export_re_printed_from_its_syntax_tree():
    pytest.importorskip("torch")
    from dlstudio.core.export import export_python

    doc = _doc()
    doc["blocks"]["Residual"]["nodes"][1]["params"]["out_features"] = "$(width # a comment\n * scale)"
    doc["nodes"][2]["params"] = {"repeat": 2, "scale": "$3 if index == 0 else 2"}
    source = export_python(load_graph(doc))
    assert "nn.Linear(width, width * scale)" in source and "comment" not in source


@pytest.mark.parametrize(("type_name", "params", "shape"), [
    ("Linear", {"out_features": 5}, (3, 4)),
    ("Linear", {"out_features": 5, "bias": False}, (4,)),
    ("Embedding", {"num_embeddings": 9, "embedding_dim": 3}, None),
    ("Conv1d", {"out_channels": 6, "kernel_size": 3, "groups": 2}, (4, 10)),
    ("Conv2d", {"out_channels": 4, "kernel_size": [3, 2], "bias": False}, (2, 8, 8)),
    ("ConvTranspose2d", {"out_channels": 6, "kernel_size": 3, "groups": 2}, (4, 5, 5)),
    ("Conv3d", {"out_channels": 2, "kernel_size": 2}, (1, 4, 4, 4)),
])
def test_declared_parameter_shapes_are_torch_s(type_name, params, shape):
    pytest.importorskip("torch")
    from dlstudio.core.compiler import compile_graph

    if shape is None:
        first = {"id": "x", "type": "Input", "params": {"shape": [5], "dtype": "int64"}}
    else:
        first = {"id": "x", "type": "Input", "params": {"shape": list(shape)}}
    doc = {"format": "dlstudio.graph", "version": 1, "name": "one",
           "nodes": [first, {"id": "layer", "type": type_name, "params": params}, {"id": "y", "type": "Output"}],
           "edges": [{"source": "x", "target": "layer"}, {"source": "layer", "target": "y"}]}
    analysis = analyze(load_graph(doc))
    declared = analysis.catalogue[type_name].weights(analysis.params["layer"])
    actual = {name: tuple(p.shape) for name, p in compile_graph(analysis).layer.named_parameters()}
    assert declared == actual
