"""Sequence family: Embedding and the recurrent layers RNN, LSTM and GRU.

Recurrent layers are declared with ``batch_first=True`` by default (always written out, since
torch's default is False): sequences flow as [N, T, features] like everything else. Their
output ports are named after what torch returns: ``output, h_n`` (``c_n`` too for LSTM), and
optional ``h_0`` (and ``c_0``) inputs set the initial state.
"""

from __future__ import annotations

from typing import Any

from dlstudio.core.spec import InferContext, LayerSpec, Param, layer, register, torch_module
from dlstudio.core.tensor import INT_DTYPES, TensorType, format_shape

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


# --- Embedding ---


def _embedding(ctx: InferContext) -> TensorType:
    x, p = ctx.input, ctx.params
    if x.dtype not in INT_DTYPES:
        ctx.fail(f"{ctx.where} needs int64 token ids but gets {x.dtype} from '{ctx.source_of()}'",
                 "set the Input's dtype to int64 (token ids), or remove the Embedding")
    count, pad = p["num_embeddings"], p["padding_idx"]
    if pad is not None and not -count <= pad < count:
        ctx.fail(f"{ctx.where} has padding_idx={pad} outside its {count} embeddings",
                 f"use a padding_idx between {-count} and {count - 1}, or clear it")
    return TensorType((*x.shape, p["embedding_dim"]), "float32")


def _embedding_params(ctx: InferContext) -> int:
    return ctx.params["num_embeddings"] * ctx.params["embedding_dim"]


# --- RNN, LSTM, GRU ---


def _directions(p: dict[str, Any]) -> int:
    return 2 if p["bidirectional"] else 1


def _out_size(p: dict[str, Any]) -> int:
    return p.get("proj_size") or p["hidden_size"]


def _recurrent(ctx: InferContext) -> dict[str, TensorType]:
    x, p = ctx.input, ctx.params
    ctx.require_rank(x, (3,))
    ctx.require_float(x)
    ctx.infer_param("input_size", x.shape[-1], "feature size (last dimension)")
    if p.get("proj_size", 0) >= p["hidden_size"]:
        ctx.fail(f"{ctx.where} has proj_size={p['proj_size']}, not smaller than hidden_size={p['hidden_size']}",
                 f"use a proj_size below {p['hidden_size']}, or 0 for no projection")
    if p["dropout"] and p["num_layers"] == 1:
        ctx.warn(f"{ctx.where} has dropout={p['dropout']} but one layer: torch applies it only "
                 "between layers, so it does nothing", "set num_layers above 1, or dropout to 0")
    batch = x.shape[0] if p["batch_first"] else x.shape[1]
    stack = _directions(p) * p["num_layers"]
    states = {"h_n": TensorType((stack, batch, _out_size(p)), x.dtype)}
    if ctx.spec.type == "LSTM":
        states["c_n"] = TensorType((stack, batch, p["hidden_size"]), x.dtype)
    _check_initial_states(ctx, states)
    return {"output": x.with_shape((*x.shape[:2], _directions(p) * _out_size(p))), **states}


def _check_initial_states(ctx: InferContext, states: dict[str, TensorType]) -> None:
    given = {port: ctx.inputs[port] for port in ("h_0", "c_0") if port in ctx.inputs}
    if ctx.spec.type == "LSTM" and len(given) == 1:
        missing = "c_0" if "h_0" in given else "h_0"
        ctx.fail(f"{ctx.where} gets {next(iter(given))} but nothing on {missing}: an LSTM "
                 "starts from both states or from zeros", f"connect {missing}, or neither", missing)
    for port, tensor in given.items():
        wanted = states[port.replace("_0", "_n")].shape
        if tensor.shape != wanted or tensor.dtype != ctx.input.dtype:
            ctx.fail(f"{ctx.where} needs {port} of shape {format_shape(wanted)} ({ctx.input.dtype}) "
                     f"but gets {tensor} ({tensor.dtype}) from '{ctx.source_of(port)}'",
                     f"feed it the {port.replace('_0', '_n')} of another {ctx.spec.type} with the same "
                     "num_layers, bidirectional and sizes", port)


def _layer_inputs(p: dict[str, Any]) -> list[int]:
    """Input size of each stacked layer: the features, then the previous layer's output."""
    return [p["input_size"]] + [_directions(p) * _out_size(p)] * (p["num_layers"] - 1)


def _step_weights(type_name: str, p: dict[str, Any], inputs: int) -> int:
    """Multiply-adds of one direction of one layer for one time step (= its weight count)."""
    hidden, proj = p["hidden_size"], p.get("proj_size", 0)
    return _GATES[type_name] * hidden * (inputs + _out_size(p)) + hidden * proj


def _recurrent_params(ctx: InferContext) -> int:
    p, name = ctx.params, ctx.spec.type
    biases = 2 * _GATES[name] * p["hidden_size"] if p["bias"] else 0
    per_direction = sum(_step_weights(name, p, n) + biases for n in _layer_inputs(p))
    return _directions(p) * per_direction


def _recurrent_flops(ctx: InferContext) -> int | None:
    """Per item of dim 0: the T steps of a sample, or (batch_first off) one step of N samples."""
    p, steps = ctx.params, ctx.input.shape[1]
    if not isinstance(steps, int):
        return None
    per_step = sum(_step_weights(ctx.spec.type, p, n) for n in _layer_inputs(p))
    return _directions(p) * per_step * steps


def _recurrent_call(p: dict[str, Any], args: list[str], attr: str) -> tuple[str, list[str]]:
    states = [a for a in args[1:] if a != "None"]
    if len(states) == 2:
        return attr, [args[0], f"({states[0]}, {states[1]})"]
    return attr, [args[0], *states]


def _recurrent_layer(type_name: str, summary: str, *extra: Param) -> LayerSpec:
    lstm = type_name == "LSTM"
    params = (
        Param("input_size", "int", min=1, inferred=True, help="Features per time step (last dimension)."),
        Param("hidden_size", "int", default=64, min=1, help="Features of the hidden state."),
        Param("num_layers", "int", default=1, min=1, max=64, help="Stacked recurrent layers."),
        *extra,
        Param("bias", "bool", default=True, help="Learn bias weights."),
        Param("batch_first", "bool", default=True,
              help="Sequences as [N, T, features] (on), or [T, N, features] as torch's default."),
        Param("dropout", "float", default=0.0, min=0, max=1, help="Dropout between stacked layers."),
        Param("bidirectional", "bool", default=False, help="Also run the sequence backwards."),
    )
    if lstm:
        params += (Param("proj_size", "int", default=0, min=0,
                         help="Project h to this size (0: no projection; below hidden_size)."),)
    states = ("h_0", "c_0") if lstm else ("h_0",)
    return layer(
        type=type_name, family="Sequence", summary=summary, params=params,
        inputs=("input", *states), optional_inputs=frozenset(states),
        outputs=("output", "h_n", "c_n") if lstm else ("output", "h_n"),
        unpack="{output}, ({h_n}, {c_n})" if lstm else "{output}, {h_n}",
        infer=_recurrent, count_params=_recurrent_params, flops=_recurrent_flops, call=_recurrent_call,
        module=torch_module(f"nn.{type_name}", positional=("input_size", "hidden_size"), keep=("batch_first",)),
    )


register(
    layer(
        type="Embedding", family="Sequence", summary="Looks up a learned vector for each token id.",
        infer=_embedding, count_params=_embedding_params, flops=lambda ctx: 0,
        weights=lambda p: {"weight": (p["num_embeddings"], p["embedding_dim"])},
        module=torch_module("nn.Embedding", positional=("num_embeddings", "embedding_dim")),
        params=(
            Param("num_embeddings", "int", default=1000, min=1, help="Vocabulary size (ids 0 .. size-1)."),
            Param("embedding_dim", "int", default=64, min=1, help="Size of each vector."),
            Param("padding_idx", "int", optional=True, min=-(2**31),
                  help="An id whose vector stays zero and learns nothing (e.g. padding)."),
        ),
    ),
    _recurrent_layer("RNN", "Elman recurrent layer: h_t = tanh(W x_t + U h_(t-1) + b).",
                     Param("nonlinearity", "choice", default="tanh", choices=("tanh", "relu"),
                           help="Activation of the hidden state.")),
    _recurrent_layer("LSTM", "Long short-term memory: gated recurrence with a cell state."),
    _recurrent_layer("GRU", "Gated recurrent unit: an LSTM-like recurrence with fewer gates."),
)
