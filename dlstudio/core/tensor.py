"""Tensor types for shape inference: shapes with symbolic dimensions, no torch needed.

A dimension is an ``int`` or a ``str`` naming a symbolic size (``"N"`` for the batch, a name
such as ``"T"`` declared by an Input node for a sequence length, or an expression built from
those). Rules combine dimensions with :func:`dim_expr`, which evaluates when every operand is
concrete and otherwise writes a readable expression.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

Dim = int | str

BATCH = "N"

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INT_DTYPES = ("int64", "int32")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)

#: Largest element count of one sample that shape inference accepts (refused before allocating).
MAX_ELEMENTS = 2**31
#: Longest symbolic size expression shape inference writes (``"(T + 2)//2"``); a longer one
#: would grow with every node (padding and joining double it), so the node is refused instead.
MAX_DIM_CHARS = 200


@dataclass(frozen=True, slots=True)
class TensorType:
    """The type of one tensor flowing on an edge: its shape (batch first) and dtype."""

    shape: tuple[Dim, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def with_shape(self, shape: Sequence[Dim]) -> TensorType:
        return TensorType(tuple(shape), self.dtype)

    def concrete(self, sizes: dict[str, int]) -> tuple[int, ...]:
        """The shape with symbolic dimensions replaced by ``sizes`` (expressions evaluated)."""
        return tuple(resolve_dim(d, sizes) for d in self.shape)

    def __str__(self) -> str:
        shape = self.shape
        return _shape_text(shape) if type(shape) is tuple else format_shape(shape)


@lru_cache(maxsize=1024)
def _shape_text(shape: tuple[Dim, ...]) -> str:
    """:func:`format_shape`, once per shape (a big graph shows a few shapes thousands of times)."""
    return format_shape(shape)


def format_shape(shape: Sequence[Dim]) -> str:
    """Render a shape the way the UI shows it: ``[N, 3, 224, 224]``."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def is_known(*dims: Dim) -> bool:
    return all(isinstance(d, int) for d in dims)


def dim_expr(fn: Callable[..., int], template: str, *dims: Dim) -> Dim:
    """``fn(*dims)`` when every dim is an int, else ``template`` filled with the dims."""
    if is_known(*dims):
        return fn(*dims)
    return template.format(*(_wrap(d) for d in dims))


def _wrap(dim: Dim) -> str:
    text = str(dim)
    return text if text.isidentifier() or text.isdigit() else f"({text})"


def dim_product(dims: Sequence[Dim]) -> Dim:
    """Product of dims; symbolic factors are kept as ``a*b`` after the concrete part."""
    known = math.prod(d for d in dims if isinstance(d, int))
    symbols = [_wrap(d) for d in dims if not isinstance(d, int)]
    if not symbols:
        return known
    parts = ([str(known)] if known != 1 else []) + symbols
    return "*".join(parts)


def resolve_dim(dim: Dim, sizes: dict[str, int]) -> int:
    """Evaluate a symbolic dim with the given sizes (a tiny arithmetic evaluator, no eval())."""
    if isinstance(dim, int):
        return dim
    return _Evaluator(dim, sizes).parse()


class _Evaluator:
    """Recursive-descent evaluator for the expressions that :func:`dim_expr` writes."""

    def __init__(self, text: str, sizes: dict[str, int]) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.sizes = sizes

    def parse(self) -> int:
        value = self._sum()
        if self.pos != len(self.tokens):
            raise ValueError(f"bad dimension expression {''.join(self.tokens)!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _sum(self) -> int:
        value = self._term()
        while self._peek() in ("+", "-"):
            value = value + self._term() if self._take() == "+" else value - self._term()
        return value

    def _term(self) -> int:
        value = self._atom()
        while self._peek() in ("*", "//"):
            value = value * self._atom() if self._take() == "*" else value // self._atom()
        return value

    def _atom(self) -> int:
        token = self._take()
        if token == "(":
            value = self._sum()
            self._take()
            return value
        if token.isdigit():
            return int(token)
        if token in self.sizes:
            return self.sizes[token]
        raise ValueError(f"no size given for dimension {token!r}")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("//", i):
            tokens.append("//")
            i += 2
        elif ch in "+-*()":
            tokens.append(ch)
            i += 1
        else:
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            if j == i:
                raise ValueError(f"bad character {ch!r} in dimension expression")
            tokens.append(text[i:j])
            i = j
    return tokens
