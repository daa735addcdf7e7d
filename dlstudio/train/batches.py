"""Which samples form each batch: a seeded shuffle per epoch, sharded across processes.

Batches index tensors that already sit on the device, so a step costs one gather per field.
The shuffle is ``torch.utils.data.DistributedSampler``'s (seed + epoch), also with one
process: rank r of W takes every W-th sample of the same permutation, so W processes with
batch B/W each see exactly the global batches one process sees with batch B.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch.utils.data import DistributedSampler


class Batches(Protocol):
    """The training batches of one rank: their number per epoch, and each epoch's index tensors."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int, device: torch.device) -> list[torch.Tensor]: ...


class TrainBatches:
    """Shuffled batches of one rank's shard; ``local_batch`` = global batch / world size."""

    def __init__(self, size: int, local_batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.sampler = DistributedSampler(range(size), num_replicas=world, rank=rank, shuffle=True,
                                          seed=seed, drop_last=False)
        self.local_batch = local_batch

    def __len__(self) -> int:
        return math.ceil(self.sampler.num_samples / self.local_batch)

    def epoch(self, epoch: int, device: torch.device) -> list[torch.Tensor]:
        """The index tensors of every batch of ``epoch``, in order."""
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(self.sampler), dtype=torch.long, device=device)
        return list(order.split(self.local_batch))


def eval_batches(size: int, batch: int, device: torch.device, rank: int = 0, world: int = 1) -> list[torch.Tensor]:
    """Every sample exactly once across ranks (no padding), in order."""
    if rank >= size:
        return []
    return list(torch.arange(rank, size, world, device=device).split(batch))
