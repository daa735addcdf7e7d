"""Refuse a run whose estimated memory exceeds what the device has free, before allocating.

The estimate is :func:`dlstudio.core.memory.training_memory`; what is free is the GPU's free
memory, or on the CPU the system's available memory capped by the process's address-space
limit (``ulimit -v``), less what the process already maps.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path

import torch

from dlstudio.core.findings import Analysis
from dlstudio.core.memory import gib, training_memory
from dlstudio.core.training import TrainingConfig
from dlstudio.train.errors import ConfigError


def cuda_free(device: torch.device) -> int:
    """The free bytes CUDA reports for ``device``."""
    return int(torch.cuda.mem_get_info(device)[0])


def check_memory(analysis: Analysis, config: TrainingConfig, device: torch.device,
                 gpu_free: Callable[[torch.device], int] = cuda_free) -> None:
    """Raise a ConfigError naming the estimate and the fix when training would not fit.
    ``gpu_free`` tells a GPU's free bytes (default: what CUDA reports)."""
    estimate = training_memory(analysis, config)
    free = free_memory(device, gpu_free)
    if free is not None and estimate.total > free:
        raise ConfigError(
            f"training '{analysis.graph.name}' needs {estimate.describe(config.batch_size)}, "
            f"but {device} has {gib(free)} free; nothing was allocated",
            "use smaller layers, a smaller batch size, or a device with more memory")


def free_memory(device: torch.device, gpu_free: Callable[[torch.device], int] = cuda_free) -> int | None:
    """Bytes the run can still allocate on ``device``; None where it cannot be told."""
    if device.type == "cuda":
        return gpu_free(device)
    if device.type != "cpu":
        return None
    limits = [_proc_value("/proc/meminfo", "MemAvailable:")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    mapped = _proc_value("/proc/self/status", "VmSize:")
    if soft != resource.RLIM_INFINITY and mapped is not None:
        limits.append(max(soft - mapped, 0))
    known = [value for value in limits if value is not None]
    return min(known) if known else None


def _proc_value(path: str, key: str) -> int | None:
    """A ``key: <n> kB`` line of a /proc file, in bytes; None off Linux."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
