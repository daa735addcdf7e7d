"""The task interface: a task declares its optimizers, performs a step, validates and may sample.

The trainer keeps the outer loop (stop, pause, checkpoints, divergence, distributed agreement,
events, run folders); a task supplies what differs between kinds of training, in the manner of
Lightning's ``LightningModule``: :meth:`Task.optimizers` names one optimizer per part of the
network, :meth:`Task.step` returns named losses for one batch, :meth:`Task.validate` returns
named metrics, :meth:`Task.sample` draws from a trained network where that means something.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from dlstudio.core.training import OptimizerConfig, TrainingConfig
from dlstudio.train import distributed
from dlstudio.train.batches import Batches, TrainBatches
from dlstudio.train.data import DataSplit, load_data
from dlstudio.train.data.lazy import lazy_split
from dlstudio.train.distributed import World
from dlstudio.train.errors import ConfigError
from dlstudio.train.parts import Parts
from dlstudio.train.rundir import RunDir

#: Every task class by the name ``training.task`` uses.
TASKS: dict[str, type[Task]] = {}

#: The key of the objective in the losses a step returns.
TOTAL = "total"


@dataclass(frozen=True)
class OptimizerPlan:
    """One optimizer a task asks for: its configuration and the parameters it updates."""

    config: OptimizerConfig
    parameters: list[nn.Parameter]


class Sampler(Protocol):
    """Draws samples from a trained network."""

    def sample(self, count: int, seed: int, **options: Any) -> Any: ...


class Task:
    """One kind of training over the built parts of a run (:class:`~dlstudio.train.setup.Parts`).

    Subclasses set ``name`` and implement :meth:`step` and :meth:`validate`; the rest has
    defaults that suit a task with one optimizer over every trainable parameter.
    """

    name: ClassVar[str]
    #: Whether a step runs the whole network through ``parts.model``, the DDP wrapper of a
    #: distributed run, whose backward averages the gradients. A task that runs parts compiled
    #: apart (:func:`~dlstudio.core.codegen.part_plan`) sets False: its module is not wrapped,
    #: and :meth:`optimize` averages each optimizer's gradients over the processes itself.
    through_ddp: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if cls.name in TASKS:
                raise ValueError(f"training task {cls.name!r} is declared twice")
            TASKS[cls.name] = cls

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    # -- what the set-up asks of a task class --------------------------------------------------------

    @classmethod
    def load_data(cls, config: TrainingConfig, base_dir: Path | None) -> DataSplit:
        """The training and validation data; by default the dataset split by seed (image
        files decoded lazily, batch by batch, with the configured augmentations)."""
        data = load_data(config.dataset, config.validation_split, config.seed, base_dir)
        return lazy_split(data, config.augment, config.seed, config.num_workers)

    @classmethod
    def train_batches(cls, data: DataSplit, local_batch: int, seed: int, world: World) -> Batches:
        """Which samples each step of an epoch takes; by default every sample once, shuffled."""
        return TrainBatches(data.train_size, local_batch, seed, world.rank, world.size)

    @classmethod
    def sampler(cls, module: nn.Module, record: dict[str, Any]) -> Sampler:
        """What samples from a finished run's trained ``module``, given the run's record."""
        raise _nothing_to_sample(cls.name)

    @classmethod
    def sampling_weights(cls, run_dir: RunDir) -> dict[str, torch.Tensor] | None:
        """Weights a finished run samples with in place of its final ones (a moving average of
        them, say); None: the final ones."""
        return None

    # -- what the trainer asks of a task -------------------------------------------------------------

    def optimizers(self) -> dict[str, OptimizerPlan]:
        """One optimizer per named part of the network; by default ``model`` over all of it."""
        return {"model": OptimizerPlan(self.parts.config.optimizer, list(self.parts.module.parameters()))}

    def step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Train on the samples at ``index``; returns named losses (detached), ``total`` among them."""
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        """Named metrics over the validation split (``val_loss`` first), on every process's share."""
        raise NotImplementedError

    def sample(self, count: int, seed: int, **options: Any) -> Any:
        """Draw ``count`` samples from the trained network (tasks that generate override this)."""
        raise _nothing_to_sample(self.name)

    def epoch_files(self, epoch: int) -> dict[str, bytes]:
        """Files to keep in the run folder after ``epoch`` (a sample grid), by path in it."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The task's own state to checkpoint (an EMA of the weights, say); none by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`state_dict` returned."""

    # -- helpers for subclasses ----------------------------------------------------------------------

    def optimize(self, loss: torch.Tensor, optimizer: str) -> None:
        """Backward ``loss`` and step the named optimizer: zero the gradients first, scale them
        under fp16, clip them to ``grad_clip``, and step the LR schedule when it runs per step."""
        p = self.parts
        opt = p.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        clip = p.config.grad_clip
        if p.scaler is None:
            loss.backward()
            self._average_gradients(opt)
            if clip:
                torch.nn.utils.clip_grad_norm_(_parameters(opt), clip)
            opt.step()
        else:
            p.scaler.scale(loss).backward()
            self._average_gradients(opt)
            if clip:
                p.scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(_parameters(opt), clip)
            p.scaler.step(opt)
            p.scaler.update()
        schedule = p.schedules.get(optimizer)
        if schedule is not None and schedule.interval == "step":
            schedule.scheduler.step()
        if p.world.distributed and not self.through_ddp:
            distributed.broadcast_state(p.module, p.collective_device, buffers_only=True)

    def _average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        p = self.parts
        if p.world.distributed and not self.through_ddp:
            distributed.average_gradients(_parameters(optimizer), p.world.size, p.collective_device)


    def draw_share(self, generator: torch.Generator, count: int, shape: tuple[int, ...],
                   uniform: bool = False) -> torch.Tensor:
        """``count`` normal (or uniform) draws of ``shape`` on the device, this process's share of
        a global batch: every process draws the global batch from ``generator`` and keeps its
        rank's rows, so the stream (and a checkpoint of it) is the same on every process and a
        run on W processes draws what one process draws."""
        world = self.parts.world
        draw = torch.rand if uniform else torch.randn
        return draw((count * world.size, *shape), generator=generator)[world.rank::world.size].to(self.parts.device)

    def global_means(self, sums: torch.Tensor) -> list[float]:
        """``sums`` (sums of values, then their count) added over every process; each value's mean."""
        p = self.parts
        if p.world.distributed:
            moved = sums.to(p.collective_device)
            distributed.all_reduce_sum(moved)
            sums = moved.cpu()
        return (sums[:-1] / sums[-1].clamp(min=1)).tolist()

    def reduce_metrics(self) -> None:
        """Sum the validation metrics over every process, so that the result is exact."""
        p = self.parts
        if not p.world.distributed:
            return
        for key, value in list(p.metrics.sums.items()):
            moved = value.to(p.collective_device)
            distributed.all_reduce_sum(moved)
            p.metrics.sums[key] = moved


def _nothing_to_sample(name: str) -> ConfigError:
    return ConfigError(f"a {name} run has nothing to sample",
                       "sampling needs a generative task (gan, diffusion, language_model, vae)")


def _parameters(optimizer: torch.optim.Optimizer) -> Iterable[torch.Tensor]:
    return [t for group in optimizer.param_groups for t in group["params"]]


def task_class(name: str) -> type[Task]:
    """The task registered as ``name``; an unknown name is a ConfigError naming the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise ConfigError(f"training task '{name}' is not known", f"use one of: {known}") from None
