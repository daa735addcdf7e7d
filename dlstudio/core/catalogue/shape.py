"""Shape family: layers that rearrange, resize or pad a tensor and learn nothing.

Rearrangements and pads emit a one-line torch call in ``forward`` and own no module; they
cost no multiply-adds. Upsample is an ``nn.Upsample`` module, as torch writes it.
"""

from __future__ import annotations

import math
from typing import Any

from dlstudio.core.catalogue._rules import as_tuple, axes, axis, exact_div, offset, scale, shown
from dlstudio.core.naming import literal
from dlstudio.core.spec import Construct, InferContext, LayerSpec, Param, layer, numel, register
from dlstudio.core.tensor import Dim, TensorType, dim_product

_DIM = "Dimension index; the batch is dim 0, negative counts from the end."


def _shape_layer(type_name: str, summary: str, infer: Any, call: Any, *params: Param,
                 imports: frozenset[str] = frozenset()) -> LayerSpec:
    return layer(type=type_name, family="Shape", summary=summary, params=params, infer=infer,
                 call=call, flops=lambda ctx: 0, imports=imports)


def _ints(values: Any) -> list[str]:
    return [str(v) for v in as_tuple(values, 1)]


# --- Flatten, Unflatten, Reshape ---


def _flatten(ctx: InferContext) -> TensorType:
    x = ctx.input
    start = axis(ctx, ctx.params["start_dim"], x, "start_dim")
    end = axis(ctx, ctx.params["end_dim"], x, "end_dim")
    if start > end:
        ctx.fail(f"{ctx.where} has start_dim={ctx.params['start_dim']} after "
                 f"end_dim={ctx.params['end_dim']} for its {x.rank}-D input {x}",
                 "swap them, or make start_dim the earlier dimension")
    return x.with_shape((*x.shape[:start], dim_product(x.shape[start:end + 1]), *x.shape[end + 1:]))


def _flatten_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    end = [] if p["end_dim"] == -1 else [str(p["end_dim"])]
    return "torch.flatten", [args[0], str(p["start_dim"]), *end]


def _fill(ctx: InferContext, total: Dim, sizes: tuple[int, ...], what: str) -> tuple[Dim, ...]:
    """``sizes`` with its one -1 replaced so that they hold ``total`` values, or fail."""
    if sizes.count(-1) > 1 or any(s < -1 or s == 0 for s in sizes):
        ctx.fail(f"{ctx.where} has {what} {list(sizes)}: sizes must be positive, with at most one -1",
                 "use positive sizes and -1 for the one that follows from the others")
    known = math.prod(s for s in sizes if s != -1)
    if isinstance(total, int) and (total % known if -1 in sizes else total != known):
        ctx.fail(f"{ctx.where} cannot arrange {total} values as {list(sizes)}",
                 f"use sizes whose product is {total}, or -1 for one of them")
    if -1 not in sizes:
        if not isinstance(total, int):
            ctx.fail(f"{ctx.where} cannot fit the variable size {total} into fixed sizes "
                     f"{list(sizes)}", "use -1 for the size that follows from it")
        return sizes
    filled = exact_div(total, known)
    if filled is None:
        ctx.fail(f"{ctx.where} cannot tell whether the variable size {total} splits into "
                 f"{list(sizes)}: that needs it to be a multiple of {known}",
                 "use fixed sizes that divide the fixed factor of the size, or only -1")
    return tuple(filled if s == -1 else s for s in sizes)


def _unflatten(ctx: InferContext) -> TensorType:
    x = ctx.input
    d = axis(ctx, ctx.params["dim"], x)
    sizes = ctx.params["unflattened_size"]
    if not sizes:
        ctx.fail(f"{ctx.where} needs at least one size in unflattened_size", "set e.g. [2, -1]")
    filled = _fill(ctx, x.shape[d], sizes, "unflattened_size")
    return x.with_shape((*x.shape[:d], *filled, *x.shape[d + 1:]))


def _unflatten_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    return f"{args[0]}.unflatten", [str(p["dim"]), literal(p["unflattened_size"])]


def _reshape(ctx: InferContext) -> TensorType:
    x = ctx.input
    if x.rank < 1:
        ctx.fail(f"{ctx.where} needs an input with a batch dimension, got {x}",
                 "feed it a tensor with at least one dimension")
    return x.with_shape((x.shape[0], *_fill(ctx, dim_product(x.shape[1:]), ctx.params["shape"], "shape")))


def _reshape_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    return f"{args[0]}.reshape", [f"{args[0]}.size(0)", *_ints(p["shape"])]


# --- Permute, Transpose, Squeeze, Unsqueeze ---


def _permute(ctx: InferContext) -> TensorType:
    x, dims = ctx.input, ctx.params["dims"]
    if len(dims) != x.rank:
        ctx.fail(f"{ctx.where} has {len(dims)} dims {list(dims)} but its input {x} has {x.rank}",
                 f"list all {x.rank} dimensions once, batch (0) included")
    order = axes(ctx, dims, x, "dims")
    return x.with_shape(tuple(x.shape[d] for d in order))


def _transpose(ctx: InferContext) -> TensorType:
    x = ctx.input
    a, b = axis(ctx, ctx.params["dim0"], x, "dim0"), axis(ctx, ctx.params["dim1"], x, "dim1")
    shape = list(x.shape)
    shape[a], shape[b] = shape[b], shape[a]
    return x.with_shape(shape)


def _squeeze(ctx: InferContext) -> TensorType:
    x = ctx.input
    dims = axes(ctx, ctx.params["dim"], x)
    for d in dims:
        if not isinstance(x.shape[d], int):
            ctx.fail(f"{ctx.where} cannot tell whether dim {d} of {x} has size 1: {x.shape[d]} "
                     "is only known at run time", "squeeze a dimension of fixed size 1")
    return x.with_shape([s for i, s in enumerate(x.shape) if not (i in dims and s == 1)])


def _squeeze_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    dims = as_tuple(p["dim"], 1)
    return f"{args[0]}.squeeze", [literal(dims[0] if len(dims) == 1 else dims)]


def _unsqueeze(ctx: InferContext) -> TensorType:
    x = ctx.input
    d = axis(ctx, ctx.params["dim"], x, extra=1)
    return x.with_shape((*x.shape[:d], 1, *x.shape[d:]))


def _method(name: str, *keys: str) -> Any:
    def call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
        return f"{args[0]}.{name}", [a for key in keys for a in _ints(p[key])]

    return call


# --- Upsample, PixelShuffle, PixelUnshuffle ---

_MODE_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_MODE_TAPS = {"nearest": 0, "linear": 2, "bilinear": 4, "bicubic": 16, "trilinear": 8}


def _upsample(ctx: InferContext) -> TensorType:
    x, p = ctx.input, ctx.params
    ctx.require_rank(x, (3, 4, 5))
    ctx.require_float(x)
    mode, spatial = p["mode"], x.rank - 2
    if _MODE_RANK.get(mode, x.rank) != x.rank:
        ctx.fail(f"{ctx.where} mode '{mode}' needs a {_MODE_RANK[mode]}-D input but gets {x.rank}-D {x}",
                 "use mode 'nearest', or the mode for this rank: "
                 + {3: "linear", 4: "bilinear or bicubic", 5: "trilinear"}[x.rank])
    if p["align_corners"] is not None and mode not in _MODE_RANK:
        ctx.fail(f"{ctx.where} sets align_corners, which only the interpolating modes "
                 "(linear, bilinear, bicubic, trilinear) take", "clear align_corners, or change mode")
    if (p["size"] is None) == (p["scale_factor"] is None):
        ctx.fail(f"{ctx.where} needs exactly one of size and scale_factor",
                 "set size for a fixed output size, or scale_factor for a ratio; clear the other")
    return x.with_shape((*x.shape[:2], *_upsampled(ctx, x, spatial)))


def _upsampled(ctx: InferContext, x: TensorType, spatial: int) -> tuple[Dim, ...]:
    size, factor = ctx.params["size"], ctx.params["scale_factor"]
    if size is not None:
        sizes = as_tuple(size, spatial)
        if len(sizes) != spatial:
            ctx.fail(f"{ctx.where} has size {shown(sizes)} for {spatial} spatial dimensions of {x}",
                     f"give one size or {spatial} sizes")
        return sizes
    out = []
    for d in x.shape[2:]:
        if isinstance(d, int):
            out.append(math.floor(d * float(factor)))
        elif float(factor).is_integer():
            out.append(scale(d, int(factor)))
        else:
            ctx.fail(f"{ctx.where} cannot scale the variable size {d} by {factor}",
                     "use a whole-number scale_factor, or a fixed size")
    return tuple(out)


def _upsample_flops(ctx: InferContext) -> int | None:
    count = numel(ctx.output.shape)
    return None if count is None else count * _MODE_TAPS[ctx.params["mode"]]


def _upsample_module(p: dict[str, Any]) -> Construct:
    """``nn.Upsample`` with the one of size and scale_factor that is set."""
    given = {"size": p["size"], "scale_factor": p["scale_factor"], "mode": p["mode"],
             "align_corners": p["align_corners"]}
    kwargs = {k: v for k, v in given.items() if v is not None and not (k == "mode" and v == "nearest")}
    return Construct("nn.Upsample", (), kwargs)


def _pixel_shuffle(ctx: InferContext) -> TensorType:
    x, r = ctx.input, ctx.params["upscale_factor"]
    _require_image(ctx, x)
    channels = x.shape[-3]
    if not isinstance(channels, int) or channels % (r * r):
        ctx.fail(f"{ctx.where} needs channels divisible by upscale_factor^2 = {r * r}, "
                 f"but {x} has {channels}", f"use a multiple of {r * r} channels, or another factor")
    return x.with_shape((*x.shape[:-3], channels // (r * r), scale(x.shape[-2], r), scale(x.shape[-1], r)))


def _pixel_unshuffle(ctx: InferContext) -> TensorType:
    x, r = ctx.input, ctx.params["downscale_factor"]
    _require_image(ctx, x)
    for d, name in ((x.shape[-2], "height"), (x.shape[-1], "width")):
        if not isinstance(d, int) or d % r:
            ctx.fail(f"{ctx.where} needs a {name} divisible by downscale_factor={r}, "
                     f"but {x} has {d}", "pad or resize the input, or use another factor")
    return x.with_shape((*x.shape[:-3], scale(x.shape[-3], r * r), x.shape[-2] // r, x.shape[-1] // r))


def _require_image(ctx: InferContext, x: TensorType) -> None:
    if x.rank < 4:
        ctx.fail(f"{ctx.where} needs an input [N, C, H, W] but gets {x.rank}-D {x}",
                 "reshape the input to channels, height and width first")


def _functional(name: str, key: str) -> Any:
    def call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
        return f"F.{name}", [args[0], str(p[key])]

    return call


# --- padding ---


def _pad_rule(dims: int) -> Any:
    def infer(ctx: InferContext) -> TensorType:
        x, pad = ctx.input, as_tuple(ctx.params["padding"], 2 * dims)
        if x.rank <= dims:
            ctx.fail(f"{ctx.where} pads the last {dims} dimensions, so it needs a "
                     f"{dims + 1}-D or larger input, but gets {x.rank}-D {x}",
                     "pad an input with a batch dimension in front of the padded ones")
        shape = list(x.shape)
        for i in range(dims):
            before, after = pad[2 * i], pad[2 * i + 1]
            size = shape[-1 - i]
            shape[-1 - i] = offset(size, before + after)
            crop = -min(before, 0) - min(after, 0)
            if not isinstance(size, int) and crop:
                ctx.fail(f"{ctx.where} crops dim {x.rank - 1 - i} of {x}, whose size {size} is only "
                         "known at run time and may be too short", "crop only dimensions of fixed size")
            if isinstance(size, int) and (size < crop or size + before + after < 1):
                ctx.fail(f"{ctx.where} crops {crop} of the {size} values of dim {x.rank - 1 - i} of {x}",
                         f"crop fewer than {size} (use less negative padding)")
        return x.with_shape(shape)

    return infer


def _pad_call(dims: int, constant: bool) -> Any:
    def call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
        value = [f"value={literal(p['value'])}"] if constant and p["value"] != 0 else []
        return "F.pad", [args[0], literal(as_tuple(p["padding"], 2 * dims)), *value]

    return call


def _pad(type_name: str, dims: int, constant: bool) -> LayerSpec:
    sides = ("left, right", "left, right, top, bottom", "left, right, top, bottom, front, back")[dims - 1]
    params = [Param("padding", "ints", default=1, length=2 * dims,
                    help=f"One size for every side, or ({sides}); negative crops.")]
    if constant:
        params.append(Param("value", "float", default=0.0, help="Fill value."))
    what = "the value" if constant else "zeros"
    return _shape_layer(type_name, f"Pads the last {dims} dimension{'s' if dims > 1 else ''} with {what}.",
                        _pad_rule(dims), _pad_call(dims, constant), *params, imports=frozenset({"F"}))


register(
    _shape_layer("Flatten", "Joins dims start_dim..end_dim into one: [N, C, H, W] -> [N, C*H*W].",
                 _flatten, _flatten_call,
                 Param("start_dim", "int", default=1, min=-8, max=8, help="First dim to join. " + _DIM),
                 Param("end_dim", "int", default=-1, min=-8, max=8, help="Last dim to join.")),
    _shape_layer("Unflatten", "Splits one dimension into several: [N, 256] -> [N, 16, 4, 4].",
                 _unflatten, _unflatten_call,
                 Param("dim", "int", default=1, min=-8, max=8, help="Dimension to split. " + _DIM),
                 Param("unflattened_size", "ints", default=(2, -1), min=-1, scalar_ok=False,
                       help="Sizes it becomes; one may be -1 to follow from the others.")),
    _shape_layer("Reshape", "Gives each sample a new shape with the same number of values.",
                 _reshape, _reshape_call,
                 Param("shape", "ints", default=(-1,), min=-1, scalar_ok=False,
                       help="Sizes without the batch; one may be -1 to follow from the others.")),
    _shape_layer("Permute", "Reorders all dimensions, batch included: [0, 2, 1] swaps the last two.",
                 _permute, _method("permute", "dims"),
                 Param("dims", "ints", default=(0, 2, 1), min=-8, max=8, scalar_ok=False,
                       help="Every dimension once, in the new order (0 is the batch).")),
    _shape_layer("Transpose", "Swaps two dimensions.", _transpose, _method("transpose", "dim0", "dim1"),
                 Param("dim0", "int", default=1, min=-8, max=8, help="First dimension. " + _DIM),
                 Param("dim1", "int", default=2, min=-8, max=8, help="Second dimension.")),
    _shape_layer("Squeeze", "Removes the given dims where their size is 1 (others are kept).",
                 _squeeze, _squeeze_call,
                 Param("dim", "ints", default=-1, min=-8, max=8, help="A dim or a list of dims. " + _DIM)),
    _shape_layer("Unsqueeze", "Inserts a dimension of size 1 at dim.", _unsqueeze, _method("unsqueeze", "dim"),
                 Param("dim", "int", default=1, min=-9, max=8, help="Position of the new dim. " + _DIM)),
    LayerSpec(
        type="Upsample", family="Shape", summary="Resizes images or sequences by a factor or to a size.",
        infer=_upsample, flops=_upsample_flops, module=_upsample_module,
        params=(
            Param("size", "ints", optional=True, min=1, help="Output size of the spatial dims."),
            Param("scale_factor", "float", default=2.0, optional=True, min=0, max=1000,
                  help="Ratio of output to input size (set this or size)."),
            Param("mode", "choice", default="nearest", choices=("nearest", *_MODE_RANK),
                  help="nearest copies pixels; the others interpolate (by input rank)."),
            Param("align_corners", "bool", optional=True,
                  help="Interpolating modes only: align the corner pixels of input and output."),
        ),
    ),
    _shape_layer("PixelShuffle", "Moves channels into space: [N, C*r*r, H, W] -> [N, C, H*r, W*r].",
                 _pixel_shuffle, _functional("pixel_shuffle", "upscale_factor"),
                 Param("upscale_factor", "int", default=2, min=1, max=64, help="r, the spatial factor."),
                 imports=frozenset({"F"})),
    _shape_layer("PixelUnshuffle", "Moves space into channels: [N, C, H*r, W*r] -> [N, C*r*r, H, W].",
                 _pixel_unshuffle, _functional("pixel_unshuffle", "downscale_factor"),
                 Param("downscale_factor", "int", default=2, min=1, max=64, help="r, the spatial factor."),
                 imports=frozenset({"F"})),
    _pad("ZeroPad1d", 1, False),
    _pad("ZeroPad2d", 2, False),
    _pad("ZeroPad3d", 3, False),
    _pad("ConstantPad1d", 1, True),
    _pad("ConstantPad2d", 2, True),
    _pad("ConstantPad3d", 3, True),
)
