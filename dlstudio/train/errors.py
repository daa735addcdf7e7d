"""Errors of the training engine: one-line messages, each with the CLI exit code it maps to."""

from __future__ import annotations

from dlstudio.core.errors import DLStudioError
from dlstudio.exits import EXIT_DIVERGED, EXIT_INVALID, EXIT_USAGE
from dlstudio.train.events import FailureKind


class TrainError(DLStudioError):
    """Base of training errors; ``exit_code`` is what ``dlstudio run`` returns for it."""

    exit_code = EXIT_INVALID
    kind: FailureKind = FailureKind.ERROR

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.advice = advice


class ConfigError(TrainError):
    """The training configuration or the graph does not fit together (exit 1)."""

    kind = FailureKind.CONFIG


class DataError(TrainError):
    """Data cannot be read or does not fit the graph: a missing file or column (exit 2)."""

    exit_code = EXIT_USAGE
    kind = FailureKind.DATA


class RunDirError(TrainError):
    """A run folder cannot be resumed or exported from (exit 2)."""

    exit_code = EXIT_USAGE


class Diverged(TrainError):
    """The loss became NaN or infinite (exit 3)."""

    exit_code = EXIT_DIVERGED
    kind = FailureKind.DIVERGED


class RankLost(TrainError):
    """Another process of a distributed run died, so this one stopped too (exit 1)."""


class OutOfMemory(TrainError):
    """The device ran out of memory (exit 1)."""

    kind = FailureKind.OUT_OF_MEMORY
