"""Normalization family against torch: inferred sizes, parameter counts (buffers excluded), diagnostics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlstudio.core.catalogue import CATALOGUE
from tests.core.layer_check import check_layer
from tests.core.torch_agreement import analysed, assert_agrees


@pytest.mark.parametrize(("type_name", "params", "shape"), [
    ("BatchNorm1d", {}, (8,)),
    ("BatchNorm1d", {"affine": False, "momentum": None}, (4, 10)),
    ("BatchNorm2d", {"eps": 1e-3, "momentum": 0.01}, (16, 5, 5)),
    ("BatchNorm2d", {"track_running_stats": False}, (3, 4, 4)),
    ("BatchNorm3d", {}, (4, 3, 3, 3)),
    ("InstanceNorm1d", {}, (4, 10)),
    ("InstanceNorm1d", {"affine": True, "track_running_stats": True}, (4, 10)),
    ("InstanceNorm2d", {"affine": True}, (3, 6, 6)),
    ("LayerNorm", {}, (10, 32)),
    ("LayerNorm", {"normalized_shape": 32, "elementwise_affine": False}, (10, 32)),
    ("LayerNorm", {"normalized_shape": [10, 32], "bias": False}, (10, 32)),
    ("LayerNorm", {"normalized_shape": [3, 4, 5]}, (3, 4, 5)),
    ("RMSNorm", {}, (10, 32)),
    ("RMSNorm", {"normalized_shape": [4, 5], "eps": 1e-6}, (3, 4, 5)),
    ("RMSNorm", {"elementwise_affine": False}, (7,)),
    ("GroupNorm", {"num_groups": 4}, (8, 5, 5)),
    ("GroupNorm", {"num_groups": 3, "affine": False}, (6,)),
    ("GroupNorm", {"num_groups": 1}, (5, 2, 3, 4)),
])
def test_matches_torch(type_name, params, shape):
    check_layer(type_name, params, [shape])


@pytest.mark.parametrize(("type_name", "params", "count"), [
    ("BatchNorm2d", {}, 2 * 16),
    ("BatchNorm2d", {"affine": False}, 0),
    ("LayerNorm", {"normalized_shape": [5, 5]}, 2 * 25),
    ("LayerNorm", {"bias": False}, 5),
    ("RMSNorm", {}, 5),
    ("GroupNorm", {"num_groups": 2}, 2 * 16),
])
def test_counts_affine_weights_not_running_stats(type_name, params, count):
    assert check_layer(type_name, params, [(16, 5, 5)]).param_counts["layer"] == count


def test_symbolic_sizes_are_kept():
    analysis = check_layer("BatchNorm1d", {}, [(4, "T")], sizes={"T": 6})
    assert str(analysis.ports[("layer", "output")]) == "[N, 4, T]"
    assert analysis.flops["layer"] is None
    check_layer("LayerNorm", {"normalized_shape": 8}, [("T", 8)], sizes={"T": 3})


def test_inferred_sizes_go_to_the_constructor():
    analysis = check_layer("LayerNorm", {}, [(10, 32)])
    construct = CATALOGUE["LayerNorm"].module(analysis.params["layer"])
    assert (construct.cls, construct.args, dict(construct.kwargs)) == ("nn.LayerNorm", (32,), {})
    analysis = check_layer("GroupNorm", {"num_groups": 2}, [(4, 3)])
    construct = CATALOGUE["GroupNorm"].module(analysis.params["layer"])
    assert construct.args == (2, 4)


def _messages(type_name, params, shape, severity="error"):
    return [d.one_line() for d in analysed(type_name, params, shape).diagnostics if d.severity == severity]


@pytest.mark.parametrize(("type_name", "params", "shape", "expected"), [
    ("BatchNorm2d", {"num_features": 8}, (3, 4, 4),
     "BatchNorm2d 'layer' expects channel count 8 but gets 3 from 'x0' "
     "(remove num_features to infer it, or set it to 3)"),
    ("BatchNorm2d", {}, (3, 4), "expects a 4-D input (batch included) but gets 3-D [N, 3, 4]"),
    ("LayerNorm", {"normalized_shape": 16}, (4, 8),
     "LayerNorm 'layer' expects last dimension 16 but gets 8 from 'x0' "
     "(remove normalized_shape to infer it, or set it to 8)"),
    ("LayerNorm", {"normalized_shape": [5, 8]}, (4, 8),
     "expects trailing dimensions [5, 8] but gets [4, 8] from 'x0' "
     "(remove normalized_shape to infer it, or set it to [4, 8])"),
    ("RMSNorm", {"normalized_shape": [2, 4, 8]}, (4, 8),
     "normalises 3 trailing dimensions but a sample of [N, 4, 8] has only 2"),
    ("GroupNorm", {"num_groups": 4}, (6, 3),
     "has num_groups=4 but num_channels=6 is not divisible by it (set num_groups to one of 1, 2, 3, 6)"),
    ("InstanceNorm1d", {}, (4, 1), "which hold only one element; torch refuses that when training"),
    ("InstanceNorm1d", {"affine": True}, (4,),
     "reads the 2-D input [N, 4] as one unbatched sample, taking the batch for channels; with "
     "affine or track_running_stats on, num_features would have to equal the batch size"),
    ("LayerNorm", {}, ("T",), "cannot infer normalized_shape from the symbolic last dimension T"),
])
def test_diagnostics_say_what_and_how_to_fix(type_name, params, shape, expected):
    errors = _messages(type_name, params, shape)
    assert len(errors) == 1 and expected in errors[0], errors


def test_integer_input_is_refused():
    errors = [d.message for d in analysed("LayerNorm", {}, (4,), "int64").errors]
    assert errors and "needs a floating-point input but gets int64" in errors[0]


@pytest.mark.parametrize(("params", "shape", "expected"), [
    ({"num_features": 7}, (4, 5),
     "has num_features=7 but its input has 4 channels; torch ignores num_features while affine "
     "and track_running_stats are off (remove num_features to infer it, or set it to 4)"),
    ({}, (4,), "reads the 2-D input [N, 4] as one unbatched sample, taking the batch for channels: "
               "it normalises each sample over all its elements"),
])
def test_instance_norm_warns_where_torch_does(params, shape, expected):
    assert not _messages("InstanceNorm1d", params, shape)
    warnings = _messages("InstanceNorm1d", params, shape, "warning")
    assert len(warnings) == 1 and expected in warnings[0], warnings


def _sample(draw, ranks: tuple[int, ...] = (1, 2, 3)) -> tuple:
    """A sample shape (batch excluded), mostly of one of ``ranks``, sometimes of any rank 0-4."""
    rank = draw(st.sampled_from(ranks) if draw(st.integers(0, 3)) else st.integers(0, 4))
    return tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))


_SAMPLE_RANKS = {"BatchNorm1d": (1, 2), "BatchNorm2d": (3,), "BatchNorm3d": (4,),
                 "InstanceNorm1d": (1, 2), "InstanceNorm2d": (2, 3)}


@st.composite
def per_channel_cases(draw):
    kind = draw(st.sampled_from(sorted(_SAMPLE_RANKS)))
    params = {"affine": draw(st.booleans()), "track_running_stats": draw(st.booleans()),
              "momentum": draw(st.none() | st.floats(0, 1)), "eps": draw(st.floats(1e-6, 1e-2))}
    shape = _sample(draw, _SAMPLE_RANKS[kind])
    return kind, params, {"num_features": shape[0] if shape else 1, **params}, shape


@st.composite
def trailing_cases(draw):
    kind = draw(st.sampled_from(["LayerNorm", "RMSNorm"]))
    shape = _sample(draw)
    params = {"elementwise_affine": draw(st.booleans())}
    if kind == "LayerNorm":
        params["bias"] = draw(st.booleans())
    else:
        params["eps"] = draw(st.none() | st.floats(1e-6, 1e-2))
    ctor = dict(params, normalized_shape=shape[-1] if shape else 1)
    if draw(st.booleans()):  # mostly the true trailing sizes, sometimes anything
        start = draw(st.integers(0, len(shape)))
        wanted = list(shape[start:]) or [1]
        wanted = draw(st.just(wanted) | st.lists(st.integers(1, 4), min_size=1, max_size=3))
        params["normalized_shape"] = ctor["normalized_shape"] = wanted
    return kind, params, ctor, shape


@st.composite
def group_cases(draw):
    shape = _sample(draw)
    params = {"num_groups": draw(st.integers(1, 4)), "affine": draw(st.booleans())}
    return "GroupNorm", params, {"num_channels": shape[0] if shape else 1, **params}, shape


@settings(max_examples=60, deadline=None)
@given(per_channel_cases() | trailing_cases() | group_cases())
def test_random_normalization_agrees_with_torch(case):
    type_name, params, ctor, shape = case
    trailing = type_name in ("LayerNorm", "RMSNorm")  # their inferred size is the last one
    symbolic = {len(shape) - 1: "S"} if len(shape) >= 2 and not trailing else None
    assert_agrees(type_name, params, ctor, shape, symbolic=symbolic)
