"""``dlstudio import`` keeps repeated submodules as blocks: each class called alike becomes a
block, chained copies in a ModuleList one node with ``repeat``; the graph still computes what
the module computes, holds its parameters, and saves and reopens byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dlstudio import analyze, load_graph
from dlstudio.core.graph import Graph
from dlstudio.core.io import save_graph
from tests.interop import models, repeated
from tests.interop.roundtrip import (
    MODELS,
    assert_same_outputs,
    compiled,
    parameter_count,
    run_import,
)

REPEATED = Path(repeated.__file__)


def _imported(tmp_path: Path, source: str, *options: str) -> tuple[Graph, torch.nn.Module, str]:
    code, graph, weights = run_import(tmp_path, source, *options)
    assert code == 0
    return load_graph(graph), compiled(graph, weights), graph.read_text()


def _uses(graph: Graph) -> list[tuple[str, str, dict]]:
    return [(n.id, n.type, n.params) for n in graph.nodes if n.type in (graph.blocks or {})]


def test_resnet18_imports_with_a_block_per_kind_of_basic_block(tmp_path, capsys):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{MODELS}:trained_resnet18", "--input", "x=3,32,32")
    out = capsys.readouterr().out
    assert "8 submodule calls kept as 2 blocks (BasicBlock 5, BasicBlock_downsample 3)" in out
    assert list(graph.blocks) == ["BasicBlock", "BasicBlock_downsample"]
    assert len(graph.nodes) == 16 and _uses(graph) == [
        ("layer1", "BasicBlock", {"out_channels": 64, "repeat": 2}),
        *((f"layer{n}_{i}", "BasicBlock" if i else "BasicBlock_downsample",
           {"out_channels": 64 * 2 ** (n - 1)}) for n in (2, 3, 4) for i in (0, 1))]
    assert graph.node("layer2_0").label == "layer2.0"
    basic = graph.blocks["BasicBlock"]
    assert [n.id for n in basic.nodes] == ["x", "conv1", "bn1", "relu", "conv2", "bn2", "add", "relu_2", "y"]
    assert basic.node("conv2").params["out_channels"] == "$out_channels"
    assert graph.blocks["BasicBlock_downsample"].node("downsample_0").params["stride"] == 2
    torch.manual_seed(0)
    original = models.trained_resnet18()
    assert_same_outputs(original, imported, torch.randn(2, 3, 32, 32))
    # layer1 (a repeat) keeps its keys; elsewhere a node per call:
    # layer2.0.downsample.0.weight -> layer2_0.downsample_0.weight
    renamed = [re.sub(r"^(layer[234])\.(\d)\.", r"\1_\2.", key).replace("downsample.", "downsample_")
               for key in original.state_dict()]
    assert list(imported.state_dict()) == renamed


@pytest.mark.parametrize("attention", ["sdpa", "mha"])
def test_a_gpt2_style_transformer_of_4_layers_is_one_node_repeated_4_times(tmp_path, attention):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{MODELS}:GPT", "--input", "idx=T:int64",
                                   "--args", f'{{"n_layer": 4, "attention": "{attention}"}}')
    assert [n.id for n in graph.nodes] == ["idx", "wte", "wpe", "drop", "h", "ln_f", "lm_head", "output"]
    assert graph.node("h").type == "Block" and graph.node("h").params == {"repeat": 4}
    attn = "CausalSelfAttention" if attention == "sdpa" else "TorchAttention"
    assert graph.blocks["Block"].node("attn").type == attn
    torch.manual_seed(0)
    original = models.GPT(n_layer=4, attention=attention)
    for length in (4, 16):
        assert_same_outputs(original, imported, torch.randint(0, 50, (2, length)))


def test_named_submodules_keep_the_modules_state_dict_keys(tmp_path):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{REPEATED}:NanoGPT", "--input", "idx=T:int64")
    assert list(graph.blocks) == ["SelfAttention", "MLP", "Layer"]
    assert graph.node("h").params == {"repeat": 4}
    torch.manual_seed(0)
    original = repeated.NanoGPT()
    assert list(imported.state_dict()) == list(original.state_dict())
    assert_same_outputs(original, imported, torch.randint(0, 40, (3, 7)))
    keys = set(load_file(str(tmp_path / "weights.safetensors")))
    assert keys == set(original.state_dict()) and "h.3.mlp.c_fc.weight" in keys


def test_the_imported_file_saves_and_reopens_byte_for_byte_and_validates(tmp_path):
    torch.manual_seed(0)
    graph, _, text = _imported(tmp_path, f"{REPEATED}:NanoGPT", "--input", "idx=T:int64")
    save_graph(load_graph(tmp_path / "graph.json"), tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text
    assert analyze(graph).ok
    assert all(n.position is not None for n in graph.nodes)
    assert all(n.position is not None for block in graph.blocks.values() for n in block.nodes)


def test_a_model_without_repetition_stays_flat(tmp_path, capsys):
    graph, _, text = _imported(tmp_path, f"{REPEATED}:Once", "--input", "x=8")
    assert graph.blocks is None and "blocks" not in capsys.readouterr().out
    assert [n.id for n in graph.nodes] == ["x", "encoder_fc", "relu", "head", "output"]
    _imported(tmp_path, f"{REPEATED}:Once", "--input", "x=8", "--flat")
    assert (tmp_path / "graph.json").read_text() == text


def test_flat_keeps_every_layer_in_the_top_graph(tmp_path):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{REPEATED}:NanoGPT", "--input", "idx=T:int64", "--flat")
    assert graph.blocks is None and "h_3_mlp_c_fc" in graph.node_ids()
    torch.manual_seed(0)
    assert_same_outputs(repeated.NanoGPT(), imported, torch.randint(0, 40, (2, 5)))


def test_a_module_called_twice_in_each_repeated_layer_stays_tied(tmp_path):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{REPEATED}:TiedLayers", "--input", "x=8")
    assert _uses(graph) == [("layers", "Twice", {"repeat": 3})]
    assert graph.blocks["Twice"].node("fc_2").tie == {"weight": "fc.weight", "bias": "fc.bias"}
    assert imported.layers[2].fc_2.weight is imported.layers[2].fc.weight
    torch.manual_seed(0)
    assert_same_outputs(repeated.TiedLayers(), imported, torch.randn(3, 8))


def test_a_module_shared_by_repeated_layers_keeps_them_flat(tmp_path):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{REPEATED}:SharedAcrossLayers", "--input", "x=8")
    assert graph.blocks is None
    torch.manual_seed(0)
    original = repeated.SharedAcrossLayers()
    assert_same_outputs(original, imported, torch.randn(3, 8))
    assert parameter_count(imported) == parameter_count(original) == 72


def test_layers_that_differ_in_width_are_nodes_of_one_block_with_a_parameter(tmp_path):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{REPEATED}:Widening", "--input", "x=8")
    assert _uses(graph) == [("layers_1", "Head", {"out_features": 32}),
                            ("layers_2", "Head", {"out_features": 32}),
                            ("layers_3", "Head", {"out_features": 8})]
    assert graph.blocks["Head"].params == {"out_features": 32}
    torch.manual_seed(0)
    assert_same_outputs(repeated.Widening(), imported, torch.randn(3, 8))


def test_copies_side_by_side_are_not_a_repeat(tmp_path):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{REPEATED}:Heads", "--input", "x=8")
    assert _uses(graph) == [(f"heads_{i}", "Head", {}) for i in range(3)]
    torch.manual_seed(0)
    assert_same_outputs(repeated.Heads(), imported, torch.randn(3, 8))


def test_a_block_with_two_outputs_feeds_each_where_the_module_did(tmp_path):
    torch.manual_seed(0)
    graph, imported, _ = _imported(tmp_path, f"{REPEATED}:Crossed", "--input", "x=8")
    assert _uses(graph) == [("halves_0", "Halves", {}), ("halves_1", "Halves", {})]
    assert [n.id for n in graph.blocks["Halves"].nodes if n.type == "Output"] == ["y0", "y1"]
    torch.manual_seed(0)
    assert_same_outputs(repeated.Crossed(), imported, torch.randn(3, 8))
