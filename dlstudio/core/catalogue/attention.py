"""Attention family: MultiheadAttention, transformer layers and positional encodings.

Every layer here is declared with ``batch_first=True`` (always written out, since torch's
default is False), so sequences flow as [N, T, features]. A ``causal`` option passes the
mask that hides later positions (``causal_mask`` from :mod:`dlstudio.core.modules`) with
torch's ``is_causal`` hint.
"""

from __future__ import annotations

from typing import Any

from dlstudio.core.catalogue._rules import dim_sum, promote
from dlstudio.core.naming import literal
from dlstudio.core.spec import (
    Construct,
    InferContext,
    LayerSpec,
    ModuleRule,
    Param,
    layer,
    numel,
    register,
    torch_module,
)
from dlstudio.core.tensor import Dim, TensorType

_BATCH_FIRST = Param("batch_first", "bool", default=True,
                     help="Sequences as [N, T, features] (on), or [T, N, features] as torch's default.")
_BIAS = Param("bias", "bool", default=True, help="Learn biases in the projections (and layer norms).")


def _causal(help_text: str) -> Param:
    return Param("causal", "bool", default=False, ctor=False, help=help_text)


# --- shared checks ---


def _sequence(ctx: InferContext, port: str) -> TensorType:
    tensor = ctx.inputs[port]
    if tensor.rank != 3:
        ctx.fail(f"{ctx.where} expects a 3-D {port} [N, T, features] but gets {tensor.rank}-D {tensor} "
                 f"from '{ctx.source_of(port)}'", "reshape it to batch, time and features first", port)
    if not tensor.is_float:
        ctx.fail(f"{ctx.where} needs a floating-point {port} but gets {tensor.dtype}",
                 "feed it from an Embedding or a float Input", port)
    return tensor


def _heads(ctx: InferContext, size: int, heads_param: str, size_param: str) -> None:
    heads = ctx.params[heads_param]
    if size % heads:
        divisors = [d for d in range(1, min(size, 64) + 1) if size % d == 0]
        ctx.fail(f"{ctx.where} has {size_param}={size}, which {heads_param}={heads} does not divide",
                 f"use {heads_param} among {', '.join(map(str, divisors))}, or change {size_param}")


def _same_axis(ctx: InferContext, a: str, b: str, axis: int, what: str) -> None:
    x, y = ctx.inputs[a], ctx.inputs[b]
    if x.shape[axis] != y.shape[axis]:
        ctx.fail(f"{ctx.where} needs {a} and {b} with the same {what}, but gets {x} and {y}",
                 f"make the {what} of {b} equal to that of {a}", b)


def _axes(p: dict[str, Any]) -> tuple[int, int]:
    """Positions of (batch, time) in a sequence tensor."""
    return (0, 1) if p["batch_first"] else (1, 0)


def _mask(p: dict[str, Any], x: str) -> str:
    return f"causal_mask({x})" if p["batch_first"] else f"causal_mask({x}, 0)"


def _attention_macs(e: int, length: Dim, source: Dim, kdim: int, vdim: int, extra: int = 0) -> int | None:
    """Multiply-adds of attention for one sequence: four projections and two batched products."""
    if not isinstance(length, int) or not isinstance(source, int):
        return None
    keys = source + extra
    return 2 * length * e * e + source * (kdim + vdim) * e + 2 * length * keys * e


def _attention_params(e: int, kdim: int, vdim: int, bias: bool, bias_kv: bool = False) -> int:
    return e * (2 * e + kdim + vdim) + (4 * e if bias else 0) + (2 * e if bias_kv else 0)


def _norms(e: int, count: int, bias: bool) -> int:
    return count * e * (2 if bias else 1)


# --- MultiheadAttention ---


def _mha(ctx: InferContext) -> dict[str, TensorType]:
    p = ctx.params
    for port, fallback in (("key", "query"), ("value", "key")):  # self-attention by default
        ctx.inputs.setdefault(port, ctx.inputs[fallback])
        ctx.sources.setdefault(port, ctx.source_of(fallback))
    q, k, v = (_sequence(ctx, port) for port in ("query", "key", "value"))
    embed = ctx.infer_param("embed_dim", q.shape[-1], "query size (last dimension)", "query")
    _heads(ctx, embed, "num_heads", "embed_dim")
    ctx.infer_param("kdim", k.shape[-1], "key size (last dimension)", "key")
    ctx.infer_param("vdim", v.shape[-1], "value size (last dimension)", "value")
    batch, time = _axes(p)
    _same_axis(ctx, "query", "key", batch, "batch size")
    _same_axis(ctx, "key", "value", batch, "batch size")
    _same_axis(ctx, "key", "value", time, "length")
    if len({q.dtype, k.dtype, v.dtype}) > 1:
        ctx.fail(f"{ctx.where} needs query, key and value of one dtype, gets {q.dtype}, {k.dtype}, {v.dtype}",
                 "make all three the same float type")
    if p["causal"] and p["need_weights"] and q.shape[time] != k.shape[time]:  # (else torch drops the mask)
        ctx.fail(f"{ctx.where} is causal, so query and key need the same length, but gets {q} and {k}",
                 "turn causal off for attention between sequences of different lengths")
    outputs = {"output": q}
    if p["need_weights"]:
        keys = dim_sum([k.shape[time], int(p["add_bias_kv"]) + int(p["add_zero_attn"])])
        heads = () if p["average_attn_weights"] else (p["num_heads"],)
        outputs["weights"] = TensorType((q.shape[batch], *heads, q.shape[time], keys), q.dtype)
    return outputs


def _mha_params(ctx: InferContext) -> int:
    p = ctx.params
    return _attention_params(p["embed_dim"], p["kdim"], p["vdim"], p["bias"], p["add_bias_kv"])


def _mha_flops(ctx: InferContext) -> int | None:
    p = ctx.params
    if not p["batch_first"]:
        return None
    extra = int(p["add_bias_kv"]) + int(p["add_zero_attn"])
    length, source = ctx.inputs["query"].shape[1], ctx.inputs["key"].shape[1]
    return _attention_macs(p["embed_dim"], length, source, p["kdim"], p["vdim"], extra)


def _mha_module(spec: LayerSpec) -> ModuleRule:
    """``nn.MultiheadAttention``, naming kdim and vdim only where they differ from embed_dim."""
    base = torch_module("nn.MultiheadAttention", positional=("embed_dim", "num_heads"),
                        keep=("batch_first",))(spec)

    def rule(p: dict[str, Any]) -> Construct:
        made = base(p)
        kwargs = {k: v for k, v in made.kwargs.items() if k not in ("kdim", "vdim") or v != p["embed_dim"]}
        return Construct(made.cls, made.args, kwargs)

    return rule


def _mha_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    query, key, value = args
    key = query if key == "None" else key
    value = key if value == "None" else value
    extra = [] if p["need_weights"] else ["need_weights=False"]
    extra += [f"attn_mask={_mask(p, query)}"] if p["causal"] else []
    extra += [] if p["average_attn_weights"] else ["average_attn_weights=False"]
    extra += ["is_causal=True"] if p["causal"] else []
    return attr, [query, key, value, *extra]


# --- TransformerEncoderLayer and TransformerDecoderLayer ---


def _transformer_params() -> tuple[Param, ...]:
    return (
        Param("d_model", "int", min=1, inferred=True, help="Features per position (last dimension)."),
        Param("nhead", "int", default=8, min=1, max=1024, help="Attention heads; must divide d_model."),
        Param("dim_feedforward", "int", default=2048, min=1, help="Hidden size of the feed-forward block."),
        Param("dropout", "float", default=0.1, min=0, max=1, help="Dropout in attention and feed-forward."),
        Param("activation", "choice", default="relu", choices=("relu", "gelu"),
              help="Activation of the feed-forward block."),
        Param("layer_norm_eps", "float", default=1e-5, min=0, max=1, help="Epsilon of the layer norms."),
        _BATCH_FIRST,
        Param("norm_first", "bool", default=False, help="Normalise before each block (pre-norm)."),
        _BIAS,
    )


def _encoder(ctx: InferContext) -> TensorType:
    x = _sequence(ctx, "src")
    _heads(ctx, ctx.infer_param("d_model", x.shape[-1], "feature size (last dimension)", "src"),
           "nhead", "d_model")
    return x


def _decoder(ctx: InferContext) -> TensorType:
    tgt, memory = _sequence(ctx, "tgt"), _sequence(ctx, "memory")
    d_model = ctx.infer_param("d_model", tgt.shape[-1], "feature size (last dimension)", "tgt")
    _heads(ctx, d_model, "nhead", "d_model")
    if memory.shape[-1] != d_model:
        ctx.fail(f"{ctx.where} needs memory with d_model={d_model} features but gets {memory} "
                 f"from '{ctx.source_of('memory')}'", f"project the memory to {d_model} features (Linear)",
                 "memory")
    _same_axis(ctx, "tgt", "memory", _axes(ctx.params)[0], "batch size")
    if tgt.dtype != memory.dtype:
        ctx.fail(f"{ctx.where} needs tgt and memory of one dtype, gets {tgt.dtype} and {memory.dtype}",
                 "make both the same float type", "memory")
    return tgt


def _feedforward_params(p: dict[str, Any]) -> int:
    e, f = p["d_model"], p["dim_feedforward"]
    return 2 * e * f + ((f + e) if p["bias"] else 0)


def _encoder_params(ctx: InferContext) -> int:
    p = ctx.params
    e = p["d_model"]
    return _attention_params(e, e, e, p["bias"]) + _feedforward_params(p) + _norms(e, 2, p["bias"])


def _decoder_params(ctx: InferContext) -> int:
    p = ctx.params
    e = p["d_model"]
    return 2 * _attention_params(e, e, e, p["bias"]) + _feedforward_params(p) + _norms(e, 3, p["bias"])


def _encoder_flops(ctx: InferContext) -> int | None:
    p, x = ctx.params, ctx.inputs["src"]
    e, length = p["d_model"], x.shape[1]
    attention = _attention_macs(e, length, length, e, e)
    return None if attention is None or not p["batch_first"] else attention + length * 2 * e * p["dim_feedforward"]


def _decoder_flops(ctx: InferContext) -> int | None:
    p = ctx.params
    e, length, source = p["d_model"], ctx.inputs["tgt"].shape[1], ctx.inputs["memory"].shape[1]
    own, cross = _attention_macs(e, length, length, e, e), _attention_macs(e, length, source, e, e)
    if own is None or cross is None or not p["batch_first"]:
        return None
    return own + cross + length * 2 * e * p["dim_feedforward"]


def _encoder_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    causal = [f"src_mask={_mask(p, args[0])}", "is_causal=True"] if p["causal"] else []
    return attr, [args[0], *causal]


def _decoder_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    causal = [f"tgt_mask={_mask(p, args[0])}", "tgt_is_causal=True"] if p["causal"] else []
    return attr, [*args, *causal]


# --- positional encodings ---


def _positional(ctx: InferContext) -> TensorType:
    x, max_len = _sequence(ctx, "input"), ctx.params["max_len"]
    ctx.infer_param("d_model", x.shape[-1], "feature size (last dimension)")
    if isinstance(x.shape[1], int) and x.shape[1] > max_len:
        ctx.fail(f"{ctx.where} gets sequences of length {x.shape[1]} in {x}, longer than max_len={max_len}",
                 f"set max_len to at least {x.shape[1]}")
    return TensorType(x.shape, promote(x, TensorType((1,), "float32")))


def _positional_layer(type_name: str, summary: str, max_len: int, learned: bool) -> LayerSpec:
    return layer(
        type=type_name, family="Attention", summary=summary, infer=_positional,
        count_params=(lambda ctx: ctx.params["max_len"] * ctx.params["d_model"]) if learned else None,
        flops=lambda ctx: numel(ctx.input.shape),
        module=torch_module(type_name, positional=("d_model",)),
        support=(type_name,), imports=frozenset() if learned else frozenset({"math"}),
        params=(
            Param("d_model", "int", min=1, inferred=True, help="Features per position (last dimension)."),
            Param("max_len", "int", default=max_len, min=1, max=1_000_000, help="Longest sequence it takes."),
            Param("dropout", "float", default=0.0, min=0, max=1, help="Dropout after adding positions."),
        ),
    )


# --- ScaledDotProductAttention ---


def _sdpa(ctx: InferContext) -> TensorType:
    q, k, v = (ctx.inputs[port] for port in ("query", "key", "value"))
    for port, tensor in (("query", q), ("key", k), ("value", v)):
        if tensor.rank < 3 or not tensor.is_float:
            ctx.fail(f"{ctx.where} needs a float {port} [N, ..., T, features] but gets {tensor} "
                     f"({tensor.dtype}) from '{ctx.source_of(port)}'",
                     "feed it float tensors of at least 3 dimensions", port)
    if len({q.dtype, k.dtype, v.dtype}) > 1:
        ctx.fail(f"{ctx.where} needs query, key and value of one dtype, gets {q.dtype}, {k.dtype}, {v.dtype}",
                 "make all three the same float type")
    if not q.rank == k.rank == v.rank or q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1]:
        ctx.fail(f"{ctx.where} needs key and value of one length and leading dims equal to the "
                 f"query's, but gets {q}, {k} and {v}", "reshape the inputs to [N, heads, T, features]")
    if q.shape[-1] != k.shape[-1]:
        ctx.fail(f"{ctx.where} needs query and key of one feature size, but gets {q} and {k}",
                 "project both to the same size", "key")
    return q.with_shape((*q.shape[:-1], v.shape[-1]))


def _sdpa_flops(ctx: InferContext) -> int | None:
    q, v = ctx.inputs["query"], ctx.inputs["value"]
    lead, source = numel(q.shape[:-1]), ctx.inputs["key"].shape[-2]
    features = q.shape[-1] + v.shape[-1]
    if lead is None or not isinstance(source, int) or not isinstance(features, int):
        return None
    return lead * source * features


def _sdpa_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    extra = ["is_causal=True"] if p["causal"] else []
    extra += [] if p["scale"] is None else [f"scale={literal(p['scale'])}"]
    return "F.scaled_dot_product_attention", [*args, *extra]


register(
    layer(
        type="MultiheadAttention", family="Attention",
        summary="Scaled dot-product attention over several heads; connect query only for self-attention.",
        inputs=("query", "key", "value"), optional_inputs=frozenset({"key", "value"}),
        outputs=("output", "weights"), unpack="{output}, {weights}",
        output_rule=lambda p: ("output", "weights") if p["need_weights"] else ("output",),
        infer=_mha, count_params=_mha_params, flops=_mha_flops, module=_mha_module, call=_mha_call,
        support=("causal_mask",),
        params=(
            Param("embed_dim", "int", min=1, inferred=True, help="Query features (last dimension)."),
            Param("num_heads", "int", default=8, min=1, max=1024, help="Heads; must divide embed_dim."),
            Param("dropout", "float", default=0.0, min=0, max=1, help="Dropout on the attention weights."),
            _BIAS,
            Param("add_bias_kv", "bool", default=False, help="Append a learned key and value."),
            Param("add_zero_attn", "bool", default=False, help="Append a zero key and value."),
            Param("kdim", "int", min=1, inferred=True, help="Key features (last dimension)."),
            Param("vdim", "int", min=1, inferred=True, help="Value features (last dimension)."),
            _BATCH_FIRST,
            Param("need_weights", "bool", default=True, ctor=False,
                  help="Also output the attention weights (off allows the faster fused kernel)."),
            Param("average_attn_weights", "bool", default=True, ctor=False,
                  help="Average the weights over heads (off: one map per head)."),
            _causal("Each position attends only to itself and earlier ones (query and key of one length)."),
        ),
    ),
    layer(
        type="ScaledDotProductAttention", family="Attention",
        summary="softmax(q k^T * scale) v over [N, heads, T, features], as F.scaled_dot_product_attention.",
        inputs=("query", "key", "value"), infer=_sdpa, flops=_sdpa_flops, call=_sdpa_call,
        imports=frozenset({"F"}),
        params=(
            _causal("Each query position attends only to key positions up to its own."),
            Param("scale", "float", default=None, optional=True, min=0, max=1e6,
                  help="Factor on q k^T; empty means 1 / sqrt(features)."),
        ),
    ),
    layer(
        type="TransformerEncoderLayer", family="Attention",
        summary="Self-attention then a feed-forward block, each with a residual and layer norm.",
        inputs=("src",), infer=_encoder, count_params=_encoder_params, flops=_encoder_flops,
        call=_encoder_call, support=("causal_mask",),
        module=torch_module("nn.TransformerEncoderLayer", positional=("d_model", "nhead"), keep=("batch_first",)),
        params=(*_transformer_params(), _causal("Each position attends only to earlier ones (GPT-style).")),
    ),
    layer(
        type="TransformerDecoderLayer", family="Attention",
        summary="Self-attention on tgt, attention to memory, then feed-forward; residuals and norms.",
        inputs=("tgt", "memory"), infer=_decoder, count_params=_decoder_params, flops=_decoder_flops,
        call=_decoder_call, support=("causal_mask",),
        module=torch_module("nn.TransformerDecoderLayer", positional=("d_model", "nhead"), keep=("batch_first",)),
        params=(*_transformer_params(), _causal("Each tgt position attends only to earlier ones.")),
    ),
    _positional_layer("PositionalEncoding", "Adds fixed sine/cosine position signals to [N, T, d_model].",
                      5000, learned=False),
    _positional_layer("LearnedPositionalEmbedding", "Adds a learned vector per position to [N, T, d_model].",
                      512, learned=True),
)
