"""Activation samples: what chosen nodes output for a fixed probe batch, every few steps.

The probe runs in eval mode under ``no_grad`` with forward hooks attached only while it
runs, so training steps pay nothing and no random numbers are drawn (a resumed run stays
identical to an uninterrupted one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dlstudio.core.codegen import ModulePlan
from dlstudio.train.events import ActivationSample


@dataclass(frozen=True)
class ActivationRequest:
    """Sample ``nodes`` (None: every node with a module) every ``every`` steps."""

    nodes: tuple[str, ...] | None = None
    every: int = 50
    samples: int = 8
    bins: int = 32
    values: int = 1024


class ActivationProbe:
    def __init__(self, module: torch.nn.Module, plan: ModulePlan, request: ActivationRequest,
                 inputs: list[torch.Tensor]) -> None:
        self.module = module
        self.request = request
        self.inputs = [x[: request.samples] for x in inputs]
        wanted = set(request.nodes) if request.nodes is not None else None
        self.targets = {sub.attr: sub.node_id for sub in plan.submodules
                        if wanted is None or sub.node_id in wanted}

    def due(self, step: int) -> bool:
        return step % self.request.every == 0

    def sample(self, step: int) -> list[ActivationSample]:
        captured: dict[str, torch.Tensor] = {}
        handles = [getattr(self.module, attr).register_forward_hook(self._keep(node, captured))
                   for attr, node in self.targets.items()]
        was_training = self.module.training
        try:
            self.module.eval()
            with torch.no_grad():
                self.module(*self.inputs)
        finally:
            self.module.train(was_training)
            for handle in handles:
                handle.remove()
        return [self._describe(step, node, tensor) for node, tensor in captured.items()]

    @staticmethod
    def _keep(node: str, captured: dict[str, torch.Tensor]) -> Any:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            tensor = output[0] if isinstance(output, tuple) else output
            if isinstance(tensor, torch.Tensor):
                captured[node] = tensor.detach()

        return hook

    def _describe(self, step: int, node: str, tensor: torch.Tensor) -> ActivationSample:
        values = tensor.float().cpu()
        flat = values.reshape(-1)
        low, high = float(flat.min()), float(flat.max())
        histogram = torch.histc(flat, bins=self.request.bins, min=low, max=high if high > low else low + 1)
        return ActivationSample(
            step=step, node=node, shape=tuple(values.shape), mean=float(flat.mean()),
            std=float(flat.std()) if flat.numel() > 1 else 0.0, min=low, max=high,
            zero_fraction=float((flat == 0).float().mean()),
            histogram=tuple(int(c) for c in histogram.tolist()),
            values=tuple(values[0].reshape(-1)[: self.request.values].tolist()),
        )
