"""Normalization family: BatchNorm, InstanceNorm, LayerNorm, GroupNorm and RMSNorm.

All keep their input's shape. Parameter counts are the learned affine weights (and biases)
only, as ``module.parameters()`` has them; running statistics are buffers and not counted.
FLOPs count one multiply-add per element to normalise and one more for an affine transform;
torch's flop counter counts none for normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from dlstudio.core.catalogue._rules import as_tuple, require_min_rank
from dlstudio.core.spec import InferContext, LayerSpec, Param, layer, numel, register, torch_module
from dlstudio.core.tensor import TensorType

_EPS = Param("eps", "float", default=1e-5, min=1e-12, max=1,
              help="Added to the variance for stability (torch refuses 0 in training).")
_MOMENTUM = Param("momentum", "float", default=0.1, min=0, max=1, optional=True,
                  help="Weight of the newest batch in the running statistics; empty for a plain average.")
_CHANNELS = "channel count"


def _affine(ctx: InferContext) -> bool:
    """Whether the layer learns a per-element or per-channel scale."""
    p = ctx.params
    return bool(p.get("affine", p.get("elementwise_affine", False)))


def _flops(ctx: InferContext) -> int | None:
    elements = numel(ctx.input.shape)
    return None if elements is None else elements * (2 if _affine(ctx) else 1)


def _per_channel(ctx: InferContext) -> int:
    channels = ctx.params.get("num_features") or ctx.params.get("num_channels")
    return 2 * channels if ctx.params["affine"] else 0


def _input(ctx: InferContext, ranks: Sequence[int] | None = None) -> TensorType:
    """The input, checked to be float and of one of ``ranks`` (None: at least 2-D)."""
    x = ctx.input
    if ranks is None:
        require_min_rank(ctx, x, 2)
    else:
        ctx.require_rank(x, ranks)
    ctx.require_float(x)
    return x


def _batch_norm(ranks: Sequence[int]) -> Callable[[InferContext], TensorType]:
    def infer(ctx: InferContext) -> TensorType:
        x = _input(ctx, ranks)
        ctx.infer_param("num_features", x.shape[1], _CHANNELS)
        return x

    return infer


def _instance_norm(rank: int, shape: str) -> Callable[[InferContext], TensorType]:
    def infer(ctx: InferContext) -> TensorType:
        x = _input(ctx, (rank - 1, rank))
        if x.rank == rank - 1:
            _unbatched_instance(ctx, shape)
            spatial = numel(x.shape)  # torch takes the batch for channels, the rest as spatial
        else:
            _check_num_features(ctx)
            spatial = numel(x.shape[1:])  # the dims after the channels
        if spatial == 1:
            ctx.fail(f"{ctx.where} normalises over the spatial dimensions of {x}, which hold only "
                     "one element; torch refuses that when training",
                     "use BatchNorm or LayerNorm, or a larger spatial size")
        return x

    return infer


def _unbatched_instance(ctx: InferContext, shape: str) -> None:
    """Torch reads a rank-short input as one unbatched sample whose channels are the batch."""
    reading = (f"{ctx.where} reads the {ctx.input.rank}-D input {ctx.input} as one unbatched "
               "sample, taking the batch for channels")
    fix = f"feed it {shape}, or use LayerNorm to normalise each sample"
    if ctx.params["affine"] or ctx.params["track_running_stats"]:
        ctx.fail(f"{reading}; with affine or track_running_stats on, num_features would have to "
                 "equal the batch size", fix)
    ctx.warn(f"{reading}: it normalises each sample over all its elements", fix)
    if ctx.params["num_features"] is None:
        ctx.infer_param("num_features", ctx.input.shape[1], _CHANNELS)


def _check_num_features(ctx: InferContext) -> None:
    p, actual = ctx.params, ctx.input.shape[1]
    given = p["num_features"]
    unused = not p["affine"] and not p["track_running_stats"]
    if unused and given is not None and isinstance(actual, int) and given != actual:
        ctx.warn(f"{ctx.where} has num_features={given} but its input has {actual} channels; torch "
                 "ignores num_features while affine and track_running_stats are off",
                 f"remove num_features to infer it, or set it to {actual}")
        return
    ctx.infer_param("num_features", actual, _CHANNELS)


def _normalized_shape(ctx: InferContext) -> tuple[int, ...]:
    """Check or infer ``normalized_shape`` against the trailing dimensions (batch excluded)."""
    x = _input(ctx)
    given = ctx.params["normalized_shape"]
    if given is None:
        return (ctx.infer_param("normalized_shape", x.shape[-1], "last dimension"),)
    wanted = as_tuple(given, 1)
    if len(wanted) >= x.rank:
        ctx.fail(f"{ctx.where} normalises {len(wanted)} trailing dimensions but a sample of {x} "
                 f"has only {x.rank - 1}",
                 f"remove normalized_shape to infer it, or give at most {x.rank - 1} sizes")
    trailing = x.shape[x.rank - len(wanted):]
    if any(isinstance(a, int) and a != w for a, w in zip(trailing, wanted, strict=True)):
        one = len(wanted) == 1
        what, want, got = ("last dimension", wanted[0], trailing[0]) if one else (
            "trailing dimensions", list(wanted), list(trailing))
        ctx.fail(f"{ctx.where} expects {what} {want} but gets {got} from '{ctx.source_of()}'",
                 f"remove normalized_shape to infer it, or set it to {got}")
    return wanted


def _layer_norm(ctx: InferContext) -> TensorType:
    _normalized_shape(ctx)
    return ctx.input


def _layer_norm_params(ctx: InferContext) -> int:
    p = ctx.params
    if not p["elementwise_affine"]:
        return 0
    return math.prod(as_tuple(p["normalized_shape"], 1)) * (2 if p.get("bias", False) else 1)


def _group_norm(ctx: InferContext) -> TensorType:
    x = _input(ctx)
    channels = ctx.infer_param("num_channels", x.shape[1], _CHANNELS)
    groups = ctx.params["num_groups"]
    if channels % groups:
        options = [g for g in range(1, channels + 1) if channels % g == 0]
        ctx.fail(f"{ctx.where} has num_groups={groups} but num_channels={channels} is not divisible by it",
                 "set num_groups to one of " + ", ".join(map(str, options[:12])))
    return x


def _norm(type_name: str, summary: str, infer: Callable[[InferContext], TensorType],
          params: tuple[Param, ...], positional: tuple[str, ...], count=_per_channel) -> LayerSpec:
    return layer(
        type=type_name, family="Normalization", summary=summary, infer=infer, params=params,
        count_params=count, flops=_flops, module=torch_module(f"nn.{type_name}", positional=positional),
    )


def _batch_norm_spec(n: int, ranks: Sequence[int], shape: str) -> LayerSpec:
    return _norm(
        f"BatchNorm{n}d",
        f"Normalises each channel over the batch{' and spatial dims' if n > 1 else ''}: {shape}.",
        _batch_norm(ranks),
        (Param("num_features", "int", min=1, inferred=True, help="Channels of the input (dim 1)."),
         _EPS, _MOMENTUM,
         Param("affine", "bool", default=True, help="Learn a scale and shift per channel."),
         Param("track_running_stats", "bool", default=True,
               help="Keep running mean and variance for evaluation.")),
        ("num_features",),
    )


def _instance_norm_spec(n: int, shape: str) -> LayerSpec:
    return _norm(
        f"InstanceNorm{n}d", f"Normalises each channel of each sample over its spatial dims: {shape}.",
        _instance_norm(n + 2, shape),
        (Param("num_features", "int", min=1, inferred=True, help="Channels of the input (dim 1)."),
         _EPS, _MOMENTUM,
         Param("affine", "bool", default=False, help="Learn a scale and shift per channel."),
         Param("track_running_stats", "bool", default=False,
               help="Keep running mean and variance for evaluation.")),
        ("num_features",),
    )


_SHAPE = Param("normalized_shape", "ints", min=1, inferred=True,
               help="Trailing sizes to normalise over; empty means the last dimension.")
_ELEMENTWISE = Param("elementwise_affine", "bool", default=True, help="Learn a per-element scale.")

register(
    _batch_norm_spec(1, (2, 3), "[N, C] or [N, C, L]"),
    _batch_norm_spec(2, (4,), "[N, C, H, W]"),
    _batch_norm_spec(3, (5,), "[N, C, D, H, W]"),
    _instance_norm_spec(1, "[N, C, L]"),
    _instance_norm_spec(2, "[N, C, H, W]"),
    _norm("LayerNorm", "Normalises each sample over its trailing dimensions (transformers).",
          _layer_norm,
          (_SHAPE, _EPS, _ELEMENTWISE,
           Param("bias", "bool", default=True, help="Learn a per-element shift (with elementwise_affine).")),
          ("normalized_shape",), count=_layer_norm_params),
    _norm("RMSNorm", "Scales each sample by the root mean square of its trailing dimensions.",
          _layer_norm,
          (_SHAPE,
           Param("eps", "float", default=None, optional=True, min=0, max=1,
                 help="Added for stability; empty means the dtype's machine epsilon."),
           _ELEMENTWISE),
          ("normalized_shape",), count=_layer_norm_params),
    _norm("GroupNorm", "Normalises each sample over groups of channels: [N, C, *].",
          _group_norm,
          (Param("num_groups", "int", default=8, min=1, help="Groups the channels are split into."),
           Param("num_channels", "int", min=1, inferred=True, help="Channels of the input (dim 1)."),
           _EPS,
           Param("affine", "bool", default=True, help="Learn a scale and shift per channel.")),
          ("num_groups", "num_channels")),
)
