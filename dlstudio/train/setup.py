"""Everything a run needs before its first step, built from a graph and its training section.

:func:`prepare` analyses the graph, resolves the configuration, loads and checks the data,
compiles the network and builds optimizer, schedule, loss and metrics. The trainer only
runs the loop over what this returns.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from dlstudio.core.analysis import Analysis
from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.graph import Graph
from dlstudio.core.training import CLASS_LOSSES, DEFAULT_TASK, TrainingConfig
from dlstudio.core.training_checks import TrainingChecker
from dlstudio.train import distributed
from dlstudio.train.batches import Batches, eval_batches
from dlstudio.train.components import (
    Objective,
    autocast,
    grad_scaler,
    make_optimizer,
    make_schedule,
    resolve_device,
)
from dlstudio.train.data import DataSplit, field_infos
from dlstudio.train.data.lazy import announce, resident_bytes
from dlstudio.train.distributed import World
from dlstudio.train.errors import ConfigError
from dlstudio.train.magnitude import GradualPruning
from dlstudio.train.memory import check_memory
from dlstudio.train.metrics import Metrics
from dlstudio.train.parts import Parts, check_graph
from dlstudio.train.qat import quantization_aware
from dlstudio.train.tasks import Task, task_class

#: Data up to this size moves to the GPU once, so batches are gathered on the device.
MAX_DEVICE_DATA_BYTES = 2 * 2**30


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if deterministic != torch.are_deterministic_algorithms_enabled():
        # Setting it at all imports torch's compiler stack (1.4 s of start-up): only on change.
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def prepare(graph: Graph, config: TrainingConfig, world: World, base_dir: Path | None) -> Parts:
    analysis, config = check_graph(graph, config)
    seed_everything(config.seed, config.deterministic)
    device = resolve_device(config.device, world.local_rank)
    distributed.init(world, device)
    check_memory(analysis, config, device)
    task = task_class(config.task or DEFAULT_TASK)
    data = task.load_data(config, base_dir)
    _check_loaded(config, analysis, data)
    plan = plan_module(analysis)
    torch.manual_seed(config.seed)
    module = build_module(plan).to(device)
    fields = [config.dataset.inputs[node_id] for _, node_id in plan.arguments
              if node_id in config.dataset.inputs]  # a task feeds the others (a GAN's noise)
    quantization = quantization_aware(config, module, [data.train[f][:2].to(device) for f in fields])
    model = _wrap(module if quantization is None else quantization.graph, world, device, task)
    data_device = device if _fits_on_device(data, device) else torch.device("cpu")
    target = config.loss.target
    train = {k: v.to(data_device) for k, v in data.train.items() if k in (*fields, target)}
    val = {k: v.to(data_device) for k, v in data.val.items() if k in (*fields, target)}
    batches, val_batches = _batching(config, world, data, data_device, task)
    batches = announce(train, val, batches, val_batches)
    outputs = [n.id for n in analysis.graph.nodes if n.type == "Output"]
    parts = Parts(
        config=config, analysis=analysis, plan=plan, device=device, world=world, data=data, module=module,
        model=model, train_inputs=[train[f] for f in fields], train_target=train[target],
        val_inputs=[val[f] for f in fields], val_target=val[target],
        output_index=outputs.index(config.loss.output) if len(outputs) > 1 else None,
        batches=batches, val_batches=val_batches,
        scaler=grad_scaler(device, config.precision), objective=Objective(config.loss, device),
        metrics=Metrics(config.metrics, config.loss.type, config.loss.params.get("ignore_index", -100)),
        autocast=autocast(device, config.precision), auxiliary=_auxiliary(config, outputs), base_dir=base_dir,
        quantization=quantization,
    )
    return parts


def start_task(parts: Parts) -> Task:
    """The task the configuration names, with the optimizers it declares (each with its own
    LR schedule) built into ``parts``."""
    config = parts.config
    task = task_class(config.task or DEFAULT_TASK)(parts)
    for name, plan in task.optimizers().items():
        optimizer = make_optimizer(plan.config, plan.parameters)
        parts.optimizers[name] = optimizer
        schedule = make_schedule(config.scheduler, optimizer, config.epochs, len(parts.batches))
        if schedule is not None:
            parts.schedules[name] = schedule
    if config.pruning is not None:
        parts.pruning = GradualPruning(config.pruning, parts.analysis, parts.module, parts.optimizers.values(),
                                       len(parts.batches), config.epochs)
    return task


def _auxiliary(config: TrainingConfig, outputs: list[str]) -> tuple[tuple[int, float], ...]:
    """Where each auxiliary loss is in the module's outputs, and its weight (0 leaves it out)."""
    weights = config.loss.auxiliary or {}
    return tuple((outputs.index(node_id), weight) for node_id, weight in weights.items() if weight)


def _check_loaded(config: TrainingConfig, analysis: Analysis, data: DataSplit) -> None:
    """The loaded data against the graph, with the same checks as the declared fields."""
    problems = TrainingChecker(config, analysis, fields=field_infos(data.arrays)).run()
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError(f"dataset '{config.dataset.name}' does not fit the graph: {errors[0].one_line()}")
    if data.train_size < 1:
        raise ConfigError("no training samples left after the validation split")
    _check_labels(config, data)


def _check_labels(config: TrainingConfig, data: DataSplit) -> None:
    """Class labels start at 0: a negative one (other than ``ignore_index``) is refused here,
    not by the loss in the middle of a step."""
    labels = data.arrays.fields.get(config.loss.target)
    if config.loss.type not in CLASS_LOSSES or labels is None or labels.dtype.kind not in "iu":
        return
    ignored = config.loss.params.get("ignore_index", -100)
    negative = labels[(labels < 0) & (labels != ignored)]
    if negative.size:
        raise ConfigError(f"dataset '{config.dataset.name}': target '{config.loss.target}' holds the class "
                          f"label {int(negative[0])}, but class labels count from 0",
                          f"number the classes 0, 1, 2, ...; mark samples to skip with ignore_index={ignored}")


def _wrap(module: torch.nn.Module, world: World, device: torch.device, task: type[Task]) -> torch.nn.Module:
    """DDP around the module, or (for a task that averages its gradients itself) the module with
    rank 0's weights, as DDP would give every process."""
    if not world.distributed:
        return module
    if not task.through_ddp:
        distributed.broadcast_state(module, device if device.type == "cuda" else torch.device("cpu"))
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def _fits_on_device(data: DataSplit, device: torch.device) -> bool:
    size = sum(resident_bytes(t) for part in (data.train, data.val) for t in part.values())
    return device.type == "cpu" or size <= MAX_DEVICE_DATA_BYTES


def _batching(config: TrainingConfig, world: World, data: DataSplit, device: torch.device,
              task: type[Task] = Task) -> tuple[Batches, list[torch.Tensor]]:
    if config.batch_size % world.size:
        raise ConfigError(f"batch size {config.batch_size} is the global batch and must divide "
                          f"evenly over {world.size} processes")
    if 0 < data.val_size < world.size:
        raise ConfigError(f"the validation split holds {data.val_size} samples, fewer than the "
                          f"{world.size} processes", "raise validation_split, or use fewer processes")
    local = config.batch_size // world.size
    batches = task.train_batches(data, local, config.seed, world)
    return batches, eval_batches(data.val_size, config.batch_size, device, world.rank, world.size)
