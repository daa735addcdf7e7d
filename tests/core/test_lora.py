"""LoRALinear against torch: shapes, counts, FLOPs, frozen weights, Linear weights, merge, export.

The frozen W and b are persistent buffers named ``weight`` and ``bias``: an ``nn.Linear``'s
state_dict loads into them with ``strict=False`` (the adapter's ``lora_A`` and ``lora_B`` are
then the only missing keys), and only A and B count as, and train as, parameters.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlstudio import analyze, compile_graph, export_python, load_graph
from dlstudio.cli import main
from dlstudio.core.helpers import SUPPORT
from dlstudio.core.naming import class_name
from tests.conftest import GRAPHS
from tests.core.layer_check import check_layer
from tests.core.torch_agree import analyse, errors, exported_matches_compiled, ruff_problems

LoRALinear = SUPPORT["LoRALinear"]

CASES = [
    ({"out_features": 5, "r": 2}, [(7,)]),
    ({"out_features": 6, "r": 3, "bias": False}, [(4, 9)]),
    ({"out_features": 3, "r": 1, "lora_alpha": 1.0, "lora_dropout": 0.5}, [(2, 3, 8)]),
    ({}, [(16,)]),
]


def _layer(module: nn.Module) -> nn.Module:
    return module.get_submodule("layer")


def _with_update(layer: nn.Module, seed: int = 0) -> nn.Module:
    """Give B random values, as after training (at init B is zero and the update vanishes)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator))
    return layer


@pytest.mark.parametrize(("params", "shapes"), CASES)
def test_shapes_parameter_count_and_flops_match_torch(params, shapes):
    analysis = check_layer("LoRALinear", params, shapes)
    p = analysis.params["layer"]
    assert analysis.param_counts["layer"] == p["r"] * (p["in_features"] + p["out_features"])


@pytest.mark.parametrize(("params", "shapes"), CASES)
def test_export_is_ruff_clean_and_loads_compiled_weights(params, shapes):
    source = exported_matches_compiled(analyse("LoRALinear", params, shapes))
    assert ruff_problems(source) == ""


def test_at_init_it_is_the_linear_with_the_same_weight_and_bias():
    layer = LoRALinear(6, 4, r=2)
    linear = nn.Linear(6, 4)
    linear.load_state_dict({"weight": layer.weight, "bias": layer.bias})
    x = torch.randn(5, 6)
    assert torch.equal(layer(x), linear(x))
    assert not torch.equal(_with_update(layer)(x), linear(x))


def test_only_a_and_b_are_parameters_and_only_they_train():
    layer = LoRALinear(6, 4, r=2)
    assert [name for name, _ in layer.named_parameters()] == ["lora_A", "lora_B"]
    assert set(layer.state_dict()) == {"weight", "bias", "lora_A", "lora_B"}
    frozen = {k: v.clone() for k, v in layer.state_dict().items() if k in ("weight", "bias")}
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    x, target = torch.randn(8, 6), torch.randn(8, 4)
    moved = []
    for _ in range(2):  # B starts at zero, so A's gradient is zero until B has moved
        before = {name: p.detach().clone() for name, p in layer.named_parameters()}
        optimizer.zero_grad()
        nn.functional.mse_loss(layer(x), target).backward()
        optimizer.step()
        moved.append({n for n, p in layer.named_parameters() if not torch.equal(p, before[n])})
    assert moved == [{"lora_B"}, {"lora_A", "lora_B"}]
    assert not layer.weight.requires_grad and layer.weight.grad is None
    for key, value in frozen.items():
        assert torch.equal(layer.state_dict()[key], value)


def test_a_linear_state_dict_loads_without_strict_leaving_only_the_adapter_missing():
    linear = nn.Linear(6, 4)
    layer = LoRALinear(6, 4, r=3)
    result = layer.load_state_dict(linear.state_dict(), strict=False)
    assert sorted(result.missing_keys) == ["lora_A", "lora_B"] and result.unexpected_keys == []
    assert torch.equal(layer.weight, linear.weight) and torch.equal(layer.bias, linear.bias)
    x = torch.randn(3, 2, 6)
    with torch.no_grad():
        assert torch.equal(layer(x), linear(x))
    with pytest.raises(RuntimeError, match="lora_A"):
        LoRALinear(6, 4).load_state_dict(linear.state_dict())  # strict: the adapter is missing


def test_a_compiled_graph_takes_pretrained_linear_weights_under_the_linear_keys():
    module = compile_graph(analyse("LoRALinear", {"out_features": 4, "bias": False}, [(6,)])).eval()
    linear = nn.Linear(6, 4, bias=False)
    state = {f"layer.{key}": value for key, value in linear.state_dict().items()}
    result = module.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ["layer.lora_A", "layer.lora_B"]
    x = torch.randn(2, 6)
    with torch.no_grad():
        assert torch.equal(module(x), linear(x))


@pytest.mark.parametrize("bias", [True, False])
def test_merge_keeps_the_outputs_and_leaves_a_plain_linear(bias):
    layer = _with_update(LoRALinear(8, 5, bias=bias, r=3, lora_alpha=6.0, lora_dropout=0.5)).eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        before = layer(x)
        expected = x @ layer.weight.T + (x @ layer.lora_A.T @ layer.lora_B.T) * 2.0
        expected = expected + (layer.bias if bias else 0)
        layer.merge()
        after = layer(x)
    torch.testing.assert_close(before, expected)
    torch.testing.assert_close(after, before)
    assert torch.equal(layer.lora_B, torch.zeros(5, 3))
    linear = nn.Linear(8, 5, bias=bias)
    linear.load_state_dict(
        {k: v for k, v in layer.state_dict().items() if not k.startswith("lora")}
    )
    with torch.no_grad():
        assert torch.equal(linear(x), after)


@settings(max_examples=25, deadline=None)
@given(
    in_features=st.integers(1, 12),
    out_features=st.integers(1, 12),
    r=st.integers(1, 6),
    alpha=st.sampled_from([0.0, 1.0, 8.0, 16.0]),
    bias=st.booleans(),
)
def test_output_is_the_lora_formula(in_features, out_features, r, alpha, bias):
    layer = _with_update(LoRALinear(in_features, out_features, bias, r, alpha)).eval()
    x = torch.randn(3, in_features)
    with torch.no_grad():
        expected = x @ (layer.weight + alpha / r * layer.lora_B @ layer.lora_A).T
        expected = expected + (layer.bias if bias else 0)
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_in_features_is_inferred_and_a_wrong_value_is_explained():
    analysis = analyse("LoRALinear", {"out_features": 3}, [(2, 7)])
    assert analysis.params["layer"]["in_features"] == 7
    assert analysis.ports[("layer", "output")].shape == ("N", 2, 3)
    assert errors("LoRALinear", {"in_features": 5}, [(7,)]) == [
        "layer: LoRALinear 'layer' expects last dimension 5 but gets 7 from 'x0' "
        "(remove in_features to infer it, or set it to 7)"
    ]


@pytest.mark.parametrize(
    ("params", "shapes", "dtypes", "needle"),
    [
        ({}, [(4,)], ["int64"], "floating-point"),
        ({}, [()], None, "expects a 2 or 3"),
        ({"r": 0}, [(4,)], None, "r=0 is not valid"),
        ({"lora_dropout": 1.5}, [(4,)], None, "lora_dropout=1.5 is not valid"),
        ({"lora_alpha": -1.0}, [(4,)], None, "lora_alpha=-1.0 is not valid"),
    ],
)
def test_bad_inputs_and_parameters_are_refused(params, shapes, dtypes, needle):
    found = errors("LoRALinear", params, shapes, dtypes)
    assert len(found) == 1 and needle in found[0], found


def test_a_rank_above_the_smaller_side_is_a_warning():
    analysis = analyse("LoRALinear", {"out_features": 3, "r": 4}, [(10,)])
    assert analysis.ok
    assert [d.fix for d in analysis.diagnostics if d.severity == "warning"] == [
        "set r to at most 3"
    ]


def test_export_round_trip_carries_a_trained_update():
    analysis = analyse("LoRALinear", {"out_features": 4, "r": 2, "lora_alpha": 4.0}, [(3, 6)])
    compiled = compile_graph(analysis).eval()
    _with_update(_layer(compiled))
    source = export_python(analysis)
    assert "self.layer = LoRALinear(6, 4, r=2, lora_alpha=4.0)" in source
    namespace: dict[str, Any] = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102
    exported = namespace[class_name(analysis.graph.name)]().eval()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(2, 3, 6)
    with torch.no_grad():
        assert torch.equal(exported(x), compiled(x))
        exported.layer.merge()
        torch.testing.assert_close(exported(x), compiled(x))


def test_summary_json_counts_only_what_trains(capsys):
    path = GRAPHS / "lora_digits.json"
    assert main(["summary", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    module = compile_graph(load_graph(path))
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert report["trainable_params"] == report["params"] == trainable
    adapter = next(node for node in report["nodes"] if node["type"] == "LoRALinear")
    assert adapter["params"] == 4 * (64 + 64)
    assert trainable == (64 * 64 + 64) + 4 * (64 + 64) + (64 * 10 + 10)
    frozen = sum(b.numel() for b in module.buffers())
    assert frozen == 64 * 64 + 64
    assert analyze(load_graph(path)).total_params == trainable
