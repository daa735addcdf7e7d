"""How a layer type is declared: ports, typed parameters, shape rule, counts and torch factory.

Every consumer (palette, inspector, validator, compiler, exporter) reads a :class:`LayerSpec`;
none of them has a per-layer branch. Declarations live in ``dlstudio.core.catalogue``, one
module per family, and register themselves with :func:`register`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from dlstudio.core.tensor import Dim, TensorType, is_known

ParamKind = Literal["int", "float", "bool", "choice", "ints", "shape", "str"]


@dataclass(frozen=True)
class Param:
    """One constructor argument of a layer, as data the UI and validator both read.

    ``ints`` is an int tuple of ``length`` items (any length when None); with ``scalar_ok`` a
    single int also works. ``choices`` lists the allowed values of a ``choice`` and the extra
    string values an ``ints`` accepts (such as ``"same"`` for padding). ``inferred`` marks a
    value that follows from the input: None means "infer it". ``ctor`` is False for a
    parameter the torch constructor does not take. With ``none_items`` the items of an
    ``ints`` list may be None (adaptive pooling's output_size: None keeps the input size).
    With ``expression_ok`` a ``"$..."`` expression is accepted too (a block's parameters,
    whose values a repeat may compute per copy).
    """

    name: str
    kind: ParamKind
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    length: int | None = None
    scalar_ok: bool = True
    optional: bool = False
    inferred: bool = False
    ctor: bool = True
    none_items: bool = False
    expression_ok: bool = False

    @property
    def nullable(self) -> bool:
        return self.optional or self.inferred


class ShapeError(Exception):
    """Raised by a shape rule: the node cannot take these inputs or parameters."""

    def __init__(self, message: str, fix: str = "", port: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.port = port


@dataclass(frozen=True)
class Construct:
    """A torch module constructor call: ``nn.Conv2d(3, 64, kernel_size=7)``.

    ``cls`` is ``"nn.<Name>"`` for torch.nn classes, or the name of a class defined in
    :mod:`dlstudio.core.modules` (which the exporter copies into the generated file).
    """

    cls: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class InferContext:
    """What a shape rule sees: the node, its resolved parameters and its input types."""

    __slots__ = ("node_id", "spec", "params", "inputs", "sources", "outputs", "warnings")

    def __init__(
        self,
        node_id: str,
        spec: LayerSpec,
        params: dict[str, Any],
        inputs: dict[str, TensorType],
        sources: dict[str, str],
    ) -> None:
        self.node_id = node_id
        self.spec = spec
        self.params = params
        self.inputs = inputs
        self.sources = sources
        self.outputs: dict[str, TensorType] = {}
        self.warnings: list[tuple[str, str]] = []

    @property
    def input(self) -> TensorType:
        """The type arriving on the first input port."""
        return self.inputs[self.spec.input_ports(len(self.inputs))[0]]

    @property
    def output(self) -> TensorType:
        return self.outputs[self.spec.outputs[0]]

    @property
    def where(self) -> str:
        return f"{self.spec.type} '{self.node_id}'"

    def source_of(self, port: str | None = None) -> str:
        port = port or self.spec.input_ports(len(self.inputs))[0]
        return self.sources.get(port, "?")

    def infer_param(self, name: str, actual: Dim, what: str, port: str | None = None) -> Any:
        """Fill an inferred parameter from the input, or check the value the user gave."""
        given = self.params.get(name)
        if not isinstance(actual, int):
            if given is None:
                self.fail(
                    f"{self.where} cannot infer {name} from the symbolic {what} {actual}",
                    f"set {name} explicitly",
                )
            return given
        if given is None:
            self.params[name] = actual
            return actual
        if given != actual:
            source = self.source_of(port)
            self.fail(
                f"{self.where} expects {what} {given} but gets {actual} from '{source}'",
                f"remove {name} to infer it, or set it to {actual}",
                port,
            )
        return given

    def require_rank(self, tensor: TensorType, ranks: Sequence[int], what: str = "input") -> None:
        if tensor.rank not in ranks:
            expected = " or ".join(str(r) for r in ranks)
            self.fail(
                f"{self.where} expects a {expected}-D {what} (batch included) but gets "
                f"{tensor.rank}-D {tensor} from '{self.source_of()}'",
                "reshape the input (Flatten, Unsqueeze or Reshape) before this node",
            )

    def require_float(self, tensor: TensorType) -> None:
        if not tensor.is_float:
            self.fail(
                f"{self.where} needs a floating-point input but gets {tensor.dtype}",
                "feed it from an Embedding or a float Input",
            )

    def fail(self, message: str, fix: str = "", port: str | None = None) -> None:
        raise ShapeError(message, fix, port)

    def warn(self, message: str, fix: str = "") -> None:
        """Note a problem that torch tolerates (reported as a warning if inference succeeds)."""
        self.warnings.append((message, fix))


def numel(shape: Sequence[Dim], batch: bool = False) -> int | None:
    """Elements of one sample (the batch dim skipped unless ``batch``); None if symbolic."""
    dims = shape if batch else shape[1:]
    return math.prod(dims) if is_known(*dims) else None  # type: ignore[arg-type]


#: Most inputs a variadic node (Add, Concat, ...) takes: ports ``in0`` .. ``in127``.
MAX_VARIADIC_INPUTS = 128


@lru_cache(maxsize=64)
def _numbered_inputs(count: int) -> tuple[str, ...]:
    """``in0`` to ``in<count - 1>`` (one tuple per count: thousands of Add nodes share it)."""
    return tuple(f"in{i}" for i in range(count))


@lru_cache(maxsize=1024)  # a few names ("in0", "in1") asked about for every Add of a graph
def variadic_index(port: str) -> int | None:
    """The index of a variadic port ``in<k>`` (k below :data:`MAX_VARIADIC_INPUTS`, no leading
    zeros), else None; checked on the text, so ``in99999999`` builds nothing."""
    digits = port[2:]
    if not port.startswith("in") or not digits.isascii() or not digits.isdigit():
        return None
    if len(digits) > 3 or (len(digits) > 1 and digits[0] == "0"):
        return None
    index = int(digits)
    return index if index < MAX_VARIADIC_INPUTS else None


InferRule = Callable[[InferContext], TensorType | dict[str, TensorType]]
CountRule = Callable[[InferContext], int]
FlopsRule = Callable[[InferContext], int | None]
ModuleRule = Callable[[dict[str, Any]], Construct]
CallRule = Callable[[dict[str, Any], list[str], str], str | tuple[str, Sequence[str]]]
PortsRule = Callable[[dict[str, Any]], tuple[str, ...]]
WeightsRule = Callable[[dict[str, Any]], dict[str, tuple[int, ...]]]


@dataclass(frozen=True)
class LayerSpec:
    """The single declaration of a layer type.

    ``inputs`` names the input ports; with ``variadic`` the ports are ``in0``, ``in1``, ...
    and at least ``variadic`` of them are needed. ``module`` builds the torch constructor call
    (None for a functional node, which only has a ``call``). ``call`` writes the forward
    expression from the argument names and the attribute (``self.conv_1``), either as text or
    as ``(callee, args)`` so that a long call is laid out like ruff does; ``unpack`` writes
    the assignment target from output variable names (``{output}, ({h_n}, {c_n})``).
    ``output_rule`` gives the output ports for resolved parameters when they depend on them
    (Split's ``out0`` .. ``out{k-1}``); ``outputs`` then lists those of the defaults.
    ``imports`` names what the exported file needs besides ``torch`` and ``nn``
    (``"F"``, ``"math"``); ``support`` names helper classes from :mod:`dlstudio.core.modules`.
    A ``sink`` (Output) hands its value out of the model: the canvas offers no port to wire on.
    ``weights`` gives the shapes of the module's parameters by name (``{"weight": (out, in)}``)
    for resolved parameters: a node may share (tie) only a parameter it declares.
    """

    type: str
    family: str
    summary: str
    infer: InferRule
    params: tuple[Param, ...] = ()
    inputs: tuple[str, ...] = ("input",)
    outputs: tuple[str, ...] = ("output",)
    variadic: int = 0
    optional_inputs: frozenset[str] = frozenset()
    count_params: CountRule | None = None
    flops: FlopsRule | None = None
    module: ModuleRule | None = None
    call: CallRule | None = None
    unpack: str | None = None
    output_rule: PortsRule | None = None
    imports: frozenset[str] = frozenset()
    support: tuple[str, ...] = ()
    sink: bool = False
    weights: WeightsRule | None = None

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def input_ports(self, count: int | None = None) -> tuple[str, ...]:
        """Input port names; for a variadic node, ``count`` of them (at least the minimum)."""
        if not self.variadic:
            return self.inputs
        return _numbered_inputs(max(count or 0, self.variadic))

    def output_ports(self, params: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Output port names for resolved ``params`` (the declared ``outputs`` if fixed)."""
        if self.output_rule is None or params is None:
            return self.outputs
        return self.output_rule(params)

    def accepts_input(self, port: str) -> bool:
        if self.variadic:
            return variadic_index(port) is not None
        return port in self.inputs

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


#: The registry the family modules fill; consumers look types up in a ``Catalogue`` (the
#: built-ins, or a file's scope) from :mod:`dlstudio.core.catalogue`, never here.
CATALOGUE: dict[str, LayerSpec] = {}


def register(*specs: LayerSpec) -> None:
    """Add layer declarations to the catalogue (each type name once)."""
    for spec in specs:
        if spec.type in CATALOGUE:
            raise ValueError(f"layer type {spec.type!r} is declared twice")
        CATALOGUE[spec.type] = spec


def torch_module(
    cls: str, positional: Sequence[str] = (), skip: Sequence[str] = (), keep: Sequence[str] = ()
) -> Callable[[LayerSpec], ModuleRule]:
    """A module rule that passes the parameters straight to ``cls``.

    ``positional`` parameters go first without names; the rest go as keywords, leaving out
    those at their default (unless named in ``keep``, for a default that differs from
    torch's), those in ``skip`` and those whose ``ctor`` is False.
    """

    def bind(spec: LayerSpec) -> ModuleRule:
        defaults = {p.name: p.default for p in spec.params if p.ctor and p.name not in skip}

        def rule(params: dict[str, Any]) -> Construct:
            args = tuple(params[name] for name in positional)
            kwargs = {
                name: params[name]
                for name, default in defaults.items()
                if name not in positional and (name in keep or params.get(name) != default)
            }
            return Construct(cls, args, kwargs)

        return rule

    return bind


def layer(module: Callable[[LayerSpec], ModuleRule] | None = None, **fields: Any) -> LayerSpec:
    """Build a :class:`LayerSpec`, binding a :func:`torch_module` rule to its parameters."""
    spec = LayerSpec(**fields)
    if module is not None:
        spec = LayerSpec(**{**fields, "module": module(spec)})
    return spec
