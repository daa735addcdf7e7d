"""Activation family: element-wise nonlinearities and (Log)Softmax.

All keep their input's shape; each costs one operation per element in the FLOP count.
"""

from __future__ import annotations

from dlstudio.core.spec import InferContext, LayerSpec, Param, layer, numel, register, torch_module
from dlstudio.core.tensor import TensorType

_INPLACE = Param("inplace", "bool", default=False, help="Overwrite the input to save memory.")
_DIM = Param("dim", "int", default=-1, min=-8, max=8, help="Dimension that sums to one (batch is 0).")


def _same(ctx: InferContext) -> TensorType:
    ctx.require_float(ctx.input)
    return ctx.input


def _softmax(ctx: InferContext) -> TensorType:
    x = _same(ctx)
    dim = ctx.params["dim"]
    if not -x.rank <= dim < x.rank:
        ctx.fail(f"{ctx.where} has dim={dim} but its input {x} has {x.rank} dimensions",
                 f"use a dim between {-x.rank} and {x.rank - 1}")
    return x


def _per_element(ctx: InferContext) -> int | None:
    return numel(ctx.input.shape)


def _prelu_params(ctx: InferContext) -> int:
    return ctx.params["num_parameters"]


def _prelu(ctx: InferContext) -> TensorType:
    x = _same(ctx)
    count = ctx.params["num_parameters"]
    if count != 1 and (x.rank < 2 or x.shape[1] != count):
        channels = x.shape[1] if x.rank >= 2 else "none"
        ctx.fail(f"{ctx.where} has num_parameters={count} but its input has {channels} channels",
                 f"set num_parameters to 1 or {channels}")
    return x


def _activation(type_name: str, summary: str, *params: Param, infer=_same, counts=None) -> LayerSpec:
    keep = ("dim",) if any(p.name == "dim" for p in params) else ()
    return layer(
        type=type_name, family="Activation", summary=summary, params=params,
        infer=infer, flops=_per_element, count_params=counts,
        module=torch_module(f"nn.{type_name}", keep=keep),
    )


register(
    _activation("ReLU", "max(0, x).", _INPLACE),
    _activation("ReLU6", "min(max(0, x), 6).", _INPLACE),
    _activation("LeakyReLU", "x if x > 0 else negative_slope * x.",
                Param("negative_slope", "float", default=0.01, min=0, max=1, help="Slope for negative inputs."),
                _INPLACE),
    _activation("PReLU", "Leaky ReLU with a learned slope (one, or one per channel).",
                Param("num_parameters", "int", default=1, min=1, help="1, or the number of channels."),
                Param("init", "float", default=0.25, min=0, max=1, help="Initial slope."),
                infer=_prelu, counts=_prelu_params),
    _activation("ELU", "x if x > 0 else alpha * (exp(x) - 1).",
                Param("alpha", "float", default=1.0, min=0, max=100, help="Scale of the negative part."),
                _INPLACE),
    _activation("SELU", "Scaled ELU for self-normalising networks.", _INPLACE),
    _activation("GELU", "Gaussian error linear unit, used in transformers.",
                Param("approximate", "choice", default="none", choices=("none", "tanh"),
                      help="Use the tanh approximation.")),
    _activation("SiLU", "x * sigmoid(x), also called swish.", _INPLACE),
    _activation("Mish", "x * tanh(softplus(x)).", _INPLACE),
    _activation("Sigmoid", "1 / (1 + exp(-x)).",),
    _activation("Tanh", "Hyperbolic tangent."),
    _activation("Softmax", "Normalises to probabilities along dim.", _DIM, infer=_softmax),
    _activation("LogSoftmax", "log(softmax(x)) along dim; pair with NLLLoss.", _DIM, infer=_softmax),
    _activation("Softplus", "log(1 + exp(beta * x)) / beta.",
                Param("beta", "float", default=1.0, min=1e-6, max=1e6, help="Sharpness."),
                Param("threshold", "float", default=20.0, min=0, max=1e6,
                      help="Above this, revert to the identity for stability.")),
    _activation("Hardswish", "x * relu6(x + 3) / 6, cheap on mobile.", _INPLACE),
)
