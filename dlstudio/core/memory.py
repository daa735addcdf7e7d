"""How much memory training a graph needs, estimated from the analysis before anything is allocated.

An estimate, on the safe side where it is cheap to be: every tensor counts 4 bytes an element,
each parameter is held with its gradient and the optimizer's state, and every output with a
concrete shape is kept for the backward pass at the configured batch size. Symbolic sizes
(a variable length) are left out, so a graph with them may need more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dlstudio.core.findings import Analysis
from dlstudio.core.training import TrainingConfig

BYTES_PER_ELEMENT = 4
#: Tensors per parameter an optimizer keeps besides the weight and its gradient (SGD: momentum).
OPTIMIZER_STATES = {"Adam": 2, "AdamW": 2, "RMSprop": 2, "SGD": 1}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for the parameters with gradients and optimizer state, and for one batch's activations."""

    parameters: int
    activations: int

    @property
    def total(self) -> int:
        return self.parameters + self.activations

    def describe(self, batch_size: int) -> str:
        return (f"about {gib(self.total)} ({gib(self.parameters)} for parameters, gradients and "
                f"optimizer state, {gib(self.activations)} for activations at batch size {batch_size})")


def gib(size: int) -> str:
    """``12.3 GiB`` (or MiB below one GiB)."""
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


def training_memory(analysis: Analysis, config: TrainingConfig) -> MemoryEstimate:
    """The estimate for training ``analysis``'s graph as ``config`` says (see the module doc)."""
    copies = 2 + OPTIMIZER_STATES.get(config.optimizer.type, 2)
    parameters = analysis.total_params * copies * BYTES_PER_ELEMENT
    per_sample = sum(math.prod(t.shape[1:]) for t in analysis.ports.values()
                     if all(isinstance(d, int) for d in t.shape[1:]))
    return MemoryEstimate(parameters, per_sample * config.batch_size * BYTES_PER_ELEMENT)
