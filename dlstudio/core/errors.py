"""The project's error types: each carries a one-line message meant for a person."""

from __future__ import annotations


class DLStudioError(Exception):
    """Base of every error DL Studio raises on purpose; ``str()`` is a one-line message."""


class GraphFileError(DLStudioError):
    """A graph file cannot be read: missing, not JSON, wrong schema, too large, too new."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class GraphInvalidError(DLStudioError):
    """A graph loaded but has errors, so it cannot be compiled or exported."""

    def __init__(self, name: str, diagnostics: list) -> None:  # list[Diagnostic]
        first = diagnostics[0] if diagnostics else None
        summary = f": {first.one_line()}" if first else ""
        more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        super().__init__(f"graph '{name}' has errors{summary}{more}")
        self.diagnostics = diagnostics
