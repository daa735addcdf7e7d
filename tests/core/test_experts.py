"""MixtureOfExperts against torch: shapes, counts, FLOPs, a naive per-token reference, the
load-balancing loss, gradients, mixed precision, deterministic mode and export.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlstudio import compile_graph, export_python
from dlstudio.core.helpers import SUPPORT
from dlstudio.core.naming import class_name
from tests.core.layer_check import check_layer
from tests.core.torch_agree import agree, analyse, errors, exported_matches_compiled, ruff_problems

MixtureOfExperts = SUPPORT["MixtureOfExperts"]

CASES = [
    ({"num_experts": 4, "top_k": 2, "hidden_dim": 8}, [(5, 6)]),
    ({"num_experts": 3, "top_k": 1, "bias": False, "activation": "relu"}, [(4,)]),
    ({"num_experts": 2, "top_k": 2, "activation": "silu", "return_aux_loss": False}, [(2, 3, 4)]),
    ({"num_experts": 1, "top_k": 1, "hidden_dim": 3}, [(1, 2, 1, 1, 1, 5)]),
    ({}, [(7, 16)]),
]


def naive(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Token by token: the top_k router scores, their softmax, the weighted expert outputs."""
    tokens = x.reshape(-1, x.shape[-1])
    out = torch.zeros_like(tokens)
    for t, token in enumerate(tokens):
        scores, chosen = layer.router(token).topk(layer.top_k)
        weights = scores.softmax(dim=-1)
        for weight, expert in zip(weights, chosen.tolist(), strict=True):
            out[t] += weight * layer.experts[expert](token)
    return out.reshape(x.shape)


def balance_formula(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """num_experts x sum_e (share of routed (token, choice) pairs on e) x (mean probability of e)."""
    logits = layer.router(x.reshape(-1, x.shape[-1]))
    chosen = logits.topk(layer.top_k, dim=-1).indices
    share = nn.functional.one_hot(chosen, layer.num_experts).sum(dim=(0, 1)) / len(logits)
    return layer.num_experts * (share * logits.softmax(dim=-1).mean(dim=0)).sum()


def _layer(module: nn.Module) -> nn.Module:
    return module.get_submodule("layer")


@pytest.mark.parametrize(("params", "shapes"), CASES)
def test_shapes_parameter_count_and_flops_match_torch(params, shapes):
    analysis = check_layer("MixtureOfExperts", params, shapes)
    p = analysis.params["layer"]
    e, h, n = p["embed_dim"], p["hidden_dim"] or 4 * p["embed_dim"], p["num_experts"]
    assert analysis.param_counts["layer"] == n * e + n * (2 * e * h + (h + e if p["bias"] else 0))
    if p["return_aux_loss"]:
        assert analysis.ports[("layer", "aux_loss")].shape == ()


@pytest.mark.parametrize(("params", "shapes"), CASES)
def test_export_is_ruff_clean_and_loads_compiled_weights(params, shapes):
    source = exported_matches_compiled(analyse("MixtureOfExperts", params, shapes))
    assert ruff_problems(source) == ""


@settings(max_examples=20, deadline=None)
@given(
    embed_dim=st.integers(1, 6),
    num_experts=st.integers(1, 5),
    top_k=st.integers(1, 6),
    hidden_dim=st.integers(1, 7),
    activation=st.sampled_from(["gelu", "relu", "silu"]),
    bias=st.booleans(),
    lead=st.lists(st.integers(1, 3), max_size=3),
)
def test_output_is_the_naive_per_token_mixture(embed_dim, num_experts, top_k, hidden_dim,
                                                activation, bias, lead):
    params = {"num_experts": num_experts, "top_k": top_k, "hidden_dim": hidden_dim,
              "activation": activation, "bias": bias}
    layer = MixtureOfExperts(embed_dim, **params).eval()
    shape = (*lead, embed_dim)
    agree("MixtureOfExperts", params, [shape], layer, module=layer)
    if top_k > num_experts:
        return
    layer, x = layer.double(), torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        out, aux = layer(x)
        torch.testing.assert_close(out, naive(layer, x))
        torch.testing.assert_close(aux, balance_formula(layer, x))


def test_balance_loss_is_top_k_when_the_load_is_uniform():
    """One-hot tokens, each expert's own row in the router: every expert gets the same share."""
    layer = MixtureOfExperts(4, num_experts=4, top_k=1)
    with torch.no_grad():
        layer.router.weight.copy_(torch.eye(4) * 3)
        x = torch.eye(4).repeat(5, 1)
        _, aux = layer(x)
    assert float(aux) == pytest.approx(1.0)
    share = torch.bincount(layer.router(x).argmax(dim=-1), minlength=4)
    assert share.tolist() == [5, 5, 5, 5]


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_balance_loss_is_top_k_when_the_router_is_uniform(top_k):
    layer = MixtureOfExperts(6, num_experts=5, top_k=top_k)
    with torch.no_grad():
        layer.router.weight.zero_()
        _, aux = layer(torch.randn(3, 7, 6))
    assert float(aux) == pytest.approx(top_k)


@pytest.mark.parametrize("top_k", [1, 2])
def test_balance_loss_grows_toward_num_experts_as_routing_collapses(top_k):
    layer = MixtureOfExperts(3, num_experts=6, top_k=top_k)
    x = torch.rand(40, 3) + 0.1
    with torch.no_grad():
        layer.router.weight.copy_(torch.full((6, 3), -1.0))
        layer.router.weight[:top_k] = 50.0
        _, aux = layer(x)
    assert 5.9 < float(aux) <= 6.0


def test_gradients_reach_every_expert_and_the_router():
    torch.manual_seed(0)
    layer = MixtureOfExperts(8, num_experts=4, top_k=2, hidden_dim=6)
    out, aux = layer(torch.randn(4, 16, 8))
    assert torch.bincount(layer.router(torch.randn(64, 8)).topk(2).indices.flatten()).min() > 0
    (out.square().mean() + 0.01 * aux).backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("tokens", "num_experts", "top_k"), [(11, 1, 1), (11, 4, 2), (2, 5, 1), (9, 5, 3)])
def test_the_dense_form_torch_export_traces_gives_the_sparse_dispatchs_outputs(tokens, num_experts, top_k):
    """Every expert on every token (what ONNX runs), then each token's top_k outputs: the
    sparse dispatch's outputs and counts, experts without tokens included."""
    layer = MixtureOfExperts(6, num_experts=num_experts, top_k=top_k).double()
    x = torch.randn(tokens, 6, dtype=torch.float64)
    chosen = layer.router(x).topk(top_k).indices
    with torch.no_grad():
        (sparse, counts), (dense, dense_counts) = layer.sparse(x, chosen), layer.dense(x, chosen)
    assert torch.equal(dense_counts, counts) and int(counts.sum()) == tokens * top_k
    torch.testing.assert_close(dense, sparse, rtol=1e-12, atol=1e-12)


def test_an_expert_without_tokens_gets_a_zero_gradient_not_none():
    layer = MixtureOfExperts(3, num_experts=4, top_k=2)
    with torch.no_grad():
        layer.router.weight.copy_(torch.tensor([[1.0], [2.0], [3.0], [-1.0]]).expand(4, 3))
    out, _ = layer(torch.rand(10, 3) + 0.1)
    out.sum().backward()
    for index, used in enumerate([False, True, True, False]):
        grads = [p.grad for p in layer.experts[index].parameters()]
        assert all(g is not None and bool(g.any()) == used for g in grads), index


def test_with_top_k_1_the_router_learns_from_the_aux_loss_only():
    layer = MixtureOfExperts(5, num_experts=3, top_k=1)
    out, aux = layer(torch.randn(12, 5))
    (grad,) = torch.autograd.grad(out.square().sum(), layer.router.weight, retain_graph=True)
    assert not grad.any()
    (grad,) = torch.autograd.grad(aux, layer.router.weight)
    assert grad.any()


def test_top_k_1_without_the_aux_loss_is_a_warning():
    analysis = analyse("MixtureOfExperts", {"top_k": 1, "return_aux_loss": False}, [(4,)])
    assert analysis.ok
    assert [d.fix for d in analysis.diagnostics if d.severity == "warning"] == [
        "set top_k to 2 or more, or turn on return_aux_loss and train with it"
    ]
    assert analyse("MixtureOfExperts", {"top_k": 1}, [(4,)]).diagnostics == []


def test_without_the_aux_loss_the_node_has_one_output():
    analysis = analyse("MixtureOfExperts", {"return_aux_loss": False}, [(3, 4)])
    assert [port for node, port in analysis.ports if node == "layer"] == ["output"]
    module = compile_graph(analysis).eval()
    result = module(torch.randn(2, 3, 4))
    assert isinstance(result, torch.Tensor) and result.shape == (2, 3, 4)
    assert "layer_output, _ = self.layer(x0)" in export_python(analysis)


def test_top_k_above_num_experts_is_explained():
    assert errors("MixtureOfExperts", {"num_experts": 3, "top_k": 4}, [(4,)]) == [
        "layer: MixtureOfExperts 'layer' routes each token to top_k=4 experts but has only "
        "num_experts=3 (set top_k to at most 3, or num_experts to at least 4)"
    ]


def test_embed_dim_is_inferred_and_a_wrong_value_is_explained():
    analysis = analyse("MixtureOfExperts", {}, [(2, 7)])
    assert analysis.params["layer"]["embed_dim"] == 7
    assert analysis.ports[("layer", "output")].shape == ("N", 2, 7)
    assert errors("MixtureOfExperts", {"embed_dim": 5}, [(7,)]) == [
        "layer: MixtureOfExperts 'layer' expects feature size (last dimension) 5 but gets 7 "
        "from 'x0' (remove embed_dim to infer it, or set it to 7)"
    ]


@pytest.mark.parametrize(
    ("params", "shapes", "dtypes", "needle"),
    [
        ({}, [(4,)], ["int64"], "floating-point"),
        ({}, [()], None, "expects a 2 or 3"),
        ({}, [(1, 1, 1, 1, 1, 1, 1, 4)], None, "gets 9-D"),
        ({"num_experts": 0}, [(4,)], None, "num_experts=0 is not valid"),
        ({"hidden_dim": 0}, [(4,)], None, "hidden_dim=0 is not valid"),
        ({"activation": "tanh"}, [(4,)], None, "activation='tanh' is not valid"),
    ],
)
def test_bad_inputs_and_parameters_are_refused(params, shapes, dtypes, needle):
    found = errors("MixtureOfExperts", params, shapes, dtypes)
    assert len(found) == 1 and needle in found[0], found


def test_bf16_autocast_on_cpu_runs_forward_and_backward():
    torch.manual_seed(0)
    layer = MixtureOfExperts(8, num_experts=4, top_k=2)
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        expected, expected_aux = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, aux = layer(x)
    assert out.dtype == aux.dtype == torch.float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        routed = layer.router(x).topk(2).indices.sort().values
    same = (routed == layer.router(x).topk(2).indices.sort().values).all(dim=-1)
    assert same.float().mean() > 0.8  # bf16 rounding may flip a near tie between experts
    torch.testing.assert_close(out[same], expected[same], rtol=0.05, atol=0.05)
    torch.testing.assert_close(aux, expected_aux, rtol=0.05, atol=0.05)
    (out.sum() + aux).backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in layer.parameters())


def test_deterministic_mode_gives_the_same_output_and_gradients():
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = [_forward_backward(seed=3) for _ in range(2)]
    finally:
        torch.use_deterministic_algorithms(was)
    for first, second in zip(*runs, strict=True):
        assert torch.equal(first, second)


def _forward_backward(seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    layer = MixtureOfExperts(6, num_experts=4, top_k=2)
    out, aux = layer(torch.randn(2, 9, 6))
    (out.sum() + aux).backward()
    return [out.detach(), aux.detach(), *(p.grad for p in layer.parameters())]


def test_export_round_trip_carries_trained_weights():
    params = {"num_experts": 3, "top_k": 2, "hidden_dim": 8, "activation": "silu"}
    analysis = analyse("MixtureOfExperts", params, [(5, 6)])
    compiled = compile_graph(analysis).eval()
    with torch.no_grad():
        for parameter in compiled.parameters():
            parameter.add_(torch.randn_like(parameter))
    source = export_python(analysis)
    assert 'self.layer = MixtureOfExperts(6, num_experts=3, hidden_dim=8, activation="silu")' in source
    assert "layer_output, layer_aux_loss = self.layer(x0)" in source
    namespace: dict[str, Any] = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102
    exported = namespace[class_name(analysis.graph.name)]().eval()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        for ours, theirs in zip(compiled(x), exported(x), strict=True):
            assert torch.equal(ours, theirs)
    with torch.no_grad():
        torch.testing.assert_close(exported(x)[0], naive(_layer(compiled), x))
