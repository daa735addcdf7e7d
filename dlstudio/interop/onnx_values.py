"""What an ONNX value stands for while importing, besides a layer's output or a fixed array.

Exporters compute sizes at run time (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape``),
build causal masks (``Range``, ``Trilu``, ``Where``) and zero initial states
(``ConstantOfShape``) from the input's size. Such a value is :class:`Symbolic`: it is
evaluated, operator by operator with ONNX's reference implementation, at two samplings of the
symbolic sizes (the batch ``N``, a length ``T``); an entry that follows one size in both is
that size, one that stays put is a number, and a value the same in both is simply fixed.
So a symbolic length stays symbolic, and no pattern of shape operators is matched by name.

Other values wait for their consumer (:class:`Pending`): ``q @ k^T`` may turn out to be the
scores of an attention, a time-major sequence the input of an LSTM. A consumer that does not
recognise one asks for its port, which builds the plain layers then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlstudio.core.analysis import cached_params
from dlstudio.core.catalogue import BUILTINS
from dlstudio.core.params import ParamProblem
from dlstudio.core.spec import InferContext, ShapeError
from dlstudio.core.tensor import Dim, TensorType, resolve_dim
from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Unmappable

#: Sizes given to the symbols at each sampling: different from each other in every sampling
#: and between samplings, and not multiples of one another.
_SAMPLES = ((5, 7, 11, 13, 17, 19), (6, 9, 14, 15, 22, 25))
#: Operators never folded: their result is not a function of their inputs.
_RANDOM = ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli", "Multinomial")


@dataclass(frozen=True)
class Symbolic:
    """A value computed from the input's sizes: its value at each sampling of the sizes."""

    samples: tuple[np.ndarray, ...]
    symbols: tuple[str, ...]

    def sizes(self, index: int) -> dict[str, int]:
        return dict(zip(self.symbols, _SAMPLES[index], strict=False))

    def dims(self) -> list[Dim]:
        """The value as a list of sizes, each a number or one symbol (else Unmappable)."""
        columns = [np.atleast_1d(sample).tolist() for sample in self.samples]
        return [self._dim(entries) for entries in zip(*columns, strict=True)]

    def _dim(self, entries: Sequence[Any]) -> Dim:
        if len(set(entries)) == 1:
            return int(entries[0])
        for symbol in self.symbols:
            if all(entry == self.sizes(i)[symbol] for i, entry in enumerate(entries)):
                return symbol
        raise Unmappable("a size computed from the input's sizes as an expression no layer takes")

    def follows(self, expected: Callable[[dict[str, int]], np.ndarray]) -> bool:
        """Whether the value equals ``expected(sizes)`` at every sampling."""
        return all(np.array_equal(sample, expected(self.sizes(i))) for i, sample in enumerate(self.samples))


def shape_value(shape: Sequence[Dim], symbols: Sequence[str]) -> Symbolic | np.ndarray:
    """``Shape`` of a tensor of ``shape``: fixed when no dim is symbolic."""
    if all(isinstance(d, int) for d in shape):
        return np.array(shape, dtype=np.int64)
    known = tuple(symbols)
    samples = tuple(np.array([resolve_dim(d, dict(zip(known, sizes, strict=False))) for d in shape], np.int64)
                    for sizes in _SAMPLES)
    return Symbolic(samples, known)


def fold(node: Any, inputs: Sequence[Any]) -> list[Any]:
    """The outputs of ``node`` on fixed or symbolic inputs (no port among them)."""
    if node.op_type in _RANDOM:
        raise Unmappable("a random operator on fixed inputs")
    symbolic = [value for value in inputs if isinstance(value, Symbolic)]
    if not symbolic:
        return _evaluate(node, inputs)
    symbols = symbolic[0].symbols
    runs = [_evaluate(node, [v.samples[i] if isinstance(v, Symbolic) else v for v in inputs])
            for i in range(len(_SAMPLES))]
    return [_settled(tuple(outputs), symbols) for outputs in zip(*runs, strict=True)]


def _settled(samples: tuple[np.ndarray, ...], symbols: tuple[str, ...]) -> Symbolic | np.ndarray:
    first = samples[0]
    if all(s.shape == first.shape and np.array_equal(s, first, equal_nan=True) for s in samples[1:]):
        return first
    return Symbolic(samples, symbols)


def _evaluate(node: Any, inputs: Sequence[Any]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator  # (the importer has checked onnx is installed)

    if node.op_type == "Expand" and _uniform(inputs[0]):
        return [_filled(inputs[0], [int(d) for d in inputs[1]])]
    feeds = {name: value for name, value in zip(node.input, inputs, strict=False) if name}
    try:
        return [np.asarray(out) for out in ReferenceEvaluator(node).run(None, feeds)]
    except Exception as error:  # noqa: BLE001  (the reference runtime raises many kinds)
        raise Unmappable(f"could not evaluate it on fixed values ({type(error).__name__})") from error


def _uniform(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.size > 0 and bool(np.all(value == value.flat[0]))


def _filled(value: np.ndarray, sizes: list[int]) -> np.ndarray:
    """A one-valued tensor expanded to ``sizes``: where a size was fixed at export (a batch of
    zeros for the initial state), the size asked for wins."""
    rank = max(value.ndim, len(sizes))
    own = [1] * (rank - value.ndim) + list(value.shape)
    asked = [1] * (rank - len(sizes)) + sizes
    return np.full([a if a != 1 else o for o, a in zip(own, asked, strict=True)], value.flat[0], value.dtype)


# --- values that wait for their consumer ---


@dataclass(eq=False)
class Pending:
    """A value whose layers are built only if a consumer needs it as a plain tensor."""

    build: Callable[[], Port]
    shape: tuple[Dim, ...] | None = None
    _port: Port | None = field(default=None, init=False)

    def port(self) -> Port:
        if self._port is None:
            self._port = self.build()
        return self._port


@dataclass(eq=False)
class Unary(Pending):
    """A one-input layer (a Scale, a Permute) not built yet, so that attention can take the
    scaling and the transposing of its query and key into itself."""

    base: Port | Pending | None = None
    type_name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    tensor: TensorType | None = None


@dataclass(eq=False)
class Product(Pending):
    """``a @ b`` of two computed tensors: attention scores if a causal mask and softmax follow."""

    left: Port | Pending | None = None
    right: Port | Pending | None = None


@dataclass(eq=False)
class MaskedScores(Pending):
    """Scores plus a causal mask (then a softmax, then the product with the values)."""

    scores: Product | None = None
    softmax: bool = False


@dataclass(eq=False)
class Laid(Pending):
    """A batch-first tensor ``base`` as ONNX lays it out: a sequence [N, T, C] as ``"TNC"``
    (time major), ``"TDNH"`` (an ONNX LSTM's Y: time, direction, batch, hidden) or ``"TNDH"``;
    or any tensor ``"folded"``: its first ``lead`` dims joined into one (batch and heads)."""

    base: Port | None = None
    layout: str = "TNC"
    directions: int = 1
    lead: int = 0


@dataclass(eq=False)
class Positions(Pending):
    """Rows 0..T-1 of a fixed table, T the input's length: learned positions, waiting for the add."""

    table: np.ndarray | None = None
    label: str = ""


def counting(value: Any) -> bool:
    """Whether ``value`` may be the positions 0, 1, ..., T-1: computed from the sizes, or
    fixed at export as exactly those."""
    if isinstance(value, Symbolic):
        return value.samples[0].ndim == 1
    return isinstance(value, np.ndarray) and value.ndim == 1 and np.array_equal(value, np.arange(len(value)))


def causal(value: Any) -> bool:
    """Whether ``value`` (symbolic, or fixed where the length was) is an additive causal mask
    over [T, T]: 0 on and below the diagonal, -inf (or the most negative float) above."""
    samples = value.samples if isinstance(value, Symbolic) else (value,) if isinstance(value, np.ndarray) else ()
    return bool(samples) and all(sample.ndim == 2 and _is_causal(sample) for sample in samples)


def _is_causal(sample: np.ndarray) -> bool:
    rows, cols = sample.shape
    if rows != cols or rows < 2 or not np.issubdtype(sample.dtype, np.floating):
        return False
    above = np.triu(np.ones_like(sample, dtype=bool), 1)
    return bool(np.all(sample[~above] == 0) and np.all(sample[above] <= -1e30))


def output_types(type_name: str, node_id: str, params: dict[str, Any],
                 inputs: dict[str, TensorType]) -> dict[str, TensorType]:
    """What DL Studio's shape rules give for a node made with these inputs; empty when they
    refuse (analysis says why later)."""
    spec = BUILTINS[type_name]
    try:
        context = InferContext(node_id, spec, cached_params(spec, params), dict(inputs), {})
        produced = spec.infer(context)
    except (ShapeError, ParamProblem, KeyError):
        return {}
    return produced if isinstance(produced, dict) else {spec.outputs[0]: produced}


@dataclass
class SharedWeights:
    """Weights seen so far, by content: a tied model's second use of a matrix (GPT-2's head,
    the token table transposed) is written out as a copy, so the copy ties to the first."""

    _seen: dict[tuple[Any, ...], str] = field(default_factory=dict)

    def tie(self, node: Any, weights: dict[str, np.ndarray]) -> None:
        """Tie ``node``'s matrices that equal (or transpose) one seen before; note the others."""
        if BUILTINS[node.type].weights is None or node.tie:
            return
        ties = {}
        for key, array in weights.items():
            if array.ndim < 2 or np.all(array == array.flat[0]):  # a constant one proves nothing
                continue
            reference = self._seen.get(_content(array))
            if reference is not None:
                ties[key] = reference
            else:
                self._seen[_content(array)] = f"{node.id}.{key}"
                if array.ndim == 2:
                    self._seen.setdefault(_content(array.T), f"{node.id}.{key}.T")
        node.tie = ties or None


def _content(array: np.ndarray) -> tuple[Any, ...]:
    import hashlib

    return array.shape, array.dtype.str, hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
