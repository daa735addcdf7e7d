"""The training engine: datasets, the fit loop with typed events, run folders, distributed runs.

Imports no Qt. ``Trainer(graph, config, callbacks=[...]).fit()`` is the whole API a caller
needs; the command line (``dlstudio run``) and the GUI both use it.
"""

from typing import Any

from dlstudio.train.callbacks import Callback, Recorder
from dlstudio.train.events import (
    ActivationSample,
    CheckpointSaved,
    EpochEnd,
    EpochSample,
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

#: Names whose modules import torch: loaded on first use, so that the editor can read run
#: folders (and paint its window) before torch is imported.
_LAZY = {"ActivationRequest": "dlstudio.train.activations", "Trainer": "dlstudio.train.trainer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dlstudio.train' has no attribute {name!r}")


__all__ = [
    "ActivationRequest", "ActivationSample", "Callback", "CheckpointSaved", "EpochEnd", "EpochSample", "Event",
    "Failed", "Finished", "LearningRate", "Recorder", "RunDir", "RunStarted", "StepEnd",
    "Throughput", "Trainer", "event_to_json",
]
