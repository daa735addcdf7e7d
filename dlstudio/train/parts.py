"""The built pieces of a run, shared by the trainer's loop and the task it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from dlstudio.core.analysis import Analysis
from dlstudio.core.codegen import ModulePlan
from dlstudio.core.training import TrainingConfig
from dlstudio.train.batches import TrainBatches
from dlstudio.train.components import Objective, Schedule
from dlstudio.train.data import DataSplit
from dlstudio.train.distributed import World
from dlstudio.train.metrics import Metrics


@dataclass
class Parts:
    """The built pieces of a run; its task (:mod:`dlstudio.train.tasks`) decides what a step
    and a validation pass do with them."""

    config: TrainingConfig
    analysis: Analysis
    plan: ModulePlan
    device: torch.device
    world: World
    data: DataSplit
    module: torch.nn.Module
    model: torch.nn.Module  # the module, or its DistributedDataParallel wrapper
    train_inputs: list[torch.Tensor]
    train_target: torch.Tensor
    val_inputs: list[torch.Tensor]
    val_target: torch.Tensor
    output_index: int | None
    batches: TrainBatches
    val_batches: list[torch.Tensor]
    scaler: Any
    objective: Objective
    metrics: Metrics
    autocast: Any
    #: (index in the outputs, weight) of each auxiliary loss added to the objective
    auxiliary: tuple[tuple[int, float], ...] = ()
    #: the task's optimizers by name, in the order it declared them, and their LR schedules
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The first optimizer (the only one of most tasks): its LR is the one reported."""
        return next(iter(self.optimizers.values()))

    @property
    def collective_device(self) -> torch.device:
        """Where tensors go for a collective: the GPU with NCCL, else the CPU (gloo)."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")
