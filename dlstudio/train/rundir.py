"""A run's folder: the reproducibility record, the metric log, checkpoints and final model.

::

    runs/<graph name>-<timestamp>/
        graph.json            graph snapshot, network hash, resolved config, versions, seed
        metrics.jsonl         one JSON object per epoch: epoch, step, train_loss, val_loss, ...
        checkpoints/          step-NNNNNNNNN.safetensors + .json (the newest two)
        model.safetensors     final weights (state_dict keys as in model.py)
        model.py              the exported network
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from dlstudio.core.graph import Graph
from dlstudio.core.io import graph_to_dict, write_atomic
from dlstudio.train.errors import RunDirError

RUN_FORMAT = "dlstudio.run"
RECORD = "graph.json"
METRICS = "metrics.jsonl"
LIBRARIES = ("torch", "numpy", "safetensors", "scikit-learn", "pydantic")
#: Environment variable naming the folder runs go to (default: ``runs`` in the working directory).
RUNS_ENV = "DLSTUDIO_RUNS"


def network_hash(graph: Graph) -> str:
    """SHA-256 of what defines the network: node ids, types, params and edges, in file order.

    Names, labels, positions and the training section do not count, so moving a node or
    changing the epochs does not block a resume.
    """
    doc = graph_to_dict(graph)
    network = {
        "nodes": [{k: n.get(k) for k in ("id", "type", "params")} for n in doc["nodes"]],
        "edges": [[e["source"], e["target"]] for e in doc["edges"]],
    }
    text = json.dumps(network, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def library_versions() -> dict[str, str]:
    from dlstudio import __version__

    found = {"python": platform.python_version(), "dlstudio": __version__}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def runs_folder() -> Path:
    """Where runs go: ``$DLSTUDIO_RUNS``, else ``runs/`` in the working directory; never beside
    the graph, so running an installed example writes nothing into the examples' folder."""
    return Path(os.environ.get(RUNS_ENV) or "runs").absolute()


def default_run_path(graph_name: str, root: Path | None = None) -> Path:
    """``<runs folder>/<slug>-<YYYYmmdd-HHMMSS>``, with a suffix if that folder exists already."""
    root = runs_folder() if root is None else root
    slug = re.sub(r"[^a-z0-9]+", "-", graph_name.lower()).strip("-")[:60] or "run"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{slug}-{stamp}"
    counter = 2
    while path.exists():
        path = root / f"{slug}-{stamp}-{counter}"
        counter += 1
    return path


class RunDir:
    """One run's folder; only the writing process (rank 0) calls the write methods."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    def write_record(self, graph: Graph, config: dict[str, Any], extra: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        record = {
            "format": RUN_FORMAT, "version": 1,
            "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "network_sha256": network_hash(graph), "seed": config["seed"],
            "config": config, "versions": library_versions(), **extra,
            "graph": graph_to_dict(graph),
        }
        write_atomic(self.path / RECORD, (json.dumps(record, indent=2, allow_nan=False) + "\n").encode("utf-8"))

    def read_record(self) -> dict[str, Any]:
        path = self.path / RECORD
        if not path.exists():
            raise RunDirError(f"{self.path}: not a run folder (no {RECORD})")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RunDirError(f"{path}: unreadable run record ({error})") from None
        if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
            raise RunDirError(f"{path}: not a DL Studio run record")
        return record

    def check_graph(self, graph: Graph) -> dict[str, Any]:
        """The record, after checking that ``graph`` defines the same network as the run."""
        record = self.read_record()
        if record.get("network_sha256") != network_hash(graph):
            raise RunDirError(
                f"the graph '{graph.name}' has changed since run {self.path.name} started "
                "(its layers, parameters or edges differ)",
                "start a new run, or use the graph snapshot kept in the run folder's graph.json")
        return record

    def append_metrics(self, record: dict[str, Any]) -> None:
        """One line of strict JSON; a NaN or infinite value (a diverging epoch) becomes null."""
        clean = {k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in record.items()}
        line = json.dumps(clean, allow_nan=False, separators=(",", ":"))
        with (self.path / METRICS).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / METRICS
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def truncate_metrics(self, step: int) -> None:
        """Drop records after ``step`` (written after the checkpoint a resume starts from)."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept)
        write_atomic(self.path / METRICS, text.encode("utf-8"))

    def write_final(self, state_dict: dict[str, Any], source: str) -> None:
        from safetensors.torch import save_file

        tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state_dict.items()}
        tmp = self.path / ".model.safetensors.tmp"
        save_file(tensors, str(tmp))
        tmp.replace(self.weights)
        write_atomic(self.path / "model.py", source.encode("utf-8"))
