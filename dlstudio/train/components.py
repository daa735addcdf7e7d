"""Build the parts a run needs from its configuration: device, precision, optimizer, schedule, loss."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dlstudio.core.training import (
    CLASS_LOSSES,
    LossConfig,
    OptimizerConfig,
    SchedulerConfig,
    monitor_mode,
)
from dlstudio.train.errors import ConfigError
from dlstudio.train.metrics import class_view


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an unavailable device is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name} was asked for, but this torch sees no CUDA GPU",
                              "use --device cpu (or auto)")
        index = int(name.partition(":")[2] or local_rank)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name}: there are only {torch.cuda.device_count()} GPUs")
        return torch.device("cuda", index)
    if name == "mps" and not _mps_available():
        raise ConfigError("device mps was asked for, but MPS is not available", "use --device cpu")
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def autocast(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts for the precision (a no-op context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> Any:
    """A GradScaler for fp16 on CUDA (where small gradients would underflow), else None."""
    if precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def make_optimizer(config: OptimizerConfig, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    args = dict(config.params)
    if "betas" in args:
        args["betas"] = tuple(args["betas"])
    return getattr(torch.optim, config.type)(parameters, **args)


@dataclass
class Schedule:
    """An LR scheduler and when it steps: after each batch, each epoch, or on a metric."""

    scheduler: Any
    interval: str  # "step" | "epoch" | "plateau"
    monitor: str = ""

    def after_epoch(self, metrics: dict[str, float]) -> None:
        if self.interval == "epoch":
            self.scheduler.step()
        elif self.interval == "plateau" and self.monitor in metrics:
            self.scheduler.step(metrics[self.monitor])


def make_schedule(config: SchedulerConfig | None, optimizer: torch.optim.Optimizer, epochs: int,
                  steps_per_epoch: int) -> Schedule | None:
    if config is None:
        return None
    lr_scheduler = torch.optim.lr_scheduler
    args = dict(config.params)
    if config.type == "OneCycleLR":
        args["max_lr"] = args.get("max_lr") or optimizer.param_groups[0]["lr"]
        return Schedule(lr_scheduler.OneCycleLR(optimizer, total_steps=epochs * steps_per_epoch, **args), "step")
    if config.type == "ReduceLROnPlateau":
        monitor = args.pop("monitor")
        args["mode"] = monitor_mode(monitor, args["mode"])
        return Schedule(lr_scheduler.ReduceLROnPlateau(optimizer, **args), "plateau", monitor)
    if config.type == "CosineAnnealingLR":
        args["T_max"] = args.get("T_max") or epochs
    return Schedule(getattr(lr_scheduler, config.type)(optimizer, **args), "epoch")


class Objective:
    """The configured ``torch.nn`` loss between the bound output and the target, in float32.

    Class losses take scores with the class dim 1 (torch's layout) or last (a sequence
    model's [N, T, C] against a [N, T] target, flattened here).
    """

    def __init__(self, config: LossConfig, device: torch.device) -> None:
        kwargs = {k: v for k, v in config.params.items() if v is not None}
        for key in ("weight", "pos_weight"):
            if key in kwargs:
                kwargs[key] = torch.tensor(kwargs[key], dtype=torch.float32, device=device)
        self.fn = getattr(nn, config.type)(**kwargs)
        self.classes = config.type in CLASS_LOSSES
        self.ignore_index = config.params.get("ignore_index", -100)

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        output = output.float()
        if self.classes:
            return self.fn(*class_view(output, target))
        if target.shape != output.shape:
            target = target.reshape(output.shape)
        return self.fn(output, target.to(output.dtype))
