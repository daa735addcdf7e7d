"""Regularization family against torch: ranks torch refuses are errors, ranks it warns about warnings."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlstudio.core.catalogue import CATALOGUE
from tests.core.layer_check import check_layer
from tests.core.torch_agreement import BATCH, analysed, assert_agrees

TYPES = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"]


@pytest.mark.parametrize(("type_name", "params", "shape"), [
    ("Dropout", {}, (10,)),
    ("Dropout", {"p": 0.1, "inplace": True}, (3, 4, 5)),
    ("Dropout1d", {"p": 0.3}, (4, 10)),
    ("Dropout2d", {"p": 0.2}, (4, 6, 6)),
    ("Dropout3d", {}, (2, 3, 4, 5)),
    ("AlphaDropout", {"p": 0.25}, (7,)),
    ("AlphaDropout", {"p": 1.0}, (2, 3)),
])
def test_matches_torch(type_name, params, shape):
    analysis = check_layer(type_name, params, [shape])
    # in place on a model input is worth a warning (the caller's tensor changes), nothing more
    assert [d.param for d in analysis.diagnostics] == (["inplace"] if params.get("inplace") else [])


def test_constructor_leaves_defaults_to_torch():
    construct = CATALOGUE["Dropout"].module({"p": 0.5, "inplace": False})
    assert (construct.cls, construct.args, dict(construct.kwargs)) == ("nn.Dropout", (), {})
    assert dict(CATALOGUE["Dropout2d"].module({"p": 0.1, "inplace": False}).kwargs) == {"p": 0.1}


@pytest.mark.parametrize(("type_name", "shape", "expected"), [
    ("Dropout1d", (4,), "Dropout1d 'layer' reads the 2-D input [N, 4] as one unbatched [C, L] sample, so "
                        "it zeroes whole samples of the batch (feed it [N, C, L], or use Dropout"),
    ("Dropout2d", (4, 8), "torch treats it as [N, C, L] and drops whole channels, and warns that it will "
                          "read it as one unbatched [C, H, W] sample in a future release (use Dropout1d"),
    ("Dropout2d", (4,), "torch deprecates Dropout2d on anything but 3-D or 4-D inputs"),
    ("Dropout3d", (2, 4, 4), "reads the 4-D input [N, 2, 4, 4] as one unbatched [C, D, H, W] sample"),
    ("Dropout3d", (2, 3, 4, 5, 6), "torch deprecates Dropout3d on anything but 4-D or 5-D inputs "
                                   "and will refuse it in a future release (use Dropout, or feed"),
])
def test_warns_where_torch_runs_but_warns_or_drops_whole_samples(type_name, shape, expected):
    analysis = check_layer(type_name, {}, [shape])
    messages = [d.one_line() for d in analysis.diagnostics]
    assert len(messages) == 1 and analysis.diagnostics[0].severity == "warning", messages
    assert expected in messages[0]


@pytest.mark.parametrize(("type_name", "shape", "expected"), [
    ("Dropout1d", (2, 3, 4), "expects a 2 or 3-D input (batch included) but gets 4-D [N, 2, 3, 4]"),
    ("Dropout2d", (), "needs at least a 2-D input but gets [N] from 'x0' (torch refuses it when training)"),
])
def test_ranks_torch_refuses_are_errors(type_name, shape, expected):
    errors = [d.one_line() for d in analysed(type_name, {}, shape).errors]
    assert len(errors) == 1 and expected in errors[0], errors


@pytest.mark.parametrize("type_name", TYPES)
def test_integer_inputs_are_refused(type_name):
    with pytest.raises(RuntimeError):
        getattr(nn, type_name)()(torch.ones(BATCH, 2, 3, 4, 5, dtype=torch.long))
    errors = analysed(type_name, {}, (2, 3, 4, 5), "int64").errors
    assert "needs a floating-point input but gets int64" in errors[0].message


def test_probability_outside_zero_to_one_is_refused():
    errors = analysed("Dropout", {"p": 1.5}, (4,)).errors
    assert "p=1.5 is not valid: expected a number (0 <= value <= 1)" in errors[0].message


def _torch_warns(type_name: str, p: float, shape: tuple) -> bool:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            getattr(nn, type_name)(p)(torch.randn(BATCH, *shape))
        except RuntimeError:
            return False
    return bool(caught)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TYPES), st.floats(0, 1) | st.sampled_from([0.0, 1.0]), st.booleans(),
       st.lists(st.integers(1, 4), min_size=0, max_size=5).map(tuple), st.sampled_from(["float32", "int64"]))
def test_random_dropout_agrees_with_torch(type_name, p, inplace, shape, dtype):
    params = {"p": p, "inplace": inplace}
    symbolic = {len(shape) - 1: "S"} if shape else None
    analysis = assert_agrees(type_name, params, params, shape, symbolic, dtype)
    if dtype == "float32" and _torch_warns(type_name, p, shape):
        assert [d for d in analysis.diagnostics if d.severity == "warning"]


def test_torch_skips_the_mask_at_p_zero_and_one():
    for p in (0.0, 1.0):
        assert analysed("Dropout2d", {"p": p}, (), "int64").ok
