"""What a checkpoint holds: the loop's position and the state of every stateful part of a run.

Model, optimizer, LR schedule, gradient scaler, pruning masks and random number generators are saved, so a
resumed run continues exactly where the stopped one was (bit for bit on the CPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from dlstudio.train.components import Schedule
from dlstudio.train.errors import ConfigError
from dlstudio.train.parts import Parts
from dlstudio.train.tasks.base import TOTAL, Task


@dataclass
class LoopState:
    """Where the loop is. ``epoch`` counts finished epochs, ``batch`` the batches done in the
    current one, ``step`` all optimizer steps; the rest feeds epoch metrics and early stopping."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    samples: int = 0
    best: float | None = None
    waited: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    #: sums over the epoch of the named losses besides the total (``loss_sum``), by name
    loss_sums: dict[str, float] = field(default_factory=dict)

    def add_losses(self, losses: dict[str, float], count: int) -> None:
        """Add one step's named losses, each weighted by the ``count`` samples it saw."""
        for name, value in losses.items():
            if name == TOTAL:
                self.loss_sum += value * count
            else:
                self.loss_sums[name] = self.loss_sums.get(name, 0.0) + value * count
        self.samples += count

    def train_losses(self) -> dict[str, float]:
        """The epoch's mean losses: ``train_loss`` (the total) and ``train_loss/<name>``."""
        samples = max(self.samples, 1)
        named = {f"train_loss/{name}": total / samples for name, total in self.loss_sums.items()}
        return {"train_loss": self.loss_sum / samples, **named}

    def next_epoch(self) -> None:
        """Count the epoch as done and start the next one's sums."""
        self.epoch, self.batch, self.loss_sum, self.samples = self.epoch + 1, 0, 0.0, 0
        self.loss_sums = {}


def capture(parts: Parts, task: Task, loop: LoopState) -> dict[str, Any]:
    """Everything needed to continue the run, as tensors and plain values."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    state: dict[str, Any] = {
        "loop": asdict(loop), "model": parts.module.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in parts.optimizers.items()},
        "rng": {"torch": torch.get_rng_state(), "cuda": cuda},
    }
    if parts.schedules:
        state["schedulers"] = {name: s.scheduler.state_dict() for name, s in parts.schedules.items()}
    if parts.scaler is not None:
        state["scaler"] = parts.scaler.state_dict()
    if parts.pruning is not None:
        state["pruning"] = parts.pruning.state_dict()
    own = task.state_dict()
    if own:
        state["task"] = own
    if parts.quantization is not None:
        state["quantization"] = parts.quantization.state_dict()
    return state


def restore(parts: Parts, task: Task, state: dict[str, Any]) -> LoopState:
    """Put a captured state back into freshly built parts; returns the loop position."""
    parts.module.load_state_dict({k: v.to(parts.device) for k, v in state["model"].items()})
    for name, optimizer in parts.optimizers.items():
        optimizer.load_state_dict(_named(state, "optimizers", "optimizer", name))
        _check_optimizer_state(optimizer)
    for name, schedule in parts.schedules.items():
        saved = _named(state, "schedulers", "scheduler", name)
        if saved is not None:
            _restore_schedule(schedule, saved)
    if parts.scaler is not None and "scaler" in state:
        parts.scaler.load_state_dict(state["scaler"])
    if parts.pruning is not None:
        parts.pruning.load_state_dict(state.get("pruning", {"masks": {}}))
    task.load_state_dict(state.get("task", {}))
    if parts.quantization is not None:
        parts.quantization.load_state_dict(state["quantization"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return LoopState(**state["loop"])


def _check_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Every per-parameter buffer (momentum, running averages) has its parameter's shape; an
    edited checkpoint could otherwise fail only in the next step."""
    for param, saved in optimizer.state.items():
        for key, value in saved.items():
            if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                raise ValueError(f"optimizer state '{key}' has shape {list(value.shape)} for a "
                                 f"parameter of shape {list(param.shape)}")


def _named(state: dict[str, Any], key: str, single: str, name: str) -> Any:
    """The state saved for the optimizer (or schedule) ``name``; a checkpoint from before tasks
    had several holds one under ``single``."""
    if key in state:
        if name not in state[key]:
            raise ConfigError(f"the checkpoint holds no {single} named '{name}' (it has "
                              f"{', '.join(state[key]) or 'none'})", "resume with the task that wrote it")
        return state[key][name]
    return state.get(single)


def _restore_schedule(schedule: Schedule, saved: dict[str, Any]) -> None:
    planned = saved.get("total_steps")
    if planned is not None and planned != schedule.scheduler.total_steps:
        raise ConfigError(f"OneCycleLR planned {planned} steps when the run started; "
                          "its epochs cannot change on resume", "resume without --epochs")
    schedule.scheduler.load_state_dict(saved)
