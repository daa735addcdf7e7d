"""Convolution family against torch: shapes, parameter counts, FLOPs and diagnostics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlstudio import analyze, load_graph
from dlstudio.core.catalogue import CATALOGUE
from tests.core.layer_check import check_layer
from tests.core.torch_agree import exported_matches_compiled, ruff_problems
from tests.core.torch_agreement import analysed, assert_agrees


@pytest.mark.parametrize(("type_name", "params", "shape"), [
    ("Conv1d", {"out_channels": 8, "kernel_size": 3}, (4, 20)),
    ("Conv1d", {"out_channels": 6, "kernel_size": 5, "stride": 2, "padding": 2, "dilation": 2}, (3, 31)),
    ("Conv1d", {"out_channels": 4, "kernel_size": 4, "padding": "same"}, (2, 9)),
    ("Conv1d", {"out_channels": 4, "kernel_size": 4, "padding": "same", "dilation": 3,
                "padding_mode": "reflect"}, (2, 12)),
    ("Conv1d", {"out_channels": 4, "kernel_size": 3, "padding": 3, "padding_mode": "circular"}, (2, 3)),
    ("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}, (3, 32, 32)),
    ("Conv2d", {"out_channels": 8, "kernel_size": [3, 5], "stride": [2, 1], "padding": [1, 2]}, (4, 17, 12)),
    ("Conv2d", {"out_channels": 8, "kernel_size": 3, "groups": 4, "bias": False}, (4, 9, 9)),
    ("Conv2d", {"out_channels": 6, "kernel_size": 3, "groups": 6, "padding": "valid"}, (6, 7, 8)),
    ("Conv2d", {"out_channels": 5, "kernel_size": 3, "padding": 2, "padding_mode": "replicate"}, (2, 4, 4)),
    ("Conv2d", {"out_channels": 5, "kernel_size": 2, "padding": [1, 0], "padding_mode": "reflect"}, (2, 4, 3)),
    ("Conv3d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}, (2, 7, 8, 9)),
    ("Conv3d", {"out_channels": 4, "kernel_size": [1, 3, 3], "padding": "same"}, (2, 3, 5, 5)),
    ("ConvTranspose1d", {"out_channels": 4, "kernel_size": 4, "stride": 2, "padding": 1}, (3, 10)),
    ("ConvTranspose1d", {"out_channels": 4, "kernel_size": 3, "dilation": 2, "output_padding": 1}, (3, 5)),
    ("ConvTranspose2d", {"out_channels": 8, "kernel_size": 2, "stride": 2}, (16, 7, 7)),
    ("ConvTranspose2d", {"out_channels": 6, "kernel_size": [3, 2], "stride": [3, 2], "padding": [1, 0],
                         "output_padding": [2, 1], "groups": 2, "bias": False}, (4, 5, 6)),
    ("ConvTranspose3d", {"out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1,
                         "output_padding": 1}, (4, 3, 4, 5)),
])
def test_matches_torch(type_name, params, shape):
    check_layer(type_name, params, [shape])


@pytest.mark.parametrize(("type_name", "params", "shape", "sizes"), [
    ("Conv1d", {"kernel_size": 3, "stride": 2, "padding": 1}, (3, "T"), {"T": 11}),
    ("Conv2d", {"kernel_size": 3, "padding": "same"}, (3, "H", "W"), {"H": 6, "W": 9}),
    ("Conv2d", {"kernel_size": 5, "dilation": 2, "stride": 3}, (3, "H", 12), {"H": 13}),
    ("ConvTranspose1d", {"kernel_size": 4, "stride": 3, "padding": 2, "output_padding": 1}, (3, "T"), {"T": 7}),
])
def test_symbolic_sizes_resolve_to_torchs(type_name, params, shape, sizes):
    analysis = check_layer(type_name, params, [shape], sizes=sizes)
    assert analysis.flops["layer"] is None


def test_symbolic_size_reads_as_an_expression():
    analysis = check_layer("Conv1d", {"kernel_size": 3, "stride": 2, "padding": 1}, [(3, "T")], sizes={"T": 8})
    assert str(analysis.ports[("layer", "output")]) == "[N, 16, (T + 1)//2]"
    analysis = check_layer("ConvTranspose1d", {"kernel_size": 2, "stride": 2}, [(3, "T")], sizes={"T": 8})
    assert str(analysis.ports[("layer", "output")]) == "[N, 16, T*2]"


def test_counts_depthwise_weights_and_flops():
    analysis = check_layer("Conv2d", {"out_channels": 8, "kernel_size": 3, "groups": 8, "padding": 1}, [(8, 10, 10)])
    assert analysis.param_counts["layer"] == 8 * 9 + 8
    assert analysis.flops["layer"] == 8 * 9 * 10 * 10


def test_constructor_is_the_idiomatic_call():
    analysis = check_layer("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}, [(3, 8, 8)])
    construct = CATALOGUE["Conv2d"].module(analysis.params["layer"])
    assert (construct.cls, construct.args, dict(construct.kwargs)) == ("nn.Conv2d", (3, 16, 3), {"padding": 1})


def _only_error(type_name, params, shape) -> str:
    errors = analysed(type_name, params, shape).errors
    assert len(errors) == 1, [d.one_line() for d in errors]
    return errors[0].one_line()


@pytest.mark.parametrize(("type_name", "params", "shape", "expected"), [
    ("Conv2d", {"in_channels": 4}, (3, 8, 8),
     "Conv2d 'layer' expects channel count 4 but gets 3 from 'x0' "
     "(remove in_channels to infer it, or set it to 3)"),
    ("Conv2d", {"out_channels": 8, "groups": 3}, (6, 8, 8),
     "groups=3, which must divide both in_channels (6) and out_channels (8) (set groups to one of 1, 2)"),
    ("Conv1d", {"padding": "same", "stride": 2, "kernel_size": 5}, (3, 8),
     "cannot use padding='same' with stride=2: torch supports it only for stride 1 "
     "(set stride to 1, or set padding to numbers such as 2)"),
    ("Conv1d", {"kernel_size": 5, "dilation": 2}, (3, 8),
     "the kernel spans 9 (kernel_size 5, dilation 2) but the padded input is only 8"),
    ("Conv1d", {"padding": 3, "padding_mode": "reflect"}, (3, 3),
     "pads 3 with padding_mode='reflect' but the input size is only 3"),
    ("Conv1d", {"padding": 4, "padding_mode": "circular"}, (3, 3),
     "circular padding cannot wrap around more than once"),
    ("ConvTranspose2d", {"stride": [2, 1], "output_padding": 1}, (3, 4, 4),
     "output_padding=1, which must be smaller than stride=[2, 1] or dilation=1 in each dimension"),
    ("ConvTranspose1d", {"kernel_size": 1, "padding": 2}, (3, 3),
     "would output size -1 from input size 3: padding 2 removes more than the kernel adds"),
    ("Conv2d", {}, (3, 8), "expects a 4-D input (batch included) but gets 3-D [N, 3, 8]"),
    ("Conv3d", {"kernel_size": [3, 3]}, (3, 8, 8, 8), "kernel_size=[3, 3] is not valid"),
])
def test_diagnostics_say_what_and_how_to_fix(type_name, params, shape, expected):
    assert expected in _only_error(type_name, params, shape)


def test_integer_input_is_refused():
    errors = analysed("Conv1d", {}, (3, 8), "int64").errors
    assert "needs a floating-point input but gets int64" in errors[0].message


@st.composite
def conv_cases(draw):
    n = draw(st.integers(1, 3))
    transposed = draw(st.booleans())

    def per_dim(low: int, high: int):
        return draw(st.integers(low, high) | st.lists(st.integers(low, high), min_size=n, max_size=n))

    groups = draw(st.sampled_from([1, 1, 2, 3]))

    def channels() -> int:  # mostly a multiple of groups; sometimes anything, to test the refusal
        return draw(st.integers(1, 4) if draw(st.integers(0, 3)) == 0 else st.integers(1, 4 // groups)
                    .map(lambda k: k * groups))

    params = {"out_channels": channels(), "kernel_size": per_dim(1, 4), "stride": per_dim(1, 3),
              "dilation": per_dim(1, 2), "groups": groups, "bias": draw(st.booleans())}
    if transposed:
        params |= {"padding": per_dim(0, 3), "output_padding": per_dim(0, 2)}
    else:
        params["padding"] = draw(st.sampled_from(["same", "valid"]) | st.just(per_dim(0, 3)))
        params["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    shape = (channels(), *(draw(st.integers(1, 9)) for _ in range(n)))
    return f"{'ConvTranspose' if transposed else 'Conv'}{n}d", params, shape


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_random_convolutions_agree_with_torch(case):
    type_name, params, shape = case
    ctor = {"in_channels": shape[0], **params}
    assert_agrees(type_name, params, ctor, shape, symbolic={len(shape) - 1: "S"})


CNN = {
    "format": "dlstudio.graph", "version": 1, "name": "small cnn",
    "nodes": [
        {"id": "image", "type": "Input", "params": {"shape": [3, 16, 16]}},
        {"id": "stem", "type": "Conv2d", "params": {"out_channels": 8, "padding": 1, "padding_mode": "reflect"}},
        {"id": "bn", "type": "BatchNorm2d"},
        {"id": "pool", "type": "MaxPool2d", "params": {"kernel_size": 3, "stride": 2, "padding": 1}},
        {"id": "drop", "type": "Dropout2d", "params": {"p": 0.1}},
        {"id": "grouped", "type": "Conv2d", "params": {"out_channels": 8, "groups": 4, "padding": "same"}},
        {"id": "gn", "type": "GroupNorm", "params": {"num_groups": 4}},
        {"id": "avg", "type": "AvgPool2d", "params": {"kernel_size": 2, "ceil_mode": True}},
        {"id": "inorm", "type": "InstanceNorm2d", "params": {"affine": True}},
        {"id": "up", "type": "ConvTranspose2d", "params": {"out_channels": 4, "kernel_size": 2, "stride": 2}},
        {"id": "squeeze", "type": "AdaptiveAvgPool2d", "params": {"output_size": [None, 1]}},
        {"id": "ln", "type": "LayerNorm", "params": {"normalized_shape": [8, 1]}},
        {"id": "out", "type": "Output"},
    ],
    "edges": [{"source": a, "target": b} for a, b in [
        ("image", "stem"), ("stem", "bn"), ("bn", "pool"), ("pool", "drop"), ("drop", "grouped"),
        ("grouped", "gn"), ("gn", "avg"), ("avg", "inorm"), ("inorm", "up"), ("up", "squeeze"),
        ("squeeze", "ln"), ("ln", "out"),
    ]],
}


def test_a_cnn_of_these_families_exports_clean_code_that_matches_the_compiled_module():
    analysis = analyze(load_graph(CNN))
    assert analysis.ok and not analysis.diagnostics, [d.one_line() for d in analysis.diagnostics]
    assert str(analysis.ports[("ln", "output")]) == "[N, 4, 8, 1]"
    source = exported_matches_compiled(analysis)
    assert "nn.Conv2d(3, 8, 3, padding=1, padding_mode='reflect')" in source.replace('"', "'")
    assert ruff_problems(source) == ""
