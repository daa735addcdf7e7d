"""Typed events the trainer emits, in the order a run produces them.

Each is a small frozen dataclass of plain values (no tensors), so a Qt bridge can forward it
as a signal argument and ``--json`` can print it as one line with :func:`event_to_json`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FinishReason = Literal["completed", "early_stopping", "stopped", "interrupted", "max_steps"]
FailureKind = Literal["diverged", "out_of_memory", "data", "config", "error"]


@dataclass(frozen=True, slots=True)
class RunStarted:
    """Set-up is done; training starts at ``start_epoch`` (0 unless resumed)."""

    run_dir: str | None
    device: str
    epochs: int
    start_epoch: int
    steps_per_epoch: int
    train_samples: int
    val_samples: int
    parameters: int
    world_size: int = 1
    trainable: int | None = None  # parameters that train (frozen nodes left out); None: all
    init_weights: str | None = None  # what the pretrained weights gave, in one line
    notes: tuple[str, ...] = ()  # what the user should know before the run goes on, one line each


@dataclass(frozen=True, slots=True)
class StepEnd:
    """One optimizer step is done; ``batch`` counts from 1 within ``epoch`` (from 1)."""

    epoch: int
    step: int
    batch: int
    batches: int
    loss: float
    lr: float
    #: the step's named losses (``loss/total``, ``loss/generator``, ...); ``loss`` is the total
    losses: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LearningRate:
    """The learning rate of each parameter group as an epoch starts."""

    epoch: int
    step: int
    lrs: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Throughput:
    """Training speed over the epoch that just ended (validation excluded)."""

    epoch: int
    step: int
    samples_per_s: float
    steps_per_s: float


@dataclass(frozen=True, slots=True)
class EpochEnd:
    """An epoch and its validation are done; ``metrics`` holds train_loss, val_loss, val_<metric>."""

    epoch: int
    step: int
    metrics: dict[str, float]
    seconds: float


@dataclass(frozen=True, slots=True)
class ActivationSample:
    """What a node produced for a probe batch: summary statistics, a histogram and a sample."""

    step: int
    node: str
    shape: tuple[int, ...]
    mean: float
    std: float
    min: float
    max: float
    zero_fraction: float
    histogram: tuple[int, ...]
    values: tuple[float, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class CheckpointSaved:
    epoch: int
    step: int
    path: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The run ended without error; ``reason`` says why it ended."""

    reason: FinishReason
    epoch: int
    step: int
    metrics: dict[str, float]
    seconds: float
    run_dir: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The run stopped on an error; ``message`` is one line, ``advice`` what to try."""

    kind: FailureKind
    message: str
    advice: str = ""
    epoch: int = 0
    step: int = 0


Event = (RunStarted | StepEnd | LearningRate | Throughput | EpochEnd | ActivationSample
         | CheckpointSaved | Finished | Failed)


def event_name(event: Event) -> str:
    """``StepEnd`` -> ``step_end``: the name in JSON lines and in ``Callback.on_<name>``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def event_to_dict(event: Event) -> dict[str, Any]:
    return {"event": event_name(event), **{k: _finite(v) for k, v in asdict(event).items()}}


def event_to_json(event: Event) -> str:
    """One line of strict JSON (NaN and infinities written as null)."""
    return json.dumps(event_to_dict(event), allow_nan=False, separators=(",", ":"))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
