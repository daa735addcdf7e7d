"""Shape family against torch: shapes, refusals as diagnostics, readable exported code."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tests.core.layer_check import check_layer
from tests.core.torch_agree import agree, analyse, errors, exported_matches_compiled, ruff_problems

EXAMPLES = settings(max_examples=50, deadline=None)

CASES = [
    ("Flatten", {}, [(3, 4, 4)]),
    ("Flatten", {"start_dim": 2}, [(3, 4, 5)]),
    ("Flatten", {"start_dim": 0, "end_dim": 1}, [(3, 4)]),
    ("Unflatten", {"dim": 1, "unflattened_size": [4, -1]}, [(16, 3)]),
    ("Unflatten", {"dim": -1, "unflattened_size": [2, 2, 2]}, [(3, 8)]),
    ("Reshape", {"shape": [4, -1]}, [(16, 3)]),
    ("Reshape", {"shape": []}, [(1, 1)]),
    ("Permute", {}, [(3, 5)]),
    ("Permute", {"dims": [0, -1, 1, 2]}, [(3, 4, 5)]),
    ("Transpose", {"dim0": -1, "dim1": 0}, [(3, 5)]),
    ("Squeeze", {"dim": [1, 2]}, [(1, 1, 5)]),
    ("Squeeze", {"dim": 1}, [(3, 1)]),
    ("Unsqueeze", {"dim": -1}, [(3,)]),
    ("Upsample", {}, [(3, 4, 4)]),
    ("Upsample", {"mode": "bilinear", "align_corners": True}, [(3, 4, 5)]),
    ("Upsample", {"size": [7], "scale_factor": None, "mode": "linear"}, [(3, 4)]),
    ("Upsample", {"scale_factor": 1.5, "mode": "trilinear"}, [(2, 3, 4, 5)]),
    ("Upsample", {"size": 6, "scale_factor": None, "mode": "bicubic"}, [(2, 3, 4)]),
    ("PixelShuffle", {}, [(8, 4, 4)]),
    ("PixelShuffle", {"upscale_factor": 3}, [(2, 9, 2, 3)]),
    ("PixelUnshuffle", {}, [(2, 4, 6)]),
    ("ZeroPad1d", {"padding": [1, 2]}, [(2, 4)]),
    ("ZeroPad2d", {"padding": [1, 2, 3, 4]}, [(2, 4, 4)]),
    ("ZeroPad3d", {"padding": 1}, [(2, 3, 4, 4)]),
    ("ConstantPad1d", {"padding": 2, "value": 1.5}, [(2, 4)]),
    ("ConstantPad2d", {"padding": [-1, 0, 1, 1], "value": -2.0}, [(2, 4, 4)]),
    ("ConstantPad3d", {"padding": [1, 0, 0, 1, 2, 0]}, [(1, 2, 2, 2)]),
]


@pytest.mark.parametrize(("type_name", "params", "shapes"), CASES)
def test_layer_matches_torch(type_name, params, shapes):
    check_layer(type_name, params, shapes)


@pytest.mark.parametrize(("type_name", "params", "shapes"), CASES)
def test_export_is_ruff_clean_and_loads_compiled_weights(type_name, params, shapes):
    source = exported_matches_compiled(analyse(type_name, params, shapes))
    assert ruff_problems(source) == ""


def test_forward_lines_read_like_hand_written_torch():
    lines = [
        ("Flatten", {}, "torch.flatten(x0, 1)"),
        ("Flatten", {"start_dim": 2, "end_dim": 3}, "torch.flatten(x0, 2, 3)"),
        ("Unflatten", {"unflattened_size": [2, -1]}, "x0.unflatten(1, (2, -1))"),
        ("Reshape", {"shape": [4, -1]}, "x0.reshape(x0.size(0), 4, -1)"),
        ("Transpose", {}, "x0.transpose(1, 2)"),
        ("Squeeze", {"dim": [2, 3]}, "x0.squeeze((2, 3))"),
        ("Unsqueeze", {}, "x0.unsqueeze(1)"),
        ("ZeroPad2d", {}, "F.pad(x0, (1, 1, 1, 1))"),
        ("ConstantPad1d", {"value": 0.5}, "F.pad(x0, (1, 1), value=0.5)"),
        ("PixelShuffle", {}, "F.pixel_shuffle(x0, 2)"),
    ]
    for type_name, params, line in lines:
        source = exported_matches_compiled(analyse(type_name, params, [(4, 1, 1)]))
        assert f"layer = {line}\n" in source, source


def test_symbolic_length_flows_through():
    analysis = check_layer("Reshape", {"shape": [-1]}, [("T", 16)], sizes={"T": 5})
    assert analysis.ports[("layer", "output")].shape == ("N", "16*T")
    analysis = check_layer("Unflatten", {"dim": 2, "unflattened_size": [4, -1]}, [("T", 16)], sizes={"T": 3})
    assert analysis.ports[("layer", "output")].shape == ("N", "T", 4, 4)
    analysis = check_layer("Transpose", {}, [("T", 16)], sizes={"T": 3})
    assert analysis.ports[("layer", "output")].shape == ("N", 16, "T")
    analysis = check_layer("Upsample", {"mode": "linear"}, [(4, "T")], sizes={"T": 3})
    assert analysis.ports[("layer", "output")].shape == ("N", 4, "T*2")


@pytest.mark.parametrize(("type_name", "params", "shapes", "message"), [
    ("Flatten", {"start_dim": 2, "end_dim": 1}, [(3, 4)],
     "Flatten 'layer' has start_dim=2 after end_dim=1 for its 3-D input [N, 3, 4] "
     "(swap them, or make start_dim the earlier dimension)"),
    ("Flatten", {"start_dim": 3}, [(3, 4)],
     "Flatten 'layer' has start_dim=3 but its input [N, 3, 4] has 3 dimensions (the batch is dim 0) "
     "(use a start_dim between -3 and 2)"),
    ("Reshape", {"shape": [5, -1]}, [(4, 4)],
     "Reshape 'layer' cannot arrange 16 values as [5, -1] (use sizes whose product is 16, or -1 for one of them)"),
    ("Reshape", {"shape": [-1, -1]}, [(4, 4)],
     "Reshape 'layer' has shape [-1, -1]: sizes must be positive, with at most one -1 "
     "(use positive sizes and -1 for the one that follows from the others)"),
    ("Reshape", {"shape": [4, 4]}, [("T", 4)],
     "Reshape 'layer' cannot fit the variable size 4*T into fixed sizes [4, 4] "
     "(use -1 for the size that follows from it)"),
    ("Reshape", {"shape": [2, -1]}, [("T", 3)],
     "Reshape 'layer' cannot tell whether the variable size 3*T splits into [2, -1]: that needs it to be "
     "a multiple of 2 (use fixed sizes that divide the fixed factor of the size, or only -1)"),
    ("Permute", {"dims": [0, 1, 1]}, [(3, 4)],
     "Permute 'layer' names dim 1 twice in dims=[0, 1, 1] (list each dimension once)"),
    ("Permute", {"dims": [0, 1]}, [(3, 4)],
     "Permute 'layer' has 2 dims [0, 1] but its input [N, 3, 4] has 3 (list all 3 dimensions once, batch (0) included)"),
    ("Squeeze", {"dim": 1}, [("T", 4)],
     "Squeeze 'layer' cannot tell whether dim 1 of [N, T, 4] has size 1: T is only known at run time "
     "(squeeze a dimension of fixed size 1)"),
    ("Upsample", {"mode": "bilinear"}, [(3, 4)],
     "Upsample 'layer' mode 'bilinear' needs a 4-D input but gets 3-D [N, 3, 4] "
     "(use mode 'nearest', or the mode for this rank: linear)"),
    ("Upsample", {"align_corners": False}, [(3, 4)],
     "Upsample 'layer' sets align_corners, which only the interpolating modes (linear, bilinear, bicubic, "
     "trilinear) take (clear align_corners, or change mode)"),
    ("Upsample", {"size": 4}, [(3, 4)],
     "Upsample 'layer' needs exactly one of size and scale_factor "
     "(set size for a fixed output size, or scale_factor for a ratio; clear the other)"),
    ("PixelShuffle", {}, [(6, 4, 4)],
     "PixelShuffle 'layer' needs channels divisible by upscale_factor^2 = 4, but [N, 6, 4, 4] has 6 "
     "(use a multiple of 4 channels, or another factor)"),
    ("PixelUnshuffle", {}, [(4, 4)],
     "PixelUnshuffle 'layer' needs an input [N, C, H, W] but gets 3-D [N, 4, 4] "
     "(reshape the input to channels, height and width first)"),
    ("ConstantPad1d", {"padding": [2, -2]}, [(3, 1)],
     "ConstantPad1d 'layer' crops 2 of the 1 values of dim 2 of [N, 3, 1] (crop fewer than 1 (use less negative padding))"),
    ("ZeroPad1d", {"padding": [-1, 2]}, [(3, "T")],
     "ZeroPad1d 'layer' crops dim 2 of [N, 3, T], whose size T is only known at run time and may be too short "
     "(crop only dimensions of fixed size)"),
    ("ZeroPad2d", {}, [(4,)],
     "ZeroPad2d 'layer' pads the last 2 dimensions, so it needs a 3-D or larger input, but gets 2-D [N, 4] "
     "(pad an input with a batch dimension in front of the padded ones)"),
])
def test_diagnostics_say_what_is_wrong_and_the_fix(type_name, params, shapes, message):
    assert errors(type_name, params, shapes) == [f"layer: {message}"]


# --- property tests: random parameters and sizes, torch decides ---

def _shape(draw, min_rank=1, max_rank=4, max_size=5):
    rank = draw(st.integers(min_rank, max_rank))
    return tuple(draw(st.lists(st.integers(1, max_size), min_size=rank, max_size=rank)))


def _dim(rank_with_batch, extra=0):
    span = rank_with_batch + extra + 1
    return st.integers(-span, span - 1)


@EXAMPLES
@given(st.data())
def test_flatten_agrees_with_torch(data):
    shape = _shape(data.draw)
    start, end = data.draw(_dim(len(shape) + 1)), data.draw(_dim(len(shape) + 1))
    agree("Flatten", {"start_dim": start, "end_dim": end}, [shape], nn.Flatten(start, end))


@EXAMPLES
@given(st.data())
def test_unflatten_agrees_with_torch(data):
    shape = _shape(data.draw, max_size=8)
    rank = len(shape) + 1
    # splitting the batch depends on its size, which is not fixed: refused or symbolic on purpose
    dim = data.draw(_dim(rank).filter(lambda d: d not in (0, -rank)))
    sizes = data.draw(st.lists(st.sampled_from([-1, 0, 1, 2, 4]), min_size=1, max_size=3))
    agree("Unflatten", {"dim": dim, "unflattened_size": sizes}, [shape], nn.Unflatten(dim, sizes))


@EXAMPLES
@given(st.data())
def test_reshape_agrees_with_torch(data):
    shape = _shape(data.draw)
    target = data.draw(st.lists(st.sampled_from([-1, 1, 2, 3, 4, 6]), max_size=3))
    agree("Reshape", {"shape": target}, [shape], lambda x: torch.reshape(x, (x.shape[0], *target)))


@EXAMPLES
@given(st.data())
def test_permute_transpose_squeeze_unsqueeze_agree_with_torch(data):
    shape = _shape(data.draw, max_size=2)
    rank = len(shape) + 1
    orders = st.permutations(range(rank)).flatmap(
        lambda order: st.tuples(*[st.sampled_from([d, d - rank]) for d in order]).map(list))
    dims = data.draw(orders | st.lists(_dim(rank), min_size=rank - 1, max_size=rank + 1))
    agree("Permute", {"dims": dims}, [shape], lambda x: x.permute(*dims))
    a, b = data.draw(_dim(rank)), data.draw(_dim(rank))
    agree("Transpose", {"dim0": a, "dim1": b}, [shape], lambda x: torch.transpose(x, a, b))
    # squeezing the batch is refused on purpose: its size is not fixed
    squeeze = data.draw(st.lists(_dim(rank).filter(lambda d: d not in (0, -rank)), min_size=1, max_size=3))
    agree("Squeeze", {"dim": squeeze}, [shape], lambda x: torch.squeeze(x, tuple(squeeze)))
    new = data.draw(_dim(rank, extra=1))
    agree("Unsqueeze", {"dim": new}, [shape], lambda x: torch.unsqueeze(x, new))


@EXAMPLES
@given(st.data())
def test_upsample_agrees_with_torch(data):
    shape = _shape(data.draw, min_rank=1, max_rank=4)
    fitting = {2: "linear", 3: "bilinear", 4: "trilinear"}.get(len(shape), "nearest")
    modes = ["nearest", "linear", "bilinear", "bicubic", "trilinear"]
    mode = data.draw(st.sampled_from([fitting, fitting, "nearest", *modes]))
    sizes = st.integers(1, 6) | st.lists(st.integers(1, 6), min_size=1, max_size=3)
    factors = st.sampled_from([0.5, 1.0, 1.5, 2, 3.0])
    size, factor = data.draw(st.sampled_from([(sizes, st.none())] * 2 + [(st.none(), factors)] * 2
                                             + [(sizes, factors), (st.none(), st.none())])
                             .flatmap(lambda pair: st.tuples(*pair)))
    corners = data.draw(st.none() | st.booleans())
    params = {"size": size, "scale_factor": factor, "mode": mode, "align_corners": corners}
    agree("Upsample", params, [shape], lambda x: nn.Upsample(size, factor, mode, corners)(x))


@EXAMPLES
@given(st.data())
def test_pixel_shuffles_agree_with_torch(data):
    # a 3-D [N, H, W] would shuffle the batch into space: refused on purpose (see below)
    shape = _shape(data.draw, min_rank=3, max_rank=4, max_size=8)
    r = data.draw(st.integers(1, 3))
    agree("PixelShuffle", {"upscale_factor": r}, [shape], nn.PixelShuffle(r))
    agree("PixelUnshuffle", {"downscale_factor": r}, [shape], nn.PixelUnshuffle(r))


@EXAMPLES
@given(st.data())
def test_pads_agree_with_torch(data):
    dims = data.draw(st.integers(1, 3))
    shape = _shape(data.draw, min_rank=dims, max_rank=dims + 1)
    padding = data.draw(st.integers(-1, 2) | st.lists(st.integers(-2, 2), min_size=2 * dims, max_size=2 * dims))
    value = data.draw(st.sampled_from([0.0, 1.5]))
    zero = getattr(nn, f"ZeroPad{dims}d")(padding)
    constant = getattr(nn, f"ConstantPad{dims}d")(padding, value)
    agree(f"ZeroPad{dims}d", {"padding": padding}, [shape], zero)
    agree(f"ConstantPad{dims}d", {"padding": padding, "value": value}, [shape], constant)
