"""Each node's share of zero weights, what the canvas colours and ``summary --weights`` prints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlstudio.core.analysis import analyze
from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module, compile_graph
from dlstudio.core.io import load_graph
from dlstudio.core.sparsity import node_sparsity, prunable, scope_sparsity, sparse_flops, zero_count
from tests.conftest import GRAPHS, ROOT


def test_only_matrices_and_kernels_named_weight_are_prunable():
    assert prunable("fc.weight", torch.ones(3, 4)) and prunable("attn.in_proj_weight", torch.ones(6, 2))
    assert prunable("lstm.weight_ih_l0", torch.ones(8, 2))
    assert not prunable("fc.bias", torch.ones(3)) and not prunable("norm.weight", torch.ones(3))
    assert not prunable("pos.table", torch.ones(3, 4)) and not prunable("ids.weight", torch.ones(3, 4, dtype=torch.long))


def test_each_node_with_weights_reports_its_share_of_zeros():
    analysis = analyze(load_graph(GRAPHS / "cnn_digits.json"))
    state = build_module(plan_module(analysis)).state_dict()
    state["conv1.weight"].view(-1)[: state["conv1.weight"].numel() // 4] = 0
    state["fc2.weight"].zero_()
    state["fc1.bias"].zero_()  # biases do not count
    found = node_sparsity(analysis, state)
    assert found == {"conv1": 0.25, "conv2": 0.0, "fc1": 0.0, "fc2": 1.0}


def test_nodes_inside_blocks_are_keyed_by_their_path_and_a_block_counts_all_inside_it():
    analysis = analyze(load_graph(ROOT / "tests" / "core" / "blocks_data" / "residual.json"))
    state = build_module(plan_module(analysis)).state_dict()
    state["h.1.fc1.weight"].zero_()
    state["wte.weight"][:50] = 0  # tied: the head's weight is the same tensor
    found = node_sparsity(analysis, state)
    assert set(found) == {"wte", "head", "h", *(f"h.{i}.fc{j}" for i in range(3) for j in (1, 2))}
    assert found["h.1.fc1"] == 1.0 and found["h.0.fc1"] == found["h.2.fc2"] == 0.0
    assert found["wte"] == found["head"] == 0.5
    inside = [state[f"h.{i}.fc{j}.weight"].numel() for i in range(3) for j in (1, 2)]
    assert found["h"] == pytest.approx(state["h.1.fc1.weight"].numel() / sum(inside))
    assert zero_count(state) == (50 * 32 + state["h.1.fc1.weight"].numel(), 100 * 32 + sum(inside))


def test_sparse_flops_scale_each_node_by_its_non_zero_share():
    analysis = analyze(load_graph(GRAPHS / "cnn_digits.json"))
    flops = analysis.flops
    assert sparse_flops(analysis, {}) == analysis.total_flops
    assert sparse_flops(analysis, {"fc1": 0.5, "conv2": 1.0}) == analysis.total_flops - flops["fc1"] // 2 - flops["conv2"]


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
    assert found["layers"] == 6 / 12 and found["embedding"] == 0.0  # norm scales and biases do not count
    inner = scope_sparsity(analysis, ("MambaLayer",), keys)
    assert inner == {"mixer": 0.5}
    assert scope_sparsity(analysis, (), keys) == {"embedding": 0.0, "layers": 0.5}


def test_torch_tensors_and_keys_of_unknown_nodes():
    analysis = analyze(load_graph(GRAPHS / "mlp_iris.json"))
    state = {f"{n}.weight": torch.tensor([[0.0, 1.0], [0.0, 0.0]]) for n, count in analysis.param_counts.items() if count}
    state["ghost.weight"] = torch.zeros(3)
    found = node_sparsity(analysis, state)
    assert "ghost" not in found and set(found.values()) == {0.75}
