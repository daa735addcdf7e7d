"""Converters for ``torch.nn`` modules: each module class maps to the catalogue layer of the
same name, its parameters read off the module (:func:`module_params`) and its ``state_dict``
kept as the node's weights, so the compiled graph loads them strictly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from dlstudio.core.catalogue import BUILTINS
from dlstudio.core.spec import Param
from dlstudio.interop.builder import Port
from dlstudio.interop.calls import (
    FIXED_CONVERTERS,
    Call,
    Converter,
    Fixed,
    Positions,
    Unmappable,
    register,
)

# --- parameters read from modules ---


def plain(value: Any, param: Param) -> Any:
    """A module attribute as the graph file holds it: lists, scalars for equal tuples."""
    if param.kind == "bool" and not isinstance(value, bool):
        return value is not None
    if isinstance(value, tuple | list | torch.Size):
        items = [plain(item, param) for item in value]
        if items and len(set(map(repr, items))) == 1 and param.kind in ("ints", "float") and param.scalar_ok:
            return items[0]
        return items
    return value


def module_params(type_name: str, module: nn.Module, skip: Sequence[str] = ()) -> dict[str, Any]:
    """The declaration's parameters read off ``module``, leaving out inferred ones and defaults."""
    params = {}
    for param in BUILTINS[type_name].params:
        if param.inferred or not param.ctor or param.name in skip or not hasattr(module, param.name):
            continue
        value = plain(getattr(module, param.name), param)
        if value != plain(param.default, param):
            params[param.name] = value
    return params


def _require(module: nn.Module, **defaults: Any) -> None:
    for name, default in defaults.items():
        if getattr(module, name, default) != default:
            raise Unmappable(f"{name}={getattr(module, name)!r} is not supported")


def _weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return dict(module.state_dict())


def _generic_module(type_name: str, **unsupported_defaults: Any) -> Converter:
    def convert(call: Call) -> Port:
        assert call.module is not None
        _require(call.module, **unsupported_defaults)
        params = module_params(type_name, call.module)
        return Port(call.add(type_name, params, [(call.tensor(), "input")], _weights(call.module)))

    return convert


_PLAIN_MODULES = (
    "Linear Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d "
    "AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d AdaptiveAvgPool2d "
    "BatchNorm1d BatchNorm2d BatchNorm3d InstanceNorm1d InstanceNorm2d GroupNorm RMSNorm "
    "ReLU ReLU6 LeakyReLU PReLU ELU SELU GELU SiLU Mish Sigmoid Tanh Softplus Hardswish "
    "Dropout Dropout1d Dropout2d Dropout3d AlphaDropout Flatten Unflatten Identity "
    "PixelShuffle PixelUnshuffle ZeroPad1d ZeroPad2d ZeroPad3d ConstantPad1d ConstantPad2d ConstantPad3d"
).split()

for _name in _PLAIN_MODULES:
    register(getattr(nn, _name))(_generic_module(_name))
for _name in ("MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"):
    register(getattr(nn, _name))(_generic_module(_name, return_indices=False))
register(nn.Embedding)(_generic_module("Embedding", max_norm=None, scale_grad_by_freq=False, sparse=False))
register(nn.Upsample)(_generic_module("Upsample", recompute_scale_factor=None))


@register(nn.LayerNorm)
def _layer_norm(call: Call) -> Port:
    module = call.module
    assert isinstance(module, nn.LayerNorm)
    params = module_params("LayerNorm", module)
    if len(module.normalized_shape) > 1:
        params["normalized_shape"] = list(module.normalized_shape)
    return Port(call.add("LayerNorm", params, [(call.tensor(), "input")], _weights(module)))


def _implicit_softmax_dim(rank: int) -> int:
    """The dim torch's Softmax picks when given none (its legacy rule)."""
    return 0 if rank in (0, 1, 3) else 1


@register(nn.Softmax, nn.LogSoftmax)
def _softmax_module(call: Call) -> Port:
    module = call.module
    assert module is not None
    dim = module.dim if module.dim is not None else _implicit_softmax_dim(len(call.shape))
    return call.single(type(module).__name__, {"dim": dim} if dim != -1 else {})


@register(nn.Bilinear)
def _bilinear(call: Call) -> Port:
    assert call.module is not None
    inputs = [(call.tensor(0, "input1"), "input1"), (call.tensor(1, "input2"), "input2")]
    return Port(call.add("Bilinear", module_params("Bilinear", call.module), inputs, _weights(call.module)))


@register(nn.LSTM, nn.GRU, nn.RNN)
def _recurrent(call: Call) -> tuple[Any, ...]:
    module = call.module
    assert module is not None
    type_name = type(module).__name__
    states = call.arg(1, "hx", None)
    inputs = [(call.tensor(), "input")]
    if isinstance(states, tuple):
        inputs += [(states[0], "h_0"), (states[1], "c_0")]
    elif isinstance(states, Port):
        inputs.append((states, "h_0"))
    elif states is not None:
        raise Unmappable("an initial state that does not come from the model's inputs")
    node = call.add(type_name, module_params(type_name, module), inputs, _weights(module))
    if type_name == "LSTM":
        return Port(node), (Port(node, "h_n"), Port(node, "c_n"))
    return Port(node), Port(node, "h_n")


def _is_causal_mask(mask: Any, length: int) -> bool:
    """Whether ``mask`` hides exactly the later positions (bool True or float -inf above the diagonal)."""
    if not isinstance(mask, Fixed) or tuple(mask.value.shape) != (length, length):
        return False
    upper = torch.ones(length, length, dtype=torch.bool).triu(1)
    value = mask.value
    if value.dtype == torch.bool:
        return bool(torch.equal(value, upper))
    return bool(torch.equal(value == float("-inf"), upper) and torch.all(value[~upper] == 0))


@register(nn.MultiheadAttention)
def _attention(call: Call) -> tuple[Port, Port | None]:
    module = call.module
    assert isinstance(module, nn.MultiheadAttention)
    query = call.tensor(0, "query")
    key, value = call.tensor(1, "key"), call.tensor(2, "value")
    if call.arg(3, "key_padding_mask", None) is not None:
        raise Unmappable("key_padding_mask is not supported")
    need, average = call.arg(4, "need_weights", True), call.arg(6, "average_attn_weights", True)
    mask = call.arg(5, "attn_mask", None)
    length = call.shape_of(0)[1 if module.batch_first else 0]
    causal = mask is not None
    if causal and not _is_causal_mask(mask, length):
        raise Unmappable("an attn_mask other than the causal one")
    params = module_params("MultiheadAttention", module, skip=("bias", "add_bias_kv"))
    params.update({"bias": module.in_proj_bias is not None, "add_bias_kv": module.bias_k is not None,
                   "need_weights": need, "average_attn_weights": average, "causal": causal})
    params = {k: v for k, v in params.items() if v != BUILTINS["MultiheadAttention"].param(k).default}
    inputs = [(query, "query")]
    if key != query or value != key:
        inputs += [(key, "key"), (value, "value")]
    node = call.add("MultiheadAttention", params, inputs, _weights(module))
    return Port(node), (Port(node, "weights") if need else None)


def _positions(call: Call) -> Positions:
    """An Embedding of ``arange(T)``: the learned positions of a GPT-style model."""
    module, ids = call.module, call.arg_values[0]
    assert isinstance(module, nn.Embedding)
    flat = ids.reshape(-1)
    if ids.dtype.is_floating_point or not torch.equal(flat, torch.arange(len(flat))):
        raise Unmappable("an Embedding of fixed ids other than 0, 1, 2, ...")
    return Positions(module, call.name, len(flat))


FIXED_CONVERTERS[nn.Embedding] = _positions


def positional_add(call: Call, tokens: Port, positions: Positions) -> Port:
    """``tokens + positions``: a LearnedPositionalEmbedding holding the Embedding's table."""
    shape = call.shape
    if len(shape) != 3 or shape[1] != positions.length:
        raise Unmappable("positions added to something other than a [N, T, features] sequence")
    module = positions.module
    params = {"max_len": module.num_embeddings}
    node = call.builder.add("LearnedPositionalEmbedding", positions.name, params, [(tokens, "input")],
                            positions.name, {"weight": module.weight})
    return Port(node)
