"""The training engine: datasets, the fit loop with typed events, run folders, distributed runs.

Imports no Qt. ``Trainer(graph, config, callbacks=[...]).fit()`` is the whole API a caller
needs; the command line (``dlstudio run``) and the GUI both use it.
"""

from dlstudio.train.activations import ActivationRequest
from dlstudio.train.callbacks import Callback, Recorder
from dlstudio.train.events import (
    ActivationSample,
    CheckpointSaved,
    EpochEnd,
    Event,
    Failed,
    Finished,
    LearningRate,
    RunStarted,
    StepEnd,
    Throughput,
    event_to_json,
)
from dlstudio.train.rundir import RunDir
from dlstudio.train.trainer import Trainer

__all__ = [
    "ActivationRequest", "ActivationSample", "Callback", "CheckpointSaved", "EpochEnd", "Event",
    "Failed", "Finished", "LearningRate", "Recorder", "RunDir", "RunStarted", "StepEnd",
    "Throughput", "Trainer", "event_to_json",
]
