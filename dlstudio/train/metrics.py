"""Validation metrics, accumulated on the device and read once per epoch.

Sums stay tensors until :meth:`Metrics.compute`, so no batch forces a device sync; with
several processes the sums are all-reduced first, which makes the result exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from dlstudio.core.training import BINARY_LOSSES, CLASS_LOSSES, TOPK_RE


def class_view(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and labels in torch's layout: ``[N, C, ...]`` with ``[N, ...]``.

    A class-last output (``[N, T, C]`` against ``[N, T]``) is flattened to ``[N*T, C]``.
    """
    if output.dim() > 2 and target.shape == output.shape[:-1]:
        return output.reshape(-1, output.shape[-1]), target.reshape(-1)
    return output, target


class Metrics:
    """Loss and the configured metrics over a pass through data."""

    def __init__(self, names: list[str], loss_type: str, ignore_index: int = -100) -> None:
        self.names = names
        self.ignore_index = ignore_index
        self.mode = "class" if loss_type in CLASS_LOSSES else "binary" if loss_type in BINARY_LOSSES else "value"
        self.threshold = 0.0 if loss_type == "BCEWithLogitsLoss" else 0.5
        self.topk = sorted({int(m.group(1)) for n in names if (m := TOPK_RE.fullmatch(n))})
        self.sums: dict[str, torch.Tensor] = {}

    def reset(self) -> None:
        self.sums = {}

    def _add(self, key: str, value: torch.Tensor) -> None:
        value = value.detach().double()
        self.sums[key] = self.sums[key] + value if key in self.sums else value

    def update(self, output: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        count = torch.tensor(float(len(target)), device=loss.device)
        self._add("loss", loss * count)
        self._add("samples", count)
        output = output.float()
        if self.mode == "value":
            diff = output - target.reshape(output.shape).to(output.dtype)
            self._add("sse", diff.square().sum())
            self._add("sae", diff.abs().sum())
            self._add("elements", torch.tensor(float(diff.numel()), device=diff.device))
            return
        if self.mode == "binary":
            predicted = (output > self.threshold).long().reshape(-1)
            labels = (target.reshape(-1) > 0.5).long()
            scores = None
        else:
            scores, labels = class_view(output, target)
            scores = scores.movedim(1, -1).reshape(-1, scores.shape[1])
            labels = labels.reshape(-1)
            predicted = scores.argmax(1)
        self._count_classes(scores, predicted, labels)

    def _count_classes(self, scores: torch.Tensor | None, predicted: torch.Tensor, labels: torch.Tensor) -> None:
        valid = labels != self.ignore_index
        predicted, labels = predicted[valid], labels[valid]
        self._add("correct", (predicted == labels).sum())
        self._add("total", valid.sum())
        if scores is not None:
            for k in self.topk:
                best = scores[valid].topk(min(k, scores.shape[1]), dim=1).indices
                self._add(f"top{k}", (best == labels[:, None]).any(1).sum())
        if "f1" in self.names:
            classes = scores.shape[1] if scores is not None else 2
            cells = labels.clamp(0, classes - 1) * classes + predicted
            self._add("confusion", torch.bincount(cells, minlength=classes * classes).reshape(classes, classes))

    def all_reduce(self, reduce: Callable[[torch.Tensor], None]) -> None:
        """Sum every accumulator over processes (``reduce`` works in place)."""
        for value in self.sums.values():
            reduce(value)

    def compute(self, prefix: str = "val_") -> dict[str, float]:
        s = {k: v.cpu() for k, v in self.sums.items()}
        if not s:
            return {}
        result = {f"{prefix}loss": float(s["loss"] / s["samples"])}
        for name in self.names:
            result[prefix + name] = self._value(name, s)
        return result

    def _value(self, name: str, s: dict[str, torch.Tensor]) -> float:
        if name == "accuracy":
            return float(s["correct"] / s["total"].clamp(min=1))
        if match := re.fullmatch(r"top(\d+)_accuracy", name):
            return float(s[f"top{match.group(1)}"] / s["total"].clamp(min=1))
        if name == "f1":
            return macro_f1(s["confusion"], binary=self.mode == "binary")
        if name == "mse":
            return float(s["sse"] / s["elements"])
        return float(s["sae"] / s["elements"])


def macro_f1(confusion: torch.Tensor, binary: bool = False) -> float:
    """F1 of the positive class (binary) or the mean F1 of classes that occur (rows: truth)."""
    tp = confusion.diagonal()
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    if binary:
        return float(f1[1])
    present = (tp + fp + fn) > 0
    return float(f1[present].mean()) if present.any() else 0.0
