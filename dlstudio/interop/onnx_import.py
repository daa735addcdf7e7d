"""Import an ONNX file: one converter per operator type, initialisers as the layers' weights.

A value is a :class:`~dlstudio.interop.builder.Port` when a layer computes it, a numpy array
when fixed (an initialiser, a ``Constant``), a :class:`~dlstudio.interop.onnx_values.Symbolic`
value when computed from the input's sizes, or a value waiting for its consumer
(:class:`~dlstudio.interop.onnx_values.Pending`: a time-major view, attention scores). Nodes
on fixed values and sizes are evaluated (so ``Shape``..``Reshape`` chains, causal masks and
zero states need no layer, and a length exported as dynamic stays symbolic); the others go to
their converter, which sees the shapes DL Studio infers for the layers made so far. A
``MatMul`` by a fixed matrix followed by the ``Add`` of a fixed vector becomes one Linear; an
``nn.MultiheadAttention`` (:mod:`dlstudio.interop.onnx_scopes`) one layer. Operators without a
converter, or with attributes no layer models, become ``Unsupported`` nodes naming the ONNX node.
Needs the optional ``onnx`` package (``pip install dlstudio[onnx]``).
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlstudio.core.errors import DLStudioError
from dlstudio.core.tensor import BATCH, TensorType
from dlstudio.interop import onnx_recurrent  # noqa: F401  (registers the LSTM and GRU converters)
from dlstudio.interop.builder import GraphBuilder, ImportResult, InputSpec, Port
from dlstudio.interop.calls import Unmappable
from dlstudio.interop.onnx_calls import ONNX_CONVERTERS, OnnxCall, onnx_package
from dlstudio.interop.onnx_ops import FOLDABLE
from dlstudio.interop.onnx_scopes import Scope, attention_scopes, multihead_attention, set_aside
from dlstudio.interop.onnx_values import (
    Pending,
    SharedWeights,
    counting,
    fold,
    output_types,
    shape_value,
)

_DTYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16", 6: "int32", 7: "int64", 9: "bool"}


class OnnxImportFailed(DLStudioError):
    """The ONNX file could not be read (one line)."""


def import_onnx(path: Path, inputs: Sequence[InputSpec] = ()) -> ImportResult:
    """Map the ONNX model at ``path`` onto a flat graph of catalogue layers, with its weights."""
    onnx = onnx_package()
    try:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception as error:  # noqa: BLE001  (protobuf's and onnx's errors vary)
        raise OnnxImportFailed(f"{path}: not a readable ONNX model ({type(error).__name__}: "
                               f"{' '.join(str(error).split())[:200]})") from error
    return _OnnxWalker(model, GraphBuilder(path.stem), {spec.name: spec for spec in inputs}).walk()


def _module_name(node: Any) -> str:
    """The PyTorch module path a node came from, as torch.onnx writes scopes (in the name
    ``/layer2/layer2.0/downsample/downsample.0/Conv``, or the dynamo exporter's
    ``name_scopes`` metadata) -> ``layer2.0.downsample.0``; else the node's name or type."""
    scopes = [part for part in node.name.split("/") if part][:-1]
    written = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
    if written is not None:
        try:
            named = [str(part) for part in ast.literal_eval(written)]
        except (ValueError, SyntaxError):
            named = []
        scopes = [part for part in named[:-1] if part] or named[-1:]
    if not scopes:
        return node.name or node.op_type
    path, previous = "", ""
    for scope in scopes:
        if previous and scope.startswith(previous + "."):
            path += scope[len(previous):]
        else:
            path += f".{scope}" if path else scope
        previous = scope
    return path


class _OnnxWalker:
    def __init__(self, model: Any, builder: GraphBuilder, given: dict[str, InputSpec]) -> None:
        onnx = onnx_package()
        self.model, self.builder, self.given = model, builder, given
        self.graph = model.graph
        self.values: dict[str, Any] = {init.name: onnx.numpy_helper.to_array(init)
                                       for init in self.graph.initializer}
        self.initializers = set(self.values)
        self.shapes = {info.name: _dims(info) for info in
                       (*self.graph.input, *self.graph.value_info, *self.graph.output)}
        self.consumers = Counter(name for node in self.graph.node for name in node.input)
        self.consumers.update(output.name for output in self.graph.output)
        self.skip: set[str] = set()
        #: DL Studio's type of each layer output made so far (the batch is ``N``).
        self.types: dict[Port, TensorType] = {}
        self.symbols: tuple[str, ...] = ()
        #: The batch size the model was exported with, where it is fixed (none given as dynamic).
        self.batch_size: int | None = None
        self.shares = SharedWeights()
        #: Recurrent nodes made, by node id (another layer of their module may stack onto them).
        self.recurrent: dict[str, Any] = {}
        #: Modules imported as one layer (nn.MultiheadAttention), by each of their nodes.
        self.scopes = {id(node): scope for scope in attention_scopes(self.graph, _module_name).values()
                       for node in scope.nodes}

    def walk(self) -> ImportResult:
        for info in self.graph.input:
            if info.name not in self.values:
                self.values[info.name] = self._input(info)
        self.symbols = tuple(sorted({d for t in self.types.values() for d in t.shape if isinstance(d, str)}))
        for node in self.graph.node:
            if node.name and node.name in self.skip:
                continue
            self._visit(node)
        for output in self.graph.output:
            value = self._output_port(output.name)
            if isinstance(value, Port):
                wanted = output.name if output.name.isidentifier() else "output"
                self.builder.add("Output", wanted, {}, [(value, "input")])
        return self.builder.finish()

    def _output_port(self, name: str) -> Any:
        """The model output ``name`` as a port: what was pending for it is built now."""
        value = self.values.get(name)
        if not isinstance(value, Pending):
            return value
        try:
            return value.port()
        except Unmappable as why:
            return Port(self.builder.add_unsupported(f"ONNX output {name}: {why}", name, name, []))

    def _input(self, info: Any) -> Port:
        spec = self.given.get(info.name)
        if spec is None:
            dims = self.shapes.get(info.name) or ()
            shape = tuple(d if isinstance(d, int) else f"S{i}" if d is None or not str(d).isidentifier()
                          else str(d) for i, d in enumerate(dims))[1:]
            dtype = _DTYPES.get(info.type.tensor_type.elem_type, "float32")
            spec = InputSpec(info.name, shape, dtype)
        port = Port(self.builder.add("Input", info.name, {"shape": list(spec.shape), "dtype": spec.dtype}))
        self.types[port] = TensorType((BATCH, *spec.shape), spec.dtype)
        batch = (self.shapes.get(info.name) or (None,))[0]
        if isinstance(batch, int) and self.batch_size is None:
            self.batch_size = batch
        return port

    def typed(self, type_name: str, node_id: str, params: dict[str, Any], inputs: Any) -> None:
        """Note the types DL Studio infers for the outputs of the node just made."""
        given = {name: self.types.get(port) for port, name in inputs}
        if all(given.values()):
            for name, tensor in output_types(type_name, node_id, params, given).items():
                self.types[Port(node_id, name)] = tensor

    def builder_node(self, node_id: str) -> Any:
        return next(node for node in self.builder.nodes if node.id == node_id)

    def shape_of(self, name: str) -> tuple[Any, ...] | None:
        value = self.values.get(name)
        if isinstance(value, Port) and value in self.types:
            return self.types[value].shape
        if isinstance(value, Pending) and value.shape is not None:
            return value.shape
        return self.shapes.get(name)

    def _visit(self, node: Any) -> None:
        onnx = onnx_package()
        inputs = [self.values.get(name) if name else None for name in node.input]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        call = OnnxCall(self, node, inputs, attrs, _module_name(node))
        outputs = self._fixed(call) if self._foldable(call) else None
        scope = self.scopes.get(id(node))
        if scope is not None:
            outputs = outputs or [set_aside() for _ in node.output]
        elif outputs is None:
            outputs = self._converted(call)
        for name, value in zip(node.output, outputs, strict=False):
            self.values[name] = value
        if scope is not None and node is scope.nodes[-1]:
            self.values[scope.output] = self._scope_layer(scope)

    def _scope_layer(self, scope: Scope) -> Port:
        """The module of ``scope`` as one layer, or one Unsupported node saying why not."""
        try:
            return multihead_attention(self, scope)
        except Unmappable as why:
            ports = list(dict.fromkeys(v for v in (self.values.get(n) for n in scope.inputs) if isinstance(v, Port)))
            operation = f"ONNX nn.MultiheadAttention: {why}"
            return Port(self.builder.add_unsupported(operation, scope.path, scope.path, ports, scope.path))

    def _foldable(self, call: OnnxCall) -> bool:
        """Whether the node computes only from fixed values and sizes (not a table's rows
        looked up at positions computed from a size, which is a layer)."""
        if call.node.op_type == "Shape":
            return True
        if any(isinstance(value, Port | Pending) for value in call.inputs):
            return False
        return not (call.node.op_type == "Gather" and call.node.input[0] in self.initializers
                    and counting(call.inputs[1]))

    def _fixed(self, call: OnnxCall) -> list[Any] | None:
        """The node's outputs evaluated on fixed values and sizes; None when it cannot be."""
        if call.node.op_type == "Shape":
            return self._shape(call)
        if call.node.op_type in FOLDABLE:
            return FOLDABLE[call.node.op_type](call)
        try:
            return fold(call.node, call.inputs)
        except Unmappable:
            return None

    def _shape(self, call: OnnxCall) -> list[Any] | None:
        dims = self.shape_of(call.node.input[0])
        if dims is None or None in dims:
            return None
        start, end = call.attrs.get("start", 0), call.attrs.get("end")
        try:
            return [shape_value(tuple(dims)[start:end], self.symbols)]
        except (KeyError, ValueError, ZeroDivisionError):  # a size named by ONNX only (unk__0)
            return None

    def _converted(self, call: OnnxCall) -> list[Any]:
        """The node's outputs from its converter, or one Unsupported node saying why not."""
        node, reason = call.node, ""
        converter = ONNX_CONVERTERS.get(node.op_type)
        if converter is not None:
            try:
                return list(converter(call))
            except Unmappable as why:
                reason = str(why)
        ports = [value for value in call.inputs if isinstance(value, Port)]
        operation = f"ONNX {node.op_type}" + (f": {reason}" if reason else "")
        made = self.builder.add_unsupported(operation, node.name, call.name, ports, call.name)
        return [Port(made)] * len(node.output)


def _dims(info: Any) -> tuple[Any, ...] | None:
    tensor = info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
