"""Errors that are bugs in DL Studio: the user reads one plain line, like every other refusal,
and the traceback goes to a log file for the bug report.

Every expected failure has its own message (a file, a node, what is wrong, the fix); an
exception that reaches a last-resort handler has none, so it is named only as an internal
error, with where its details were written.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

from dlstudio.core.errors import DLStudioError

#: Where the details go: ``$DLSTUDIO_LOG_DIR/dlstudio-errors.log`` (default: the temp folder).
LOG_DIR_ENV = "DLSTUDIO_LOG_DIR"
LOG_NAME = "dlstudio-errors.log"


class InternalError(DLStudioError):
    """An unexpected exception, already logged; its message is the plain line to show."""


def log_path() -> Path:
    return Path(os.environ.get(LOG_DIR_ENV) or tempfile.gettempdir()) / LOG_NAME


def report_bug(error: BaseException, doing: str) -> str:
    """Append ``error``'s traceback to the log and return the line for the user:
    ``<doing>: internal error (a bug in DL Studio; details for a bug report in <log>)``."""
    path = log_path()
    details = "".join(traceback.format_exception(error))
    try:
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {doing}\n{details}\n")
        where = f"details for a bug report in {path}"
    except OSError:
        where = f"its details could not be written to {path}"
    return f"{doing}: internal error ({where}; a bug in DL Studio, please report it)"
