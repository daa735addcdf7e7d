"""The report of an int8 quantization: the fp32 model against the int8 one, side by side.

File size, latency per sample (the models timed in alternating rounds, so that a busy machine
slows both alike) and the run's validation loss and metrics, in one table; ONNX Runtime's and
PyTorch's int8 exports print the same one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Alternating timing rounds, and the wall-clock time each model gets per round.
ROUNDS = 30
ROUND_SECONDS = 0.005


@dataclass(frozen=True)
class ModelFigures:
    """One model's size, latency per sample and validation metrics."""

    size: int
    latency: float
    metrics: dict[str, float]


@dataclass(frozen=True)
class QuantizationReport:
    """The fp32 export against its int8 quantization."""

    method: str
    fp32: ModelFigures
    int8: ModelFigures
    runtime: str = "onnxruntime CPU"
    #: lines said under the table (which layers stayed float)
    notes: tuple[str, ...] = ()

    def as_table(self) -> str:
        rows = [("", "fp32", "int8", "int8 vs fp32"),
                ("file size", _kib(self.fp32.size), _kib(self.int8.size), f"x{self.int8.size / self.fp32.size:.3f}"),
                ("latency per sample", _micro(self.fp32.latency), _micro(self.int8.latency),
                 f"x{self.int8.latency / self.fp32.latency:.2f}")]
        for key in self.fp32.metrics:
            before, after = self.fp32.metrics[key], self.int8.metrics[key]
            rows.append((key, _metric(key, before), _metric(key, after), _metric_change(key, before, after)))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                           enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]
        return "\n".join([f"int8 quantization ({self.method}); latency: {self.runtime}, batch 1, one thread",
                          *lines, *self.notes])


def _kib(size: int) -> str:
    return f"{size / 1024:,.1f} KiB"


def _micro(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def _is_share(key: str) -> bool:
    return not key.endswith(("loss", "mse", "mae"))


def _metric(key: str, value: float) -> str:
    return f"{value:.2%}" if _is_share(key) else f"{value:.4f}"


def _metric_change(key: str, before: float, after: float) -> str:
    if _is_share(key):
        return f"{(after - before) * 100:+.2f} points"
    return f"{after - before:+.4f}"


def interleaved_latency(runs: list[Callable[[], object]]) -> list[float]:
    """Seconds per call of each of ``runs`` (a model on one input): the median over rounds in
    which every one runs for about the same time, one after the other."""
    repeats = [_repeats_per_round(run) for run in runs]
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(ROUNDS):
        for run, count, record in zip(runs, repeats, times, strict=True):
            start = time.perf_counter()
            for _ in range(count):
                run()
            record.append((time.perf_counter() - start) / count)
    return [statistics.median(record) for record in times]


def _repeats_per_round(run: Callable[[], object]) -> int:
    start = time.perf_counter()
    for _ in range(5):  # the first runs also warm the model up
        run()
    once = (time.perf_counter() - start) / 5
    return max(1, min(1000, int(ROUND_SECONDS / max(once, 1e-7))))
