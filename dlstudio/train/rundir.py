"""A run's folder: the reproducibility record, the metric log, checkpoints and final model.

::

    runs/<graph name>-<timestamp>/
        graph.json            graph snapshot, network hash, resolved config, versions, seed
        metrics.jsonl         one JSON object per epoch: epoch, step, train_loss, val_loss, ...
        preprocess.json       how raw input becomes the network's (train.preprocess), for predict and export
        checkpoints/          step-NNNNNNNNN.safetensors + .json (the newest two)
        model.safetensors     final weights (state_dict keys as in model.py)
        model.py              the exported network
        samples/              what a generative task draws after each epoch (epoch-NNN.png)
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

from pydantic import ValidationError

from dlstudio.core.graph import Graph
from dlstudio.core.io import (
    describe_validation_error,
    graph_to_dict,
    special_file_problem,
    write_atomic,
)
from dlstudio.core.training import TrainingConfig
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


def _step_of(record: dict[str, Any]) -> int:
    step = record.get("step", 0)
    return step if isinstance(step, int) else 0


def _file_settings(recorded: TrainingConfig,
                   own: TrainingConfig | None) -> list[tuple[str, object, object]]:
    """(what, recorded value, the graph's value) for each setting that names a file."""
    def path_of(config: TrainingConfig | None) -> object:
        return config.dataset.params.get("path") if config is not None else None

    def weights_of(config: TrainingConfig | None) -> object:
        return config.init_weights if config is not None else None

    return [("the data file", path_of(recorded), path_of(own)),
            ("pretrained weights", weights_of(recorded), weights_of(own))]


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
        problem = special_file_problem(path)
        if problem:
            raise RunDirError(f"{path}: {problem}")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RunDirError(f"{path}: unreadable run record ({error})") from None
        except RecursionError:
            raise RunDirError(f"{path}: unreadable run record (nested too deeply)") from None
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

    def recorded_config(self, graph: Graph) -> TrainingConfig:
        """The run's training configuration, checked as data: it must parse, and every file it
        reads (data, pretrained weights) must be the one ``graph``'s own section names, so an
        edited record cannot point a resumed run at another file."""
        config = self.parse_config(self.check_graph(graph))
        own = graph.training
        for what, recorded, given in _file_settings(config, own):
            if recorded != given:
                raise RunDirError(
                    f"{self.path / RECORD}: the run reads {what} '{recorded}' but the graph's training "
                    f"section names '{given}'", "resume with the graph the run started from, or start a new run")
        return config

    def parse_config(self, record: dict[str, Any]) -> TrainingConfig:
        """The training configuration ``record`` holds; a RunDirError when it is not valid."""
        try:
            return TrainingConfig.model_validate(record.get("config"))
        except ValidationError as error:
            raise RunDirError(f"{self.path / RECORD}: its training configuration is not valid "
                              f"({describe_validation_error(error)})", "start a new run") from None

    def append_metrics(self, record: dict[str, Any]) -> None:
        """One line of strict JSON; a NaN or infinite value (a diverging epoch) becomes null."""
        clean = {k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in record.items()}
        line = json.dumps(clean, allow_nan=False, separators=(",", ":"))
        with (self.path / METRICS).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """The epoch records, up to a partial or corrupt line (what a crash or a full disk leaves)."""
        return self._metric_lines()[0]

    def _metric_lines(self) -> tuple[list[dict[str, Any]], int]:
        """The records before the first line that is not a JSON object, and how many lines follow."""
        path = self.path / METRICS
        problem = special_file_problem(path)
        if problem:
            raise RunDirError(f"{path}: {problem}")
        if not path.exists():
            return [], 0
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        records: list[dict[str, Any]] = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                break
            if not isinstance(record, dict):
                break
            records.append(record)
        return records, len(lines) - len(records)

    def truncate_metrics(self, step: int) -> str | None:
        """Drop records after ``step`` (written after the checkpoint a resume starts from) and a
        partial or corrupt tail; returns a note saying what was dropped for that reason, if any."""
        records, corrupt = self._metric_lines()
        kept = [r for r in records if _step_of(r) <= step]
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept)
        write_atomic(self.path / METRICS, text.encode("utf-8"))
        if not corrupt:
            return None
        return (f"{METRICS}: dropped {corrupt} unreadable line{'s' if corrupt > 1 else ''} at its end "
                f"(a crash or a full disk leaves them); the run resumes from its checkpoint at step {step}")

    def write_file(self, name: str, data: bytes) -> None:
        """Write ``data`` to ``name``, a relative path inside the run folder (atomically)."""
        path = self.path / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise RunDirError(f"{name}: not a path inside the run folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)

    def write_final(self, state_dict: dict[str, Any], source: str) -> None:
        from safetensors.torch import save_file

        tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state_dict.items()}
        tmp = self.path / ".model.safetensors.tmp"
        save_file(tensors, str(tmp))
        tmp.replace(self.weights)
        write_atomic(self.path / "model.py", source.encode("utf-8"))
