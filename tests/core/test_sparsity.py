"""Each node's fraction of zero weights, from a state dict (the canvas's sparsity overlay)."""

from __future__ import annotations

import numpy as np
import torch

from dlstudio.core.analysis import analyze
from dlstudio.core.compiler import compile_graph
from dlstudio.core.io import load_graph
from dlstudio.core.sparsity import node_sparsity, scope_sparsity
from tests.conftest import GRAPHS


def test_zeros_are_counted_over_a_nodes_weights_but_not_its_bias_or_statistics():
    analysis = analyze(load_graph(GRAPHS / "cnn_digits.json"))
    state = compile_graph(analysis).state_dict()
    layers = [n for n in analysis.param_counts if analysis.param_counts[n]]
    conv = next(n for n in layers if n.startswith("conv"))
    weight = state[f"{conv}.weight"]
    weight.view(-1)[: weight.numel() // 2] = 0
    state[f"{conv}.bias"].fill_(0.0)  # biases are not pruned; zero is where many start
    state[f"{conv}.running_mean"] = torch.zeros(7)  # a statistic (as a norm layer keeps), not a weight
    found = node_sparsity(analysis, state)
    assert found[conv] == (weight.numel() // 2) / weight.numel()
    assert set(found) == set(layers)


def test_a_block_node_aggregates_every_copy_and_an_opened_block_shows_each_inner_node():
    analysis = analyze(load_graph(GRAPHS / "mamba_130m.json"))
    keys = {"embedding.weight": np.ones((4, 2)),
            "layers.0.mixer.in_proj.weight": np.zeros((2, 3)),
            "layers.1.mixer.in_proj.weight": np.ones((2, 3)),
            "layers.0.norm.weight": np.zeros((2,)),
            "layers.0.mixer.in_proj.bias": np.zeros((8,)),
            "layers.1.norm.weight": np.zeros((2,))}
    found = node_sparsity(analysis, keys)
    assert found["layers"] == (6 + 4) / 16 and found["embedding"] == 0.0
    inner = scope_sparsity(analysis.graph, ("MambaLayer",), keys)
    assert inner == {"mixer": 0.5, "norm": 1.0}


def test_torch_tensors_and_keys_of_unknown_nodes():
    analysis = analyze(load_graph(GRAPHS / "mlp_iris.json"))
    state = {f"{n}.weight": torch.tensor([[0.0, 1.0], [0.0, 0.0]]) for n, count in analysis.param_counts.items() if count}
    state["ghost.weight"] = torch.zeros(3)
    found = node_sparsity(analysis, state)
    assert "ghost" not in found and set(found.values()) == {0.75}
