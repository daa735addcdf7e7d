"""The built pieces of a run, shared by the trainer's loop and the task it runs, and the check
of a graph with its training section that comes before building them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.codegen import ModulePlan
from dlstudio.core.graph import Graph
from dlstudio.core.training import TrainingConfig, resolve_training
from dlstudio.core.training_checks import fed_inputs
from dlstudio.train.batches import Batches
from dlstudio.train.components import Objective, Schedule
from dlstudio.train.data import DataSplit
from dlstudio.train.distributed import World
from dlstudio.train.errors import ConfigError
from dlstudio.train.magnitude import GradualPruning
from dlstudio.train.metrics import Metrics

if TYPE_CHECKING:
    from dlstudio.train.qat import QuantizationAware


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
    batches: Batches
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
    #: where the files the training section names start (the graph file's folder)
    base_dir: Path | None = None
    #: the network with fake quantization that training steps run (training.quantization_aware)
    quantization: QuantizationAware | None = None
    #: gradual magnitude pruning, when the training section asks for it
    pruning: GradualPruning | None = None

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The first optimizer (the only one of most tasks): its LR is the one reported."""
        return next(iter(self.optimizers.values()))

    @property
    def collective_device(self) -> torch.device:
        """Where tensors go for a collective: the GPU with NCCL, else the CPU (gloo)."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def check_graph(graph: Graph, config: TrainingConfig) -> tuple[Analysis, TrainingConfig]:
    """Analyse ``graph`` with ``config`` as its training section; errors become a ConfigError."""
    graph = graph.model_copy(update={"training": config})
    analysis = analyze(graph)
    if not analysis.ok:
        errors = analysis.errors
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"graph '{graph.name}': {errors[0].one_line()}{more}")
    nodes, fed = graph.nodes, fed_inputs(config, analysis)
    resolved = resolve_training(config, [n.id for n in nodes if n.type == "Input" and n.id not in fed],
                                [n.id for n in nodes if n.type == "Output"])
    return analysis, resolved
