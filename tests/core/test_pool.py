"""Pooling family against torch: shapes (ceil_mode's last-window rule included) and diagnostics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlstudio.core.catalogue import CATALOGUE
from tests.core.layer_check import check_layer
from tests.core.torch_agreement import analysed, assert_agrees


@pytest.mark.parametrize(("type_name", "params", "shape"), [
    ("MaxPool1d", {"kernel_size": 2}, (3, 9)),
    ("MaxPool1d", {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}, (3, 10)),
    ("MaxPool1d", {"kernel_size": 2, "stride": 3, "ceil_mode": True}, (2, 7)),
    ("MaxPool2d", {"kernel_size": 2}, (3, 8, 8)),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, (4, 15, 16)),
    ("MaxPool2d", {"kernel_size": [3, 2], "stride": [2, 3], "padding": [1, 0], "ceil_mode": True}, (2, 9, 10)),
    ("MaxPool2d", {"kernel_size": 2, "stride": 2}, (7, 9)),
    ("MaxPool2d", {"kernel_size": 3, "stride": 3, "padding": 1, "ceil_mode": True}, (2, 5, 7)),
    ("MaxPool3d", {"kernel_size": 2, "dilation": [1, 2, 1]}, (2, 4, 6, 5)),
    ("AvgPool1d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                   "count_include_pad": False}, (3, 10)),
    ("AvgPool2d", {"kernel_size": 2}, (3, 8, 8)),
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "divisor_override": 4}, (3, 9, 8)),
    ("AvgPool3d", {"kernel_size": [1, 2, 2], "ceil_mode": True}, (2, 3, 5, 5)),
    ("AvgPool3d", {"kernel_size": 2}, (4, 6, 6, 6)),
    ("AdaptiveAvgPool1d", {"output_size": 4}, (3, 10)),
    ("AdaptiveMaxPool1d", {"output_size": [7]}, (3, 5)),
    ("AdaptiveAvgPool2d", {"output_size": 1}, (8, 7, 7)),
    ("AdaptiveAvgPool2d", {"output_size": [None, 3]}, (8, 5, 7)),
    ("AdaptiveMaxPool2d", {"output_size": [2, None]}, (5, 7)),
])
def test_matches_torch(type_name, params, shape):
    check_layer(type_name, params, [shape])


@pytest.mark.parametrize("type_name", ["MaxPool1d", "MaxPool2d", "AvgPool3d", "AdaptiveMaxPool2d"])
def test_integer_inputs_are_refused(type_name):
    errors = analysed(type_name, {}, (3, 4, 4, 4)[: int(type_name[-2]) + 1], "int64").errors
    assert "needs a floating-point input but gets int64" in errors[0].message


@pytest.mark.parametrize(("type_name", "params", "shape", "sizes", "expected"), [
    ("MaxPool2d", {"kernel_size": 2}, (3, "H", "W"), {"H": 9, "W": 8}, "[N, 3, H//2, W//2]"),
    ("MaxPool1d", {"kernel_size": 3, "stride": 2, "padding": 1}, (3, "T"), {"T": 10}, "[N, 3, (T + 1)//2]"),
    ("AvgPool1d", {"kernel_size": 2, "stride": 2, "ceil_mode": True}, (3, "T"), {"T": 9}, "[N, 3, (T + 1)//2]"),
    ("MaxPool1d", {"kernel_size": 2, "stride": 3, "ceil_mode": True}, (3, "T"), {"T": 7}, "[N, 3, (T + 2)//3]"),
    ("AdaptiveAvgPool2d", {"output_size": [None, 2]}, (3, "H", 8), {"H": 5}, "[N, 3, H, 2]"),
])
def test_symbolic_sizes(type_name, params, shape, sizes, expected):
    analysis = check_layer(type_name, params, [shape], sizes=sizes)
    assert str(analysis.ports[("layer", "output")]) == expected


def test_flops_count_the_window_elements_read():
    assert check_layer("MaxPool2d", {"kernel_size": 2}, [(3, 8, 8)]).flops["layer"] == 3 * 4 * 4 * 4
    # windows of 5 into 3: [0, 2), [1, 4), [3, 5) read 2 + 3 + 2 elements per channel
    assert check_layer("AdaptiveAvgPool1d", {"output_size": 3}, [(2, 5)]).flops["layer"] == 2 * 7


def test_default_stride_is_left_to_torch():
    analysis = check_layer("MaxPool2d", {"kernel_size": 3}, [(3, 9, 9)])
    construct = CATALOGUE["MaxPool2d"].module(analysis.params["layer"])
    assert (construct.cls, construct.args, dict(construct.kwargs)) == ("nn.MaxPool2d", (3,), {})


@pytest.mark.parametrize(("type_name", "params", "shape", "expected"), [
    ("MaxPool2d", {"kernel_size": 3, "padding": 2}, (3, 8, 8),
     "has padding=2 but padding may be at most half of kernel_size=3 "
     "(set padding to at most 1, or enlarge the kernel)"),
    ("AvgPool2d", {"kernel_size": [4, 2], "padding": [2, 2]}, (3, 8, 8),
     "set padding to at most [2, 1]"),
    ("MaxPool1d", {"kernel_size": 4, "dilation": 2}, (3, 6), "the window spans 7 but the padded input is only 6"),
    ("MaxPool2d", {}, (8,), "expects a 3 or 4-D input (batch included) but gets 2-D [N, 8]"),
    ("AdaptiveAvgPool1d", {"output_size": [None]}, (3, 8), "output_size=[None] is not valid"),
    ("AdaptiveAvgPool2d", {"output_size": None}, (3, 8, 8), "output_size=None is not valid"),
])
def test_diagnostics_say_what_and_how_to_fix(type_name, params, shape, expected):
    errors = [d.one_line() for d in analysed(type_name, params, shape).errors]
    assert len(errors) == 1 and expected in errors[0], errors


def test_half_precision_average_pooling_in_3d_warns_it_needs_a_gpu():
    diagnostics = analysed("AvgPool3d", {}, (2, 4, 4, 4), "bfloat16").diagnostics
    assert [(d.severity, d.fix) for d in diagnostics] == [("warning", "train on a GPU, or use float32")]


def _per_dim(draw, n: int, low: int, high: int):
    return draw(st.integers(low, high) | st.lists(st.integers(low, high), min_size=n, max_size=n))


def _input_shape(draw, n: int) -> tuple:
    channels = (draw(st.integers(1, 3)),) if draw(st.booleans()) else ()
    return (*channels, *(draw(st.integers(1, 9)) for _ in range(n)))


@st.composite
def window_cases(draw):
    n, kind = draw(st.integers(1, 3)), draw(st.sampled_from(["Max", "Avg"]))
    params = {"kernel_size": _per_dim(draw, n, 1, 4), "padding": _per_dim(draw, n, 0, 2),
              "ceil_mode": draw(st.booleans())}
    if draw(st.booleans()):
        params["stride"] = _per_dim(draw, n, 1, 4)
    if kind == "Max":
        params["dilation"] = _per_dim(draw, n, 1, 2)
    else:
        params["count_include_pad"] = draw(st.booleans())
        if n > 1:
            params["divisor_override"] = draw(st.none() | st.integers(1, 3))
    return f"{kind}Pool{n}d", params, _input_shape(draw, n)


@st.composite
def adaptive_cases(draw):
    n, kind = draw(st.integers(1, 2)), draw(st.sampled_from(["Max", "Avg"]))
    item = st.integers(1, 6) | st.none() if n > 1 else st.integers(1, 6)
    size = draw(st.integers(1, 6) | st.lists(item, min_size=n, max_size=n))
    return f"Adaptive{kind}Pool{n}d", {"output_size": size}, _input_shape(draw, n)


@settings(max_examples=60, deadline=None)
@given(window_cases() | adaptive_cases())
def test_random_pooling_agrees_with_torch(case):
    type_name, params, shape = case
    assert_agrees(type_name, params, params, shape, symbolic={len(shape) - 1: "S"})
