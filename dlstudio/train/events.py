"""Every message between the trainer, the worker process and the UI, in one place.

* Trainer events (:data:`Event`), in the order a run produces them: each a small frozen
  dataclass of plain values (no tensors), so a Qt bridge can forward it as a signal argument
  and ``--json`` can print it as one line with :func:`event_to_json`.
* Insight reports (:data:`InsightReport`): what a probe saw inside the network while it trains.
* The worker's messages: :class:`Job` and the commands (:data:`Command`) going in, :class:`Ready`
  and :class:`RunEnded` coming out besides the events above.
* How the UI sees a run: :class:`SessionState` and :class:`SessionMode`.

Enums are ``StrEnum``: a member equals, formats and serialises as its string, so JSON lines
stay what they were.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class FinishReason(StrEnum):
    """Why a run ended without error."""

    COMPLETED = "completed"
    EARLY_STOPPING = "early_stopping"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    MAX_STEPS = "max_steps"


class FailureKind(StrEnum):
    """What kind of error stopped a run."""

    DIVERGED = "diverged"
    OUT_OF_MEMORY = "out_of_memory"
    DATA = "data"
    CONFIG = "config"
    ERROR = "error"


# --- trainer events -----------------------------------------------------------------------------

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
    data_workers: int = 0  # processes decoding image files ahead of the step (0: the step decodes)


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
    """An epoch and its validation are done; ``metrics`` holds train_loss, val_loss, val_<metric>,
    and for a task with several losses ``train_loss/<name>`` and ``val_loss/<name>`` too."""

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", FinishReason(self.reason))  # a misspelt reason raises


@dataclass(frozen=True, slots=True)
class Failed:
    """The run stopped on an error; ``message`` is one line, ``advice`` what to try."""

    kind: FailureKind
    message: str
    advice: str = ""
    epoch: int = 0
    step: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FailureKind(self.kind))  # a misspelt kind raises


@dataclass(frozen=True, slots=True)
class EpochSample:
    """What the task drew after an epoch, to watch it learn: a picture (``png``: a fixed-noise grid,
    input/reconstruction pairs) or a ``text``. ``name`` is the file the run folder keeps it as
    (``samples/epoch-003.png``), whether or not the run keeps a folder."""

    epoch: int
    step: int
    name: str
    png: bytes = b""
    text: str = ""

    @property
    def title(self) -> str:
        """What it shows, from its folder (``samples``, ``reconstructions``) or else its name."""
        path = PurePosixPath(self.name)
        return path.parent.name or path.stem


#: Epoch files shown while training, by suffix: PNG pictures and UTF-8 texts.
SAMPLE_SUFFIXES = (".png", ".txt")


def epoch_samples(epoch: int, step: int, files: dict[str, bytes]) -> list[EpochSample]:
    """The pictures and texts among a task's epoch files (:meth:`Task.epoch_files`) as events."""
    found = []
    for name, data in files.items():
        suffix = PurePosixPath(name).suffix.lower()
        if suffix == ".png":
            found.append(EpochSample(epoch, step, name, png=data))
        elif suffix == ".txt":
            found.append(EpochSample(epoch, step, name, text=data.decode("utf-8", errors="replace")))
    return found


Event = (RunStarted | StepEnd | LearningRate | Throughput | EpochEnd | ActivationSample
         | EpochSample | CheckpointSaved | Finished | Failed)


def event_name(event: Event) -> str:
    """``StepEnd`` -> ``step_end``: the event's name in JSON lines."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def event_to_dict(event: Event) -> dict[str, Any]:
    return {"event": event_name(event), **{k: _finite(v) for k, v in asdict(event).items()}}


def event_to_json(event: Event) -> str:
    """One line of strict JSON (NaN and infinities written as null)."""
    return json.dumps(event_to_dict(event), allow_nan=False, separators=(",", ":"))


#: How :attr:`StepEnd.losses` names a task's losses, and the key of the total among them.
LOSS_PREFIX = "loss/"
TOTAL_LOSS = f"{LOSS_PREFIX}total"


def step_losses(losses: dict[str, float]) -> dict[str, float]:
    """A task's named losses (``total``, ``generator``) as :attr:`StepEnd.losses` keys them."""
    return {f"{LOSS_PREFIX}{name}": value for name, value in losses.items()}


def loss_parts(losses: dict[str, float]) -> dict[str, float]:
    """A step's named losses besides the total, by short name (``generator``); none when the
    step has a single loss (the inverse of :func:`step_losses`)."""
    parts = {key.removeprefix(LOSS_PREFIX): value for key, value in losses.items() if key != TOTAL_LOSS}
    return parts if len(losses) > 1 else {}


def is_loss(key: str) -> bool:
    """Whether an epoch metric is a loss: ``train_loss``, ``val_loss`` or one of their named parts."""
    return key in ("train_loss", "val_loss") or key.startswith(("train_loss/", "val_loss/"))


def _finite(value: Any) -> Any:
    """JSON values: non-finite floats as None, bytes (a PNG) as base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --- insight reports: what a probe saw inside the network -----------------------------------------

@dataclass(frozen=True, slots=True)
class NodeStats:
    """Summary of one node's output over the probe batch, and of its gradients."""

    node: str
    shape: tuple[int, ...]
    mean: float
    std: float
    min: float
    max: float
    zero_fraction: float
    dead_fraction: float  # output elements that are 0 for every probe sample
    histogram: tuple[int, ...]
    grad_norm: float | None = None  # |d loss / d output| on the probe batch
    param_grad_norm: float | None = None  # |d loss / d parameters| at the last training step
    param_norm: float | None = None


@dataclass(frozen=True, slots=True)
class NodeDetail:
    """One probe sample's output of a node, shaped for a view: ``maps`` [C, H, W], ``heatmap``
    [rows, cols] (a sequence, or attention weights) or ``vector`` [F]."""

    node: str
    port: str
    kind: str
    values: np.ndarray
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Prediction:
    """An image classifier on one probe sample: the image, class probabilities and saliency."""

    index: int
    image: np.ndarray  # [H, W] or [H, W, 3], scaled to 0..1
    saliency: np.ndarray  # [H, W], |d score / d input| scaled to 0..1
    probabilities: np.ndarray
    predicted: int
    target: int


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """Everything one probe saw; ``seconds`` is what it cost the training thread. ``requested``
    names the nodes whose whole output it was asked for (``details`` holds those with a view)."""

    epoch: int
    step: int
    stats: dict[str, NodeStats]
    details: dict[str, NodeDetail] = field(default_factory=dict)
    predictions: tuple[Prediction, ...] = ()
    warnings: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    requested: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfusionReport:
    """The validation confusion matrix after an epoch (rows: true class, columns: predicted)."""

    epoch: int
    step: int
    matrix: np.ndarray


@dataclass(frozen=True, slots=True)
class ProbeFailed:
    """Probing stopped (training goes on): ``message`` says why."""

    message: str


InsightReport = ProbeReport | ConfusionReport | ProbeFailed


# --- the worker process: a job and commands in, Ready and RunEnded out (besides the events) ---------

@dataclass(frozen=True)
class Job:
    """One run: the graph as JSON text, the configuration as JSON-able data."""

    graph_json: str
    config: dict[str, Any]
    run_dir: str | None = None
    resume: bool = False
    base_dir: str | None = None
    max_steps: int | None = None
    probe_interval: float = 0.5
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StartRun:
    """Train ``job`` (ignored while a run is on)."""

    job: Job


@dataclass(frozen=True, slots=True)
class Pause:
    """Hold the run before its next batch."""


@dataclass(frozen=True, slots=True)
class Resume:
    """Continue a paused run."""


@dataclass(frozen=True, slots=True)
class Stop:
    """End the run before its next batch (a checkpoint is written first)."""


@dataclass(frozen=True, slots=True)
class SetDetails:
    """Probes include these nodes' whole outputs; after a run, the worker probes at once."""

    nodes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Quit:
    """Let the trained network go and end the worker."""


Control = Pause | Resume | Stop
Command = StartRun | Control | SetDetails | Quit


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker has imported the engine and waits for a run."""


@dataclass(frozen=True, slots=True)
class RunEnded:
    """``fit`` returned (``crashed``: it raised; the engine has sent Failed first)."""

    crashed: bool = False


# --- a run as the UI sees it ------------------------------------------------------------------------

class SessionMode(StrEnum):
    """Where a session trains: in a worker process (the app's choice) or on a thread (tests)."""

    PROCESS = "process"
    THREAD = "thread"


class SessionState(StrEnum):
    """``ready`` -> ``running`` <-> ``paused`` -> ``stopping`` -> ``finished``, ``stopped`` or ``failed``."""

    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """A run is on (perhaps paused, or on its way out)."""
        return self in (SessionState.RUNNING, SessionState.PAUSED, SessionState.STOPPING)

    @property
    def controllable(self) -> bool:
        """Pause, resume and stop apply."""
        return self in (SessionState.RUNNING, SessionState.PAUSED)

    @property
    def ended(self) -> bool:
        return self in (SessionState.FINISHED, SessionState.STOPPED, SessionState.FAILED)
