"""What a converter of an ONNX node sees and gives, and the registry of converters.

Converters (:mod:`dlstudio.interop.onnx_ops`) map one ONNX operator type each to catalogue
layers, registered in :data:`ONNX_CONVERTERS`; the importer has no per-operator branch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dlstudio.exits import UsageError
from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Unmappable
from dlstudio.interop.onnx_values import Pending, Unary, output_types

OnnxConverter = Callable[["OnnxCall"], Sequence[Any]]
#: Converters by ONNX operator type.
ONNX_CONVERTERS: dict[str, OnnxConverter] = {}


def onnx_package() -> Any:
    """The ``onnx`` module; without it, a UsageError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise UsageError("importing ONNX needs the onnx package: pip install 'dlstudio[onnx]'") from None
    return onnx


def register(*op_types: str) -> Callable[[OnnxConverter], OnnxConverter]:
    def bind(converter: OnnxConverter) -> OnnxConverter:
        for op_type in op_types:
            ONNX_CONVERTERS[op_type] = converter
        return converter

    return bind


@dataclass
class OnnxCall:
    """One ONNX node: its inputs (ports or arrays), attributes and the inferred shapes."""

    walker: Any  # the importer's walker: values, types, builder, graph, consumers, shares
    node: Any
    inputs: list[Any]
    attrs: dict[str, Any]
    name: str
    absorbed: list[str] = field(default_factory=list)

    def port(self, index: int = 0) -> Port:
        """Input ``index`` as a layer's output, building what was pending for it."""
        value = self.inputs[index] if index < len(self.inputs) else None
        if isinstance(value, Pending):  # build its layers now
            value = value.port()
            self.inputs[index] = value
        if not isinstance(value, Port):
            raise Unmappable(f"input {index} is not computed from the model's inputs")
        return value

    def fixed(self, index: int) -> np.ndarray | None:
        """Input ``index`` as a fixed array; None when absent; Unmappable when computed."""
        value = self.inputs[index] if index < len(self.inputs) else None
        if value is not None and not isinstance(value, np.ndarray):
            raise Unmappable(f"input {index} is computed, where a fixed weight is expected")
        return value

    def shape(self, name: str) -> tuple[Any, ...] | None:
        """The shape of ONNX value ``name``: as DL Studio infers it for a layer's output (the
        batch is ``N``), else as ONNX shape inference gives it."""
        return self.walker.shape_of(name)

    def type_of(self, value: Any) -> Any:
        """DL Studio's type (a TensorType) of a layer output or a one-input layer not built
        yet, or None when not known."""
        if isinstance(value, Port):
            return self.walker.types.get(value)
        return getattr(value, "tensor", None)

    def unary(self, type_name: str, params: dict[str, Any], base: Any) -> Any:
        """A one-input layer on ``base`` (a port or a value not built yet), built when needed."""
        def build() -> Port:
            return self.add(type_name, params, [(base.port() if isinstance(base, Pending) else base, "input")])

        given = self.type_of(base)
        tensor = given and output_types(type_name, self.name, params, {"input": given}).get("output")
        return Unary(build, tensor and tensor.shape, base=base, type_name=type_name, params=params, tensor=tensor)

    @property
    def rank(self) -> int:
        shape = self.shape(self.node.input[0])
        if shape is None:
            raise Unmappable("the input's rank is unknown")
        return len(shape)

    def add(self, type_name: str, params: dict[str, Any], inputs: Sequence[tuple[Port, str]],
            weights: dict[str, np.ndarray] | None = None) -> Port:
        tensors = {key: torch.from_numpy(np.array(value)) for key, value in (weights or {}).items()}
        node_id = self.walker.builder.add(type_name, self.name, params, inputs, self.name, tensors)
        self.walker.typed(type_name, node_id, params, inputs)
        self.walker.shares.tie(self.walker.builder_node(node_id), weights or {})
        return Port(node_id)

    def single(self, type_name: str, params: dict[str, Any] | None = None) -> list[Port]:
        return [self.add(type_name, params or {}, [(self.port(), "input")])]
