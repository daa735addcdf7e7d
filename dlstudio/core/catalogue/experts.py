"""Experts family: a sparse Mixture-of-Experts feed-forward block (Mixtral style).

The layer is the helper class ``MixtureOfExperts`` (dlstudio/core/helpers/experts.py): a
bias-free router picks ``top_k`` of ``num_experts`` expert MLPs per token and mixes their
outputs with a softmax over the chosen scores. Its second output, ``aux_loss``, is the
Switch Transformer's load-balancing loss (a scalar): bind it to an Output node named in the
training section's ``loss.auxiliary`` to add it, weighted, to the training loss.
"""

from __future__ import annotations

from typing import Any

from dlstudio.core.spec import InferContext, Param, layer, numel, register, torch_module
from dlstudio.core.tensor import TensorType


def hidden_size(p: dict[str, Any]) -> int:
    """Width of each expert's hidden layer: hidden_dim, or 4 x embed_dim when unset."""
    return p["hidden_dim"] or 4 * p["embed_dim"]


def _moe(ctx: InferContext) -> dict[str, TensorType]:
    x, p = ctx.input, ctx.params
    ctx.require_rank(x, range(2, 9))
    ctx.require_float(x)
    ctx.infer_param("embed_dim", x.shape[-1], "feature size (last dimension)")
    if p["top_k"] > p["num_experts"]:
        ctx.fail(f"{ctx.where} routes each token to top_k={p['top_k']} experts but has only "
                 f"num_experts={p['num_experts']}",
                 f"set top_k to at most {p['num_experts']}, or num_experts to at least {p['top_k']}")
    if p["top_k"] == 1 and p["num_experts"] > 1 and not p["return_aux_loss"]:
        ctx.warn(f"{ctx.where} gives each token's one expert the weight 1, so with top_k=1 its "
                 "router learns only from the aux_loss, which it does not return",
                 "set top_k to 2 or more, or turn on return_aux_loss and train with it")
    outputs = {"output": x}
    if p["return_aux_loss"]:
        outputs["aux_loss"] = TensorType((), x.dtype)
    return outputs


def _moe_params(ctx: InferContext) -> int:
    p = ctx.params
    e, h = p["embed_dim"], hidden_size(p)
    expert = 2 * e * h + ((h + e) if p["bias"] else 0)
    return p["num_experts"] * (e + expert)


def _moe_flops(ctx: InferContext) -> int | None:
    """Router scores for every expert plus two matrix products in each of top_k experts."""
    p = ctx.params
    tokens = numel(ctx.input.shape[:-1] + (1,))
    if tokens is None:
        return None
    e = p["embed_dim"]
    return tokens * (p["num_experts"] * e + p["top_k"] * 2 * e * hidden_size(p))


register(
    layer(
        type="MixtureOfExperts", family="Experts",
        summary="Routes each token to its top_k of num_experts MLPs and mixes their outputs.",
        outputs=("output", "aux_loss"), unpack="{output}, {aux_loss}",
        output_rule=lambda p: ("output", "aux_loss") if p["return_aux_loss"] else ("output",),
        infer=_moe, count_params=_moe_params, flops=_moe_flops,
        module=torch_module("MixtureOfExperts", positional=("embed_dim",)),
        support=("MixtureOfExperts",),
        params=(
            Param("embed_dim", "int", min=1, inferred=True, help="Features per token (last dimension)."),
            Param("num_experts", "int", default=4, min=1, max=1024, help="Expert MLPs to choose from."),
            Param("top_k", "int", default=2, min=1, max=1024,
                  help="Experts each token goes to (2 as in Mixtral); with 1 the router "
                       "learns only from the aux_loss."),
            Param("hidden_dim", "int", optional=True, min=1,
                  help="Hidden width of each expert; empty means 4 x embed_dim."),
            Param("activation", "choice", default="gelu", choices=("gelu", "relu", "silu"),
                  help="Activation between each expert's two linear layers."),
            Param("bias", "bool", default=True, help="Learn biases in the experts (the router has none)."),
            Param("return_aux_loss", "bool", default=True, ctor=False,
                  help="Also output the load-balancing loss (a scalar, top_k when balanced) "
                       "to add to the training loss."),
        ),
    ),
)
