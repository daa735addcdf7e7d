"""Tokenizers of the language_model task: one token per character of a text, or per UTF-8 byte.

A character vocabulary is the sorted set of the text's characters; it is saved with the run
(``data.vocabulary`` in the run record), so that sampling later decodes the same way.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dlstudio.train.errors import DataError, RunDirError


class Tokenizer(Protocol):
    """Text to token ids and back."""

    @property
    def size(self) -> int: ...

    def encode(self, text: str) -> np.ndarray: ...

    def decode(self, ids: list[int]) -> str: ...

    def record(self) -> dict[str, Any]: ...


class CharTokenizer:
    """One token per distinct character, numbered in code-point order."""

    def __init__(self, symbols: str) -> None:
        self.symbols = symbols
        self._points = _code_points(symbols)

    @classmethod
    def of_text(cls, text: str) -> CharTokenizer:
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> np.ndarray:
        points = _code_points(text)
        ids = np.searchsorted(self._points, points)
        known = ids < len(self._points)
        known[known] = self._points[ids[known]] == points[known]
        if not known.all():
            unknown = "".join(sorted({text[i] for i in np.flatnonzero(~known)[:1000]}))
            raise DataError(f"the text has characters outside the vocabulary: {unknown[:20]!r}",
                            "use only characters of the training text, or the byte tokenizer")
        return ids.astype(np.int64)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.symbols[i] for i in ids)

    def record(self) -> dict[str, Any]:
        return {"tokenizer": "char", "vocabulary": self.symbols}


class ByteTokenizer:
    """One token per UTF-8 byte: any text, 256 tokens."""

    size = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def record(self) -> dict[str, Any]:
        return {"tokenizer": "byte"}


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def tokenizer_for(kind: str, text: str) -> Tokenizer:
    """The tokenizer ``kind`` (char or byte) fitted to ``text``."""
    return ByteTokenizer() if kind == "byte" else CharTokenizer.of_text(text)


def tokenizer_from_record(data: dict[str, Any]) -> Tokenizer:
    """The tokenizer a run saved (the ``data`` section of its record)."""
    kind = data.get("tokenizer")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char" and isinstance(data.get("vocabulary"), str) and data["vocabulary"]:
        return CharTokenizer(data["vocabulary"])
    raise RunDirError("the run record holds no tokenizer (data.tokenizer and data.vocabulary)")
