"""Helpers of the hostile-input tests: a command in a subprocess under a memory limit, the check
that what a refusal prints is plain (no traceback, no exception class name), and a mutator of
graph documents for fuzzing."""

from __future__ import annotations

import copy
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def assert_plain(stderr: str) -> None:
    """A refusal is plain lines: no traceback and no raw exception class name."""
    found = RAW_ERROR.search(stderr)
    assert found is None, f"raw error {found.group(0)!r} in: {stderr[-800:]}"


#: Values a mutation puts in place of another: wrong types, edge numbers, names of other things.
JUNK: tuple = (-1, 0, 1, 2, 10**9, -(10**9), 0.5, 1e300, "x", "", "in99", "in99999999", "T", "N", None, True,
               [], {}, [1], [0, 0], [-1], {"a": 1}, ["x", "y"], [[1]], "Linear", "Add", "CrossEntropyLoss",
               "MSELoss", "SGD", "npz", "csv", "cuda", "../x", "/dev/null", 3.0, [2, 2, 2, 2, 2], [10**6] * 3)


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*path, key))


def _similar(value: Any, rng: random.Random) -> Any:
    """A value of the same kind that may be out of range: what a slip or an attacker writes."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([-1, 0, 1, 3, value * 2, -value, 10**6, 2**31, 10**12])
    if isinstance(value, float):
        return rng.choice([0.0, -1.0, 1e-9, 1e9, value * 10])
    if isinstance(value, str):
        return rng.choice([*(j for j in JUNK if isinstance(j, str)), value + ".in5", value + "_"])
    if isinstance(value, list):
        return rng.choice([[], value[:1], value + value[-1:], value[::-1], [-1] * len(value)])
    if isinstance(value, dict):
        return rng.choice([{}, dict(list(value.items())[:1])])
    return rng.choice(JUNK)


def mutate(doc: dict, rng: random.Random) -> dict:
    """``doc`` with one to three values replaced, removed or added, mostly inside parameters,
    the training section and the edges."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.choice([1, 1, 2, 3])):
        paths = [p for p in _paths(doc) if p]
        inner = [p for p in paths if len(p) > 1 and {"params", "training", "edges"} & set(p)]
        path = rng.choice(inner if inner and rng.random() < 0.8 else paths)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        roll = rng.random()
        if roll < 0.15:
            del parent[path[-1]]
        elif roll < 0.25 and isinstance(parent, dict):
            parent[rng.choice(["extra", "params", "type", "k"])] = copy.deepcopy(rng.choice(JUNK))
        elif roll < 0.5:
            parent[path[-1]] = copy.deepcopy(rng.choice(JUNK))
        else:
            parent[path[-1]] = _similar(parent[path[-1]], rng)
    return doc
