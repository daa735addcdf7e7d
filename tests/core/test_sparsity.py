"""Each node's share of zero weights, what the canvas colours and ``summary --weights`` prints."""

from __future__ import annotations

import pytest
import torch

from dlstudio.core.analysis import analyze
from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.io import load_graph
from dlstudio.core.sparsity import node_sparsity, prunable, sparse_flops, zero_count
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
