"""The project's error types: each carries a one-line message meant for a person."""

from __future__ import annotations


def printable(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, with control and invisible characters escaped.

    Used wherever text from a file (an id, a type, a path) goes into a message, so a message
    is always one visible line.
    """
    cut = text[:limit]
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in cut)
    return shown + ("..." if len(text) > limit else "")


def os_error_line(error: OSError) -> str:
    """A file problem as ``<file>: <reason>`` (``reason`` alone without a file name)."""
    where = error.filename2 if error.filename2 is not None else error.filename
    reason = (error.strerror or str(error) or "cannot be used")
    reason = reason[:1].lower() + reason[1:]
    return f"{printable(str(where), 300)}: {reason}" if where is not None else reason


class DLStudioError(Exception):
    """Base of every error DL Studio raises on purpose; ``str()`` is a one-line message."""


class GraphFileError(DLStudioError):
    """A graph file cannot be read: missing, not JSON, wrong schema, too large, too new."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{printable(source, 200)}: {printable(reason, 300)}")
        self.source = source
        self.reason = reason


class GraphInvalidError(DLStudioError):
    """A graph loaded but has errors, so it cannot be compiled or exported."""

    def __init__(self, name: str, diagnostics: list) -> None:  # list[Diagnostic]
        first = diagnostics[0] if diagnostics else None
        summary = f": {first.one_line()}" if first else ""
        more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        super().__init__(f"graph '{printable(name)}' has errors{summary}{more}")
        self.diagnostics = diagnostics


class NodeRuntimeError(DLStudioError, RuntimeError):
    """A compiled graph's forward failed in one node; ``__cause__`` is what was raised there.

    The message reads ``node 'fc2' (Linear): mat1 and mat2 shapes cannot be multiplied ...``.
    """

    def __init__(self, node_id: str, node_type: str, cause: BaseException) -> None:
        reason = " ".join(str(cause).split()) or type(cause).__name__
        super().__init__(f"node '{printable(node_id)}' ({printable(node_type)}): {reason}")
        self.node_id = node_id
        self.node_type = node_type
