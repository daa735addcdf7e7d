"""Import a PyTorch model: load the user's file, build the module, trace it, map every call.

The module is traced with ``torch.fx`` and run once on example inputs (symbolic sizes get
small stand-in values) so that every node's concrete value is known. Then each node becomes:

* a catalogue layer, through the converter :mod:`dlstudio.interop.torch_ops` registers for
  its module class, function or method;
* a folded constant, when its value holds no tensor (``x.size(1)``, ``x.device``): shapes are
  recomputed by the graph itself;
* a fixed tensor, when it depends on no input (``torch.arange(T)``, a buffer), which only a
  converter that understands it may consume (learned positions, a causal mask);
* otherwise an ``Unsupported`` node naming the operation and its source line.

Importing runs the user's file: the ``import`` command and the app both say so first.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from dlstudio.core.errors import DLStudioError
from dlstudio.exits import UsageError
from dlstudio.interop import torch_functions, torch_modules  # noqa: F401  (they register their converters)
from dlstudio.interop.builder import GraphBuilder, ImportResult, InputSpec, Port
from dlstudio.interop.calls import CONVERTERS, FIXED_CONVERTERS, Call, Fixed, Unmappable
from dlstudio.interop.regions import Scope
from dlstudio.interop.repeats import with_blocks

#: The batch size of the example inputs, and the stand-ins for symbolic sizes, in order.
EXAMPLE_BATCH = 2
EXAMPLE_SIZES = (5, 7, 11, 13, 17, 19)


class ImportFailed(DLStudioError):
    """The user's file or model could not be loaded, built or traced (one line)."""


def load_model(target: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Run ``FILE.py`` and build ``NAME`` from ``FILE.py:NAME`` with ``kwargs``."""
    path_text, _, name = target.rpartition(":")
    path = Path(path_text)
    if not path_text or not name.isidentifier():
        raise ImportFailed(f"{target}: give FILE.py:NAME, the file and the class or function to build")
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    namespace = _run_file(path)
    factory = getattr(namespace, name, None)
    if not callable(factory):
        raise ImportFailed(f"{path} defines no class or function '{name}'")
    try:
        model = factory(**(kwargs or {}))
    except Exception as error:  # noqa: BLE001  (the user's code: any error, reported in one line)
        raise ImportFailed(f"{path}: {name}(...) raised {_brief(error)}") from error
    if not isinstance(model, nn.Module):
        raise ImportFailed(f"{path}: {name}(...) gave a {type(model).__name__}, not a torch.nn.Module")
    return model


def _run_file(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"dlstudio_import_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ImportFailed(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look their module up
    try:
        spec.loader.exec_module(module)
    except BaseException as error:  # noqa: BLE001  (SystemExit and all: the file is the user's)
        sys.modules.pop(spec.name, None)
        if isinstance(error, KeyboardInterrupt):
            raise
        raise ImportFailed(f"{path}: importing it raised {_brief(error)}{_line_of(error, path)}") from None
    return module


def _brief(error: BaseException) -> str:
    text = " ".join(str(error).split())[:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _line_of(error: BaseException, path: Path) -> str:
    """`` at line N`` for the deepest frame of the traceback inside ``path``."""
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if Path(traceback.tb_frame.f_code.co_filename) == path:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    if line is None and isinstance(error, SyntaxError):
        line = error.lineno
    return f" at line {line}" if line else ""


def import_module(model: nn.Module, inputs: Sequence[InputSpec], name: str = "imported",
                  blocks: bool = True) -> ImportResult:
    """Map ``model`` onto a graph of catalogue layers, with its weights; with ``blocks``, its
    repeated submodules become blocks (:mod:`dlstudio.interop.repeats`), else it is flat."""
    model = model.eval()
    try:
        graph_module = trace(model)
    except ImportFailed as failure:
        graph_module = _exported(model, inputs, failure)
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    specs = _match_inputs(placeholders, inputs)
    examples = [example_tensor(spec) for spec in specs]
    values = _record_values(graph_module, examples)
    builder = GraphBuilder(name)
    result = _Walker(graph_module, values, builder).walk(specs)
    return with_blocks(result, builder.origins) if blocks else result


def trace(model: nn.Module) -> fx.GraphModule:
    """The module's graph from ``torch.fx`` symbolic tracing, with source lines recorded
    (:func:`import_module` falls back to ``torch.export`` where this fails)."""
    tracer = fx.Tracer()
    tracer.record_stack_traces = True
    try:
        graph = tracer.trace(model)
    except Exception as error:  # noqa: BLE001  (data-dependent control flow and the like)
        raise ImportFailed(f"torch.fx cannot trace {type(model).__name__}: {_brief(error)} "
                           "(write the forward without branching on tensor values)") from error
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def _exported(model: nn.Module, inputs: Sequence[InputSpec], failure: ImportFailed) -> fx.GraphModule:
    """The model through ``torch.export`` (inputs in the forward's order), where fx failed."""
    from dlstudio.interop.exported import export_module

    order = list(inspect.signature(model.forward).parameters)
    given = sorted(inputs, key=lambda spec: order.index(spec.name) if spec.name in order else len(order))
    examples = [example_tensor(spec) for spec in given]
    try:
        with torch.no_grad():
            return export_module(model, examples)
    except Exception as error:  # noqa: BLE001  (export's many refusals)
        raise ImportFailed(f"{failure}; torch.export failed too: {_brief(error)}") from error


def _match_inputs(placeholders: list[fx.Node], inputs: Sequence[InputSpec]) -> list[InputSpec]:
    given = {spec.name: spec for spec in inputs}
    missing = [node.target for node in placeholders if node.target not in given]
    if missing:
        raise UsageError(f"give the shape of {', '.join(map(str, missing))} with --input "
                           f"NAME=SHAPE[:DTYPE], e.g. --input {missing[0]}=3,32,32")
    unknown = sorted(set(given) - {node.target for node in placeholders})
    if unknown:
        raise UsageError(f"the model's forward takes no input named {unknown[0]}")
    return [given[node.target] for node in placeholders]


def example_tensor(spec: InputSpec, batch: int = EXAMPLE_BATCH) -> torch.Tensor:
    """A tensor of ``spec``'s shape (symbolic sizes get stand-in values); zeros for integers."""
    shape = (batch, *(size if isinstance(size, int) else stand_in(size) for size in spec.shape))
    dtype = getattr(torch, spec.dtype)
    if dtype.is_floating_point:
        return torch.randn(shape, dtype=dtype)
    return torch.zeros(shape, dtype=dtype)


def stand_in(symbol: str) -> int:
    """The example value of a symbolic size: fixed per name, so repeated names agree."""
    return EXAMPLE_SIZES[sum(map(ord, symbol)) % len(EXAMPLE_SIZES)]


def _record_values(graph_module: fx.GraphModule, examples: list[torch.Tensor]) -> dict[fx.Node, Any]:
    values: dict[fx.Node, Any] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, node: fx.Node) -> Any:
            values[node] = result = super().run_node(node)
            return result

    try:
        with torch.no_grad():
            Recorder(graph_module).run(*examples)
    except Exception as error:  # noqa: BLE001  (shapes the model refuses)
        raise ImportFailed(f"the model refuses inputs of the given shapes: {_brief(error)}") from error
    return values


def source_line(node: fx.Node) -> str:
    """``file.py:12`` of the innermost user frame that made ``node``, or ''."""
    torch_files = Path(torch.__file__).parent
    found = [(Path(path), line) for path, line in re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "")
             if not Path(path).is_relative_to(torch_files)]
    if not found:
        return ""
    path, line = found[-1]
    return f"{path.name}:{line}"


def module_calls(node: fx.Node) -> tuple[Scope, ...]:
    """The calls of submodules that made ``node``, outermost first, from the ``nn_module_stack``
    that torch.fx and torch.export record (the model itself and a called leaf module left out)."""
    own = str(node.target) if node.op == "call_module" else None
    calls = []
    for key, (path, cls) in (node.meta.get("nn_module_stack") or {}).items():
        name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
        if path and path != own:
            calls.append((str(key), str(path), name))
    return tuple(calls)


def operation_name(node: fx.Node, graph_module: fx.GraphModule) -> str:
    """What a node calls, as the user wrote it: ``nn.GELU``, ``torch.erf``, ``Tensor.roll``."""
    if node.op == "call_module":
        module = graph_module.get_submodule(str(node.target))
        prefix = "nn." if type(module).__module__.startswith("torch.nn") else ""
        return f"{prefix}{type(module).__name__}"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "get_attr":
        return f"self.{node.target}"
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return f"aten.{target.__name__}"
    module = getattr(target, "__module__", "") or ""
    short = {"torch.nn.functional": "F", "_operator": "operator", "torch._C._nn": "F"}.get(module, "torch")
    return f"{short}.{getattr(target, '__name__', str(target))}"


class _Walker:
    """Visits the traced nodes in order, keeping what each stands for in the new graph."""

    def __init__(self, graph_module: fx.GraphModule, values: dict[fx.Node, Any],
                 builder: GraphBuilder) -> None:
        self.graph_module = graph_module
        self.values = values
        self.builder = builder
        self.env: dict[fx.Node, Any] = {}

    def walk(self, inputs: Sequence[InputSpec]) -> ImportResult:
        specs = iter(inputs)
        for node in self.graph_module.graph.nodes:
            self.builder.scope = module_calls(node)
            if node.op == "placeholder":
                self.env[node] = self._input(node, next(specs))
            elif node.op == "output":
                self._outputs(node)
            else:
                self.env[node] = self._visit(node)
        return self.builder.finish()

    def _input(self, node: fx.Node, spec: InputSpec) -> Port:
        params = {"shape": list(spec.shape), "dtype": spec.dtype}
        return Port(self.builder.add("Input", str(node.target), params))

    def _outputs(self, node: fx.Node) -> None:
        ports = list(_ports_in(self._resolve(node.args[0])))
        for index, port in enumerate(ports):
            wanted = "output" if len(ports) == 1 else f"output_{index}"
            self.builder.add("Output", wanted, {}, [(port, "input")])

    def _visit(self, node: fx.Node) -> Any:
        value = self.values[node]
        args, kwargs = self._resolve(node.args), self._resolve(node.kwargs)
        if node.op == "get_attr":
            return Fixed(value)
        if not _has_tensor(value):
            self.builder.folded += 1
            return value
        call = self._call(node, args, kwargs)
        if not any(True for _ in _ports_in((args, kwargs))):
            return self._fixed(node, call)
        converter = self._converter(node, call)
        if converter is None:
            return self._unsupported(node, call)
        try:
            return converter(call)
        except Unmappable as why:
            return self._unsupported(node, call, str(why))

    def _call(self, node: fx.Node, args: Any, kwargs: Any) -> Call:
        module = self.graph_module.get_submodule(str(node.target)) if node.op == "call_module" else None
        return Call(builder=self.builder, name=str(node.target) if module is not None else node.name,
                    args=tuple(args), kwargs=dict(kwargs), module=module, value=self.values[node],
                    arg_values=tuple(self.values.get(a) if isinstance(a, fx.Node) else a for a in node.args))

    def _fixed(self, node: fx.Node, call: Call) -> Any:
        """A call on fixed tensors only: fixed too, unless its module has a converter for that."""
        converter = FIXED_CONVERTERS.get(type(call.module)) if call.module is not None else None
        if converter is None:
            return Fixed(call.value)
        try:
            return converter(call)
        except Unmappable as why:
            return self._unsupported(node, call, str(why))

    def _converter(self, node: fx.Node, call: Call) -> Callable[[Call], Any] | None:
        if node.op == "call_module":
            return CONVERTERS.get(type(call.module))
        key = node.target if node.op == "call_function" else f"Tensor.{node.target}"
        try:
            return CONVERTERS.get(key)
        except TypeError:  # an unhashable target
            return None

    def _unsupported(self, node: fx.Node, call: Call, reason: str = "") -> Any:
        """An Unsupported node for ``call`` (``reason``: why its converter refused it)."""
        inputs = list(dict.fromkeys(_ports_in((call.args, call.kwargs))))
        label = call.name if node.op == "call_module" else None
        operation = operation_name(node, self.graph_module) + (f": {reason}" if reason else "")
        node_id = self.builder.add_unsupported(operation, source_line(node), call.name, inputs, label)
        return _shaped_like(call.value, Port(node_id))

    def _resolve(self, value: Any) -> Any:
        return fx.node.map_arg(value, lambda n: self.env[n]) if value is not None else None


def _ports_in(value: Any) -> Iterator[Port]:
    """Every Port inside nested tuples, lists and dicts."""
    if isinstance(value, Port):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _ports_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _ports_in(item)


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, tuple | list):
        return any(_has_tensor(item) for item in value)
    if isinstance(value, dict):
        return any(_has_tensor(item) for item in value.values())
    return False


def _shaped_like(value: Any, port: Port) -> Any:
    """``port`` in place of every tensor of ``value`` (an unsupported call's outputs)."""
    if isinstance(value, tuple | list):
        return type(value)(_shaped_like(item, port) for item in value)
    return port if isinstance(value, torch.Tensor) else value


def factory_name(target: str) -> str:
    """The graph name for ``FILE.py:NAME``: the NAME."""
    return target.rpartition(":")[2] or "imported"
