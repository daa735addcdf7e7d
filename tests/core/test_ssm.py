"""MambaBlock against torch and against the recurrence it stands for.

The reference below is the textbook selective scan, one step at a time with nothing shared
with the block's code but its weights: h_t = exp(dt_t A) h_(t-1) + dt_t B_t x_t and
y_t = C_t h_t + D x_t. Both of the block's scans (one step at a time, which a CPU runs, and
the chunked doubling scan, which other devices run) must give its outputs.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from dlstudio import compile_graph
from dlstudio.core.catalogue.ssm import scan_products
from dlstudio.core.helpers import SUPPORT
from tests.core.layer_check import check_layer
from tests.core.torch_agree import analyse, errors, exported_matches_compiled, ruff_problems

MambaBlock = SUPPORT["MambaBlock"]

CASES = [
    ({}, [(5, 16)]),
    ({"d_state": 4, "d_conv": 2, "expand": 1}, [(3, 8)]),
    ({"d_state": 8, "dt_rank": 3, "bias": True, "conv_bias": False}, [(7, 20)]),
    ({"d_conv": 1, "expand": 3, "d_state": 1}, [(1, 4)]),
]


def reference(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The block's forward pass with its scan written as the plain recurrence."""
    d_inner, d_state = block.A_log.shape
    u, gate = block.in_proj(x).chunk(2, dim=-1)
    u = F.silu(
        F.conv1d(
            F.pad(u.transpose(1, 2), (block.d_conv - 1, 0)),
            block.conv1d.weight,
            block.conv1d.bias,
            groups=d_inner,
        ).transpose(1, 2)
    )
    dt, B, C = block.x_proj(u).split([block.dt_rank, d_state, d_state], dim=-1)
    dt = F.softplus(block.dt_proj(dt))
    A = -torch.exp(block.A_log)
    h = x.new_zeros(x.size(0), d_inner, d_state)
    ys = []
    for t in range(x.size(1)):
        h = (
            torch.exp(dt[:, t, :, None] * A) * h
            + dt[:, t, :, None] * B[:, t, None, :] * u[:, t, :, None]
        )
        ys.append((h * C[:, t, None, :]).sum(-1) + block.D * u[:, t])
    return block.out_proj(torch.stack(ys, dim=1) * F.silu(gate))


def trained_like(block: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere (D and A_log too), as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.add_(
                0.3 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            )
    return block


def chunked(block: nn.Module) -> nn.Module:
    """The same block, running the chunked doubling scan that non-CPU devices run."""
    block.sequential_scan = block.chunked_scan
    return block


@pytest.mark.parametrize(("params", "shapes"), CASES)
def test_shapes_and_parameter_count_match_torch(params, shapes):
    analysis = check_layer("MambaBlock", params, shapes, flops=False)
    p = analysis.params["layer"]
    assert p["d_model"] == shapes[0][-1]
    assert analysis.ports[("layer", "output")].shape == ("N", *shapes[0])


@pytest.mark.parametrize(("params", "shapes"), CASES)
def test_flops_are_torch_counted_products_plus_the_scans_elementwise_ones(params, shapes):
    """Torch counts the projections, the convolution and C h; not the element-wise products."""
    analysis = analyse("MambaBlock", params, shapes)
    module = compile_graph(analysis).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.randn(2, *shapes[0]))
    elementwise = shapes[0][0] * scan_products(analysis.params["layer"])
    assert 2 * (analysis.flops["layer"] - elementwise) * 2 == counter.get_total_flops()


def test_a_symbolic_length_keeps_the_shape_and_has_no_flops():
    analysis = check_layer("MambaBlock", {"d_state": 4}, [("T", 8)], sizes={"T": 9})
    assert analysis.ports[("layer", "output")].shape == ("N", "T", 8)
    assert analysis.flops["layer"] is None


@pytest.mark.parametrize(("params", "shapes"), CASES)
def test_export_is_ruff_clean_and_loads_compiled_weights(params, shapes):
    source = exported_matches_compiled(analyse("MambaBlock", params, shapes))
    assert ruff_problems(source) == ""
    assert "#" not in source.split("class MambaBlock", 1)[1]


def test_export_round_trip_carries_trained_weights_with_identical_outputs():
    analysis = analyse("MambaBlock", {"d_state": 4, "dt_rank": 2}, [("T", 12)])
    compiled = trained_like(compile_graph(analysis)).eval()
    source = exported_matches_compiled(analysis, {"T": 5})
    assert "self.layer = MambaBlock(12, d_state=4, dt_rank=2)" in source
    namespace: dict[str, Any] = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102
    exported = namespace["CheckMambaBlock"]().eval()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(3, 70, 12)
    with torch.no_grad():
        assert torch.equal(exported(x), compiled(x))


@pytest.mark.parametrize("length", [1, 2, 63, 64, 65, 130])
@pytest.mark.parametrize("scan", ["sequential", "chunked"])
def test_scan_is_the_plain_recurrence_across_chunk_boundaries(length, scan):
    block = trained_like(MambaBlock(6, d_state=5, d_conv=3, dt_rank=2).double())
    block = chunked(block) if scan == "chunked" else block
    x = torch.randn(3, length, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(block, x), rtol=1e-10, atol=1e-10)


def test_float32_scans_agree_with_the_float64_recurrence():
    block = trained_like(MambaBlock(8, d_state=4))
    x = torch.randn(2, 130, 8)
    with torch.no_grad():
        expected = reference(block.double(), x.double()).float()
        block.float()
        torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(chunked(block)(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scan", ["sequential", "chunked"])
def test_output_before_t_does_not_depend_on_input_at_or_after_t(scan):
    block = trained_like(MambaBlock(4, d_state=3, d_conv=4)).eval()
    block = chunked(block) if scan == "chunked" else block
    x = torch.randn(2, 80, 4)
    changed = x.clone()
    changed[:, 70:] += torch.randn(2, 10, 4)
    with torch.no_grad():
        before, after = block(x), block(changed)
    assert torch.equal(before[:, :70], after[:, :70])
    assert not torch.allclose(before[:, 70], after[:, 70])


@pytest.mark.parametrize("scan", ["sequential", "chunked"])
def test_gradients_are_finite_and_reach_every_parameter(scan):
    block = MambaBlock(8, d_state=4, bias=True)
    block = chunked(block) if scan == "chunked" else block
    x = torch.randn(2, 70, 8, requires_grad=True)
    block(x).square().mean().backward()
    for name, parameter in [("input", x), *block.named_parameters()]:
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("scan", ["sequential", "chunked"])
def test_a_thousand_steps_with_long_memory_and_large_steps_stay_finite(scan):
    """Steps dt up to ~20 make exp(-dt A) underflow and exp(dt A) overflow: only decays
    (factors <= 1) may be multiplied, never their inverses."""
    block = MambaBlock(8, d_state=16)
    block = chunked(block) if scan == "chunked" else block
    with torch.no_grad():
        block.dt_proj.bias.uniform_(-5.0, 20.0)
        block.A_log.add_(2.0)
    assert F.softplus(block.dt_proj.bias).max() * block.A_log.exp().max() > 1000
    x = (3 * torch.randn(2, 1000, 8)).requires_grad_()
    y = block(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert y.abs().max() > 0


def test_sequential_and_chunked_gradients_agree():
    block = trained_like(MambaBlock(6, d_state=4)).double()
    x = torch.randn(2, 100, 6, dtype=torch.float64)
    grads = []
    for run in (block, chunked(block)):
        run.zero_grad()
        run(x).sin().sum().backward()
        grads.append({name: p.grad.clone() for name, p in run.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-9, atol=1e-9)


def test_bfloat16_autocast_runs_and_stays_close_to_float32():
    block = trained_like(MambaBlock(16, d_state=8))
    x = torch.randn(2, 200, 16)
    with torch.no_grad():
        exact = block(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = block(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    error = (y.float() - exact).norm() / exact.norm()
    assert error < 0.05, error


def test_bfloat16_weights_and_inputs_run_and_stay_close_to_float32():
    block = trained_like(MambaBlock(8, d_state=4))
    x = torch.randn(2, 40, 8)
    with torch.no_grad():
        exact = block(x)
        y = block.bfloat16()(x.bfloat16())
    assert y.dtype == torch.bfloat16
    assert (y.float() - exact).norm() / exact.norm() < 0.05


def test_deterministic_algorithms_give_identical_runs():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        outputs = []
        for _ in range(2):
            torch.manual_seed(0)
            block = MambaBlock(8, d_state=4)
            x = torch.randn(2, 70, 8, requires_grad=True)
            y = block(x)
            y.sum().backward()
            outputs.append((y.detach(), x.grad))
    finally:
        torch.use_deterministic_algorithms(previous)
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])


def test_initialisation_follows_mamba():
    block = MambaBlock(32, d_state=16)
    assert block.dt_rank == math.ceil(32 / 16) == 2
    torch.testing.assert_close(block.A_log.exp()[0], torch.arange(1.0, 17.0))
    assert torch.equal(block.D, torch.ones(64))
    dt = F.softplus(block.dt_proj.bias)
    assert ((dt >= 1e-3 * 0.999) & (dt <= 0.1 * 1.001)).all()
    names = [name for name, _ in block.named_parameters()]
    assert names == [
        "A_log",
        "D",
        "in_proj.weight",
        "conv1d.weight",
        "conv1d.bias",
        "x_proj.weight",
        "dt_proj.weight",
        "dt_proj.bias",
        "out_proj.weight",
    ]


@settings(max_examples=15, deadline=None)
@given(
    d_model=st.integers(1, 10),
    d_state=st.integers(1, 6),
    d_conv=st.integers(1, 5),
    expand=st.integers(1, 3),
    dt_rank=st.one_of(st.none(), st.integers(1, 4)),
    bias=st.booleans(),
    conv_bias=st.booleans(),
    length=st.integers(1, 70),
)
def test_any_parameters_give_the_recurrence_and_the_declared_count(
    d_model, d_state, d_conv, expand, dt_rank, bias, conv_bias, length
):
    params = {
        "d_state": d_state,
        "d_conv": d_conv,
        "expand": expand,
        "dt_rank": dt_rank,
        "bias": bias,
        "conv_bias": conv_bias,
    }
    analysis = analyse("MambaBlock", params, [(length, d_model)])
    assert analysis.ok, [d.one_line() for d in analysis.errors]
    block = trained_like(compile_graph(analysis).layer).double()
    assert analysis.param_counts["layer"] == sum(p.numel() for p in block.parameters())
    x = torch.randn(2, length, d_model, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(block, x), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(chunked(block)(x), reference(block, x), rtol=1e-9, atol=1e-9)


def test_d_model_is_inferred_and_a_wrong_value_is_explained():
    assert errors("MambaBlock", {"d_model": 16}, [(5, 8)]) == [
        "layer: MambaBlock 'layer' expects feature size (last dimension) 16 but gets 8 from 'x0' "
        "(remove d_model to infer it, or set it to 8)"
    ]


@pytest.mark.parametrize(
    ("params", "shapes", "dtypes", "needle", "fix"),
    [
        ({}, [(8,)], None, "expects a 3-D sequence [N, T, d_model] but gets 2-D", "Embedding"),
        ({}, [(2, 3, 8)], None, "but gets 4-D", "Reshape"),
        ({}, [(5, 8)], ["int64"], "floating-point", "Embedding"),
        ({"d_state": 0}, [(5, 8)], None, "d_state=0 is not valid", ""),
        ({"expand": 0}, [(5, 8)], None, "expand=0 is not valid", ""),
        ({"dt_rank": 0}, [(5, 8)], None, "dt_rank=0 is not valid", ""),
    ],
)
def test_bad_inputs_and_parameters_are_refused_with_a_fix(params, shapes, dtypes, needle, fix):
    analysis = analyse("MambaBlock", params, shapes, dtypes)
    assert len(analysis.errors) == 1 and needle in analysis.errors[0].message, analysis.errors
    assert fix in analysis.errors[0].fix
