"""Supervised learning: the bound Input fields go in, a loss compares an Output with a target field.

The objective is the loss plus the weighted auxiliary losses (``training.loss.auxiliary``);
validation reports that objective as ``val_loss`` and the configured metrics of the main output.
"""

from __future__ import annotations

from typing import Any

import torch

from dlstudio.train.tasks.base import TOTAL, Task


class SupervisedTask(Task):
    """Input → label: one optimizer over the whole network, one loss."""

    name = "supervised"

    def step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.parts
        inputs = [x[index] for x in p.train_inputs]
        with p.autocast():
            _, loss = self.objective(p.model(*inputs), p.train_target[index])
        self.optimize(loss, "model")
        return {TOTAL: loss.detach()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        p = self.parts
        p.module.eval()
        p.metrics.reset()
        for index in p.val_batches:
            with p.autocast():
                target = p.val_target[index]
                output, loss = self.objective(p.module(*[x[index] for x in p.val_inputs]), target)
                p.metrics.update(output, target, loss)
        self.reduce_metrics()
        p.module.train()
        return p.metrics.compute()

    def objective(self, outputs: Any, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss's output among the model's ``outputs``, and the objective: the loss plus
        the weighted auxiliary losses."""
        p = self.parts
        output = outputs if p.output_index is None else outputs[p.output_index]
        loss = p.objective(output, target)
        for position, weight in p.auxiliary:
            loss = loss + weight * outputs[position].float()
        return output, loss
