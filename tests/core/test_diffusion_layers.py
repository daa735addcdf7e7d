"""TimestepEmbedding against torch and the formula: shapes, no weights, values, export."""

from __future__ import annotations

import math

import pytest
import torch

from dlstudio.core.helpers import SUPPORT
from tests.core.layer_check import check_layer
from tests.core.torch_agree import analyse, errors, exported_matches_compiled, ruff_problems

TimestepEmbedding = SUPPORT["TimestepEmbedding"]


@pytest.mark.parametrize(("params", "dtype"), [({"embedding_dim": 8}, "int64"), ({"embedding_dim": 7}, "float32"),
                                               ({}, "int64"), ({"embedding_dim": 1, "max_period": 100.0}, "float32")])
def test_shapes_and_parameter_count_match_torch(params, dtype):
    analysis = check_layer("TimestepEmbedding", params, [()], [dtype])
    assert analysis.ports[("layer", "output")].shape == ("N", params.get("embedding_dim", 64))
    assert analysis.ports[("layer", "output")].dtype == "float32" and analysis.param_counts["layer"] == 0


def test_values_are_the_sines_then_cosines_of_the_transformer_formula():
    t = torch.tensor([0, 1, 250, 999])
    made = TimestepEmbedding(6)(t)
    for row, step in zip(made.tolist(), t.tolist(), strict=True):
        frequencies = [10000.0 ** (-i / 3) for i in range(3)]
        expected = [math.sin(step * f) for f in frequencies] + [math.cos(step * f) for f in frequencies]
        assert row == pytest.approx(expected, abs=1e-4)
    assert made[0].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_float_timesteps_give_what_the_same_ints_give_and_an_odd_size_ends_in_zero():
    layer = TimestepEmbedding(5)
    made = layer(torch.tensor([3.0, 40.0]))
    assert torch.equal(made, layer(torch.tensor([3, 40])))
    assert made.shape == (2, 5) and made[:, -1].tolist() == [0.0, 0.0]
    assert dict(layer.state_dict()) == {}


@pytest.mark.parametrize("shape", [(1,), (4, 4)])
def test_timesteps_must_be_one_number_per_sample(shape):
    [problem] = errors("TimestepEmbedding", {}, [shape])
    assert "expects a 1-D timestep input, one number per sample," in problem


def test_export_is_ruff_clean_and_agrees_with_the_compiled_module():
    source = exported_matches_compiled(analyse("TimestepEmbedding", {"embedding_dim": 9}, [()], ["int64"]))
    assert ruff_problems(source) == ""
