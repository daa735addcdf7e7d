"""Helpers of the hostile-input tests: a command in a subprocess under a memory limit, and the
check that what a refusal prints is one plain line (no traceback, no exception class name)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: A traceback, or a Python exception class name (``KeyError``, ``BadZipFile`` ...).
RAW_ERROR = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception)\b|BadZipFile|StopIteration")

_LIMITED = """
import resource, runpy, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.argv = ["dlstudio", *sys.argv[2:]]
sys.exit(runpy.run_module("dlstudio", run_name="__main__"))
"""


def run_limited(args: list[str], memory_gib: float = 1.5, timeout: float = 60,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m dlstudio *args`` with its address space capped at ``memory_gib``, so a
    regression that allocates without bound fails (MemoryError) instead of swapping."""
    limit = str(int(memory_gib * 2**30))
    return subprocess.run([sys.executable, "-c", _LIMITED, limit, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env=_env())


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def assert_plain(stderr: str) -> None:
    """A refusal is plain lines: no traceback and no raw exception class name."""
    found = RAW_ERROR.search(stderr)
    assert found is None, f"raw error {found.group(0)!r} in: {stderr[-800:]}"
