"""Errors of the training engine: one-line messages, each with the CLI exit code it maps to."""

from __future__ import annotations

from dlstudio.core.errors import DLStudioError
from dlstudio.exits import EXIT_DIVERGED, EXIT_INVALID, EXIT_USAGE


class TrainError(DLStudioError):
    """Base of training errors; ``exit_code`` is what ``dlstudio run`` returns for it."""

    exit_code = EXIT_INVALID
    kind = "error"

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.advice = advice


class ConfigError(TrainError):
    """The training configuration or the graph does not fit together (exit 1)."""

    kind = "config"


class DataError(TrainError):
    """Data cannot be read or does not fit the graph: a missing file or column (exit 2)."""

    exit_code = EXIT_USAGE
    kind = "data"


class RunDirError(TrainError):
    """A run folder cannot be resumed or exported from (exit 2)."""

    exit_code = EXIT_USAGE


class Diverged(TrainError):
    """The loss became NaN or infinite (exit 3)."""

    exit_code = EXIT_DIVERGED
    kind = "diverged"


class OutOfMemory(TrainError):
    """The device ran out of memory (exit 1)."""

    kind = "out_of_memory"
