"""Unstructured magnitude pruning: zero the smallest weights, once (``dlstudio prune --sparsity``)
or gradually while training (``training.pruning``, :class:`GradualPruning`).

The weights zeroed are the prunable ones (:func:`dlstudio.core.sparsity.prunable`: matrices and
kernels, never biases or normalisation scales). ``layer`` scope zeroes the same share of each
tensor; ``global`` scope one share of all of them together, by one magnitude threshold, so the
large layers, which hold most small weights, lose most. Exactly ``round(sparsity * n)`` entries
go: ties at the threshold are broken by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from dlstudio.core.analysis import Analysis
from dlstudio.core.sparsity import node_sparsity, prunable, zero_count
from dlstudio.core.training import PruningConfig, Scope, pruning_end
from dlstudio.train.callbacks import Callback
from dlstudio.train.events import RunStarted, StepEnd

#: The run file that holds each node's sparsity after the last epoch.
SPARSITY_FILE = "sparsity.json"


def prunable_parameters(module: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The module's prunable parameters by name (a tied one once, under its first name)."""
    return {name: p for name, p in module.named_parameters() if prunable(name, p)}


def magnitude_masks(weights: Mapping[str, torch.Tensor], sparsity: float, scope: Scope) -> dict[str, torch.Tensor]:
    """Name -> mask (True: keep) that zeroes the ``sparsity`` share of smallest-magnitude entries,
    counted per tensor (``layer``) or over all the tensors together (``global``)."""
    if scope == "layer":
        return {name: _keep(w.detach().abs().flatten(), sparsity).view_as(w) for name, w in weights.items()}
    if not weights:
        return {}
    magnitudes = torch.cat([w.detach().abs().flatten().float() for w in weights.values()])
    parts = _keep(magnitudes, sparsity).split([w.numel() for w in weights.values()])
    return {name: part.view_as(w) for (name, w), part in zip(weights.items(), parts, strict=True)}


def _keep(magnitudes: torch.Tensor, sparsity: float) -> torch.Tensor:
    keep = torch.ones_like(magnitudes, dtype=torch.bool)
    keep[torch.argsort(magnitudes, stable=True)[: round(sparsity * magnitudes.numel())]] = False
    return keep


@torch.no_grad()
def apply_masks(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> None:
    """Zero, in place, every entry a mask leaves out."""
    for name, mask in masks.items():
        weights[name].masked_fill_(~mask, 0)


def cubic_sparsity(step: int, begin: int, end: int, target: float) -> float:
    """Zhu and Gupta's schedule: 0 up to step ``begin``, ``target`` from step ``end``, and in
    between ``target * (1 - (1 - progress)^3)``."""
    if step <= begin:
        return 0.0
    if step >= end:
        return target
    return target * (1 - (1 - (step - begin) / (end - begin)) ** 3)


def sparsity_report(analysis: Analysis, state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The share of zero prunable weights overall and per node (what :data:`SPARSITY_FILE` holds)."""
    zeros, total = zero_count(state_dict)
    return {"sparsity": zeros / total if total else 0.0, "nodes": node_sparsity(analysis, state_dict)}


class GradualPruning(Callback):
    """Prunes ``module`` along the cubic schedule at the end of the steps that are due, and puts
    the zeros back after every step of the ``optimizers`` (which would move them). A weight once
    pruned stays pruned, and so does one that is zero when a new run starts (pruned before). Its
    masks are part of a checkpoint (:meth:`state_dict`), so a resumed run prunes exactly as before."""

    def __init__(self, settings: PruningConfig, analysis: Analysis, module: torch.nn.Module,
                 optimizers: Iterable[torch.optim.Optimizer], steps_per_epoch: int, epochs: int) -> None:
        self.settings = settings
        self.analysis = analysis
        self.module = module
        self.weights = prunable_parameters(module)
        self.masks: dict[str, torch.Tensor] = {}
        self.restored = False
        self.begin = (settings.start_epoch - 1) * steps_per_epoch
        self.end = pruning_end(settings, epochs) * steps_per_epoch
        self.every = settings.frequency or steps_per_epoch
        for optimizer in optimizers:
            optimizer.register_step_post_hook(lambda *_: apply_masks(self.weights, self.masks))

    def due(self, step: int) -> bool:
        """Whether the masks are recomputed after optimizer step ``step`` (counting from 1)."""
        return self.begin < step <= self.end and (step == self.end or (step - self.begin) % self.every == 0)

    def on_run_started(self, event: RunStarted) -> None:
        """A new run keeps the zeros it starts with (weights pruned before, by ``dlstudio prune``)."""
        if not self.restored:
            self.masks = {name: w != 0 for name, w in self.weights.items() if not bool(w.all())}

    def on_step_end(self, event: StepEnd) -> None:
        if self.due(event.step):
            target = cubic_sparsity(event.step, self.begin, self.end, self.settings.sparsity)
            found = magnitude_masks(self.weights, target, self.settings.scope)
            self.masks = {name: mask & self.masks[name] if name in self.masks else mask
                          for name, mask in found.items()}  # a weight once pruned stays pruned
            apply_masks(self.weights, self.masks)

    def metrics(self) -> dict[str, float]:
        """The epoch metric ``sparsity``: the share of the prunable weights now zero."""
        zeros, total = zero_count(dict(self.weights))
        return {"sparsity": zeros / total if total else 0.0}

    def report(self) -> dict[str, Any]:
        return sparsity_report(self.analysis, self.module.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"masks": dict(self.masks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        masks = state["masks"]
        for name, mask in masks.items():
            if name not in self.weights or mask.shape != self.weights[name].shape or mask.dtype != torch.bool:
                raise ValueError(f"pruning mask '{name}' does not fit this network's weights")
        self.masks = {name: mask.to(self.weights[name].device) for name, mask in masks.items()}
        self.restored = True
