"""How a ``dlstudio`` command ends: its exit codes, and the error that means wrong usage.

The command line (:mod:`dlstudio.cli`), the ``run`` command it loads (:mod:`dlstudio.train.command`)
and the training errors (:mod:`dlstudio.train.errors`) import these from here, so each code is
declared once and the command modules do not import one another.
"""

from __future__ import annotations

from dlstudio.core.errors import DLStudioError

EXIT_OK = 0
EXIT_INVALID = 1  # invalid graph or configuration
EXIT_USAGE = 2  # usage or file error
EXIT_DIVERGED = 3  # the loss became NaN or infinite
EXIT_INTERRUPTED = 130  # Ctrl-C


class UsageError(DLStudioError):
    """Wrong arguments or a file problem: exit code 2."""
