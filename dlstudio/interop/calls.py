"""What a converter of a traced PyTorch call sees and gives, and the registry of converters.

Converters (:mod:`dlstudio.interop.torch_modules`, :mod:`dlstudio.interop.torch_functions`)
map one module class, function or tensor method each to catalogue layers, registered in
:data:`CONVERTERS`; the importer has no per-layer branch.

A converter gets a :class:`Call` (the arguments as ports and constants, the module, the
concrete values of one example run) and returns what the call's result stands for: a
:class:`~dlstudio.interop.builder.Port`, a tuple of them, or for a pass-through the input's
own port. It raises :class:`Unmappable` with the reason when the call has no faithful layer;
the importer then leaves an ``Unsupported`` node. Module parameters are read from the module
itself, for every parameter its catalogue declaration lists
(:func:`~dlstudio.interop.torch_modules.module_params`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dlstudio.interop.builder import GraphBuilder, Port

Converter = Callable[["Call"], Any]
#: Converters by ``nn.Module`` class, function object, or ``"Tensor.<method>"``.
CONVERTERS: dict[Any, Converter] = {}
#: Converters for a module called on fixed tensors only (an Embedding of ``arange(T)``).
FIXED_CONVERTERS: dict[type, Converter] = {}

_REQUIRED = object()


class Unmappable(Exception):
    """This call has no faithful catalogue layer (the message says why)."""


@dataclass(frozen=True)
class Fixed:
    """A tensor that depends on no model input: a buffer, ``torch.arange(T)``, a mask."""

    value: Any


@dataclass(frozen=True)
class Positions:
    """An Embedding looked up at ``arange(length)``: learned positions, waiting for the add."""

    module: nn.Embedding
    name: str
    length: int


@dataclass
class Call:
    """One traced call: its arguments (ports and constants), module and example values."""

    builder: GraphBuilder
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    module: nn.Module | None
    value: Any
    arg_values: tuple[Any, ...]

    def arg(self, index: int, name: str, default: Any = _REQUIRED) -> Any:
        """Argument ``index`` (or keyword ``name``)."""
        if index < len(self.args):
            return self.args[index]
        if name in self.kwargs:
            return self.kwargs[name]
        if default is _REQUIRED:
            raise Unmappable(f"no argument {name}")
        return default

    def tensor(self, index: int = 0, name: str = "input") -> Port:
        value = self.arg(index, name)
        if not isinstance(value, Port):
            raise Unmappable(f"{name} is not computed from the model's inputs")
        return value

    def shape_of(self, index: int = 0) -> tuple[int, ...]:
        """The example shape of positional argument ``index``."""
        return tuple(self.arg_values[index].shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def add(self, type_name: str, params: dict[str, Any], inputs: Sequence[tuple[Port, str]],
            weights: dict[str, torch.Tensor] | None = None, wanted: str | None = None) -> str:
        """Add a node named after this call (a module keeps its qualified name as label)."""
        label = self.name if self.module is not None else None
        return self.builder.add(type_name, wanted or self.name, params, inputs, label, weights)

    def single(self, type_name: str, params: dict[str, Any], port: Port | None = None) -> Port:
        """A one-input, one-output layer on ``port`` (default: the first argument)."""
        return Port(self.add(type_name, params, [(port or self.tensor(), "input")]))


def register(*keys: Any) -> Callable[[Converter], Converter]:
    def bind(converter: Converter) -> Converter:
        for key in keys:
            CONVERTERS[key] = converter
        return converter

    return bind
