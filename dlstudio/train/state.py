"""What a checkpoint holds: the loop's position and the state of every stateful part of a run.

Model, optimizer, LR schedule, gradient scaler and random number generators are saved, so a
resumed run continues exactly where the stopped one was (bit for bit on the CPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from dlstudio.train.errors import ConfigError
from dlstudio.train.setup import Parts


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


def capture(parts: Parts, loop: LoopState) -> dict[str, Any]:
    """Everything needed to continue the run, as tensors and plain values."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    state: dict[str, Any] = {
        "loop": asdict(loop), "model": parts.module.state_dict(),
        "optimizer": parts.optimizer.state_dict(), "rng": {"torch": torch.get_rng_state(), "cuda": cuda},
    }
    if parts.schedule is not None:
        state["scheduler"] = parts.schedule.scheduler.state_dict()
    if parts.scaler is not None:
        state["scaler"] = parts.scaler.state_dict()
    return state


def restore(parts: Parts, state: dict[str, Any]) -> LoopState:
    """Put a captured state back into freshly built parts; returns the loop position."""
    parts.module.load_state_dict({k: v.to(parts.device) for k, v in state["model"].items()})
    parts.optimizer.load_state_dict(state["optimizer"])
    if parts.schedule is not None and "scheduler" in state:
        planned = state["scheduler"].get("total_steps")
        if planned is not None and planned != parts.schedule.scheduler.total_steps:
            raise ConfigError(f"OneCycleLR planned {planned} steps when the run started; "
                              "its epochs cannot change on resume", "resume without --epochs")
        parts.schedule.scheduler.load_state_dict(state["scheduler"])
    if parts.scaler is not None and "scaler" in state:
        parts.scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return LoopState(**state["loop"])
