"""The published models built from blocks: exact sizes, and an export that computes the same.

Each is compiled, run once, exported, and the exported class (given the compiled state_dict,
loaded strictly) must give identical outputs; shared weights must stay one tensor in both.
"""

from __future__ import annotations

import pytest
import torch

from dlstudio import analyze, load_graph
from tests.conftest import GRAPHS
from tests.core.torch_agree import exported_matches_compiled, ruff_problems

#: name -> (parameters, most nodes at the top level, output shapes at batch 1, sizes to run at)
PUBLISHED = {
    "resnet18": (11_689_512, 25, [(1, 1000)], {}),
    "resnet50": (25_557_032, 25, [(1, 1000)], {}),
    "gpt2_small": (124_439_808, 10, [(1, 9, 50257)], {"T": 9}),
    "mamba_130m": (129_135_360, 10, [(1, 9, 50280)], {"T": 9}),
    "transformer_base": (63_082_496, 15, [(1, 9, 37000)], {"S": 11, "T": 9}),
    "bert_base": (109_482_240, 15, [(1, 9, 768), (1, 768)], {"T": 9}),
    "mobilenet_v2": (3_504_872, 16, [(1, 1000)], {}),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_size_output_and_export(name):
    params, most_nodes, outputs, sizes = PUBLISHED[name]
    graph = load_graph(GRAPHS / f"{name}.json")
    analysis = analyze(graph)
    assert analysis.ok, [d.one_line() for d in analysis.errors]
    assert analysis.total_params == params
    assert len(graph.nodes) <= most_nodes and graph.blocks
    assert [shape.concrete({"N": 1, **sizes}) for shape in analysis.outputs().values()] == outputs
    torch.manual_seed(0)
    source = exported_matches_compiled(analysis, sizes)
    for block in graph.blocks:
        assert source.count(f"class {block}(nn.Module):") == 1, f"one class per block: {block}"
    assert not ruff_problems(source)


def test_tied_heads_share_one_tensor_and_count_once():
    from dlstudio.core.compiler import compile_graph

    for name, tied in (("gpt2_small", ("lm_head", "wte")), ("mamba_130m", ("lm_head", "embedding"))):
        module = compile_graph(load_graph(GRAPHS / f"{name}.json"))
        head, embedding = (getattr(module, attr) for attr in tied)
        assert head.weight is embedding.weight
        assert sum(p.numel() for p in module.parameters()) == PUBLISHED[name][0]
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        assert sum(p.numel() for group in optimizer.param_groups for p in group["params"]) == PUBLISHED[name][0]
        del module, optimizer


def test_state_dict_keys_follow_the_nesting():
    from dlstudio.core.compiler import compile_graph

    keys = set(compile_graph(load_graph(GRAPHS / "resnet50.json")).state_dict())
    assert {"layer1.down.conv1.weight", "layer3.rest.4.conv3.weight", "layer4.down.down_bn.running_mean"} <= keys
    keys = set(compile_graph(load_graph(GRAPHS / "gpt2_small.json")).state_dict())
    assert {"h.0.attn.in_proj_weight", "h.11.fc.weight", "lm_head.weight", "wte.weight"} <= keys
