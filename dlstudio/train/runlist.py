"""The runs of a graph: every run folder under a runs root whose record names the graph.

Runs started from the app and from ``dlstudio run`` have the same folder format
(:mod:`dlstudio.train.rundir`), so both are listed. A folder that cannot be read is skipped,
never fatal: a runs folder is shared with whatever else the user keeps there. No torch here:
the editor lists runs before it has loaded torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dlstudio.core.graph import Graph
from dlstudio.core.training import DEFAULT_TASK
from dlstudio.train.errors import RunDirError
from dlstudio.train.rundir import RECORD, RunDir, network_hash

MAX_RUNS = 500


@dataclass(frozen=True)
class RunInfo:
    """What the runs panel shows about one run folder."""

    path: Path
    graph_name: str
    created: str
    epochs_done: int
    epochs_total: int
    metrics: dict[str, float] = field(default_factory=dict)
    complete: bool = False  # model.safetensors was written
    resumable: bool = False  # has a checkpoint
    network_sha256: str = ""  # the recorded hash of the network it trained
    same_network: bool = True  # the graph still defines that network
    task: str = DEFAULT_TASK  # the training task (training.task)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        if self.complete and self.epochs_done >= self.epochs_total:
            return "finished"
        if self.resumable:
            return f"stopped at epoch {self.epochs_done}, resumable"
        return "stopped" if self.complete else "no checkpoint"


def list_runs(root: Path, graph: Graph | None = None) -> list[RunInfo]:
    """Runs under ``root`` (newest first); with ``graph``, only those of a graph of that name.

    The graph's network hash is computed once, and only when a run of its name is there (it
    serialises the whole graph: a tenth of a second at 16k nodes, on every open)."""
    if not root.is_dir():
        return []
    folders = sorted((p for p in root.iterdir() if (p / RECORD).is_file()), reverse=True)[:MAX_RUNS]
    digest: str | None = None
    found = []
    for folder in folders:
        info = read_run(folder)
        if info is None or (graph is not None and info.graph_name != graph.name):
            continue
        if graph is not None:
            digest = digest or network_hash(graph)
            info = replace(info, same_network=info.network_sha256 == digest)
        found.append(info)
    return sorted(found, key=lambda r: r.created, reverse=True)


def read_run(folder: Path) -> RunInfo | None:
    """A run's summary, or None when the folder is not a readable run."""
    run = RunDir(folder)
    try:
        record = run.read_record()
        metrics = run.read_metrics()
    except (RunDirError, ValueError, OSError):
        return None
    config: dict[str, Any] = record.get("config") if isinstance(record.get("config"), dict) else {}
    graph = record.get("graph") if isinstance(record.get("graph"), dict) else {}
    last = metrics[-1] if metrics else {}
    return RunInfo(
        path=folder, graph_name=str(graph.get("name", "")), created=str(record.get("created", "")),
        epochs_done=int(last.get("epoch", 0)), epochs_total=int(config.get("epochs", 0) or 0),
        metrics={k: float(v) for k, v in last.items() if _number(v) and k not in ("epoch", "step")},
        complete=run.weights.is_file(), resumable=_has_checkpoint(run.checkpoints),
        network_sha256=str(record.get("network_sha256", "")),
        task=str(config.get("task") or DEFAULT_TASK),
    )


def _has_checkpoint(folder: Path) -> bool:
    """A checkpoint pair is there (its hash is checked when a resume reads it)."""
    return folder.is_dir() and any(p.with_suffix(".safetensors").is_file() for p in folder.glob("*.json"))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
