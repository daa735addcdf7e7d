"""A callback that looks inside the network while it trains, cheaply enough not to be noticed.

:class:`InsightTap` runs a :class:`~dlstudio.train.probes.ProbeCapture` on the training
thread right after an optimizer step, at most once per ``interval`` seconds and never more
than a ``budget`` share of the time (a probe that took 20 ms waits 20 / budget ms before the
next). It also counts a validation confusion matrix for classifiers and reports it after
each epoch. What it finds goes to ``sink`` as events, after the step event they follow.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from dlstudio.train.callbacks import Callback, CallbackFn
from dlstudio.train.events import (
    ConfusionReport,
    EpochEnd,
    ProbeFailed,
    ProbeReport,
    RunStarted,
    StepEnd,
)
from dlstudio.train.probes import ConfusionMetrics, ProbeCapture

if TYPE_CHECKING:
    from dlstudio.train.trainer import Trainer


class InsightTap(Callback):
    """Probes the run of the trainer given to :meth:`attach`; ``details`` names the nodes whose
    whole output (not only statistics) the next probes include (set from any thread)."""

    def __init__(self, sink: CallbackFn, interval: float = 0.5, budget: float = 0.01,
                 samples: int = 16) -> None:
        self.sink = sink
        self.interval = interval
        self.budget = budget
        self.samples = samples
        self.details: tuple[str, ...] = ()
        self.trainer: Trainer | None = None
        self.capture: ProbeCapture | None = None
        self.last: ProbeReport | None = None
        self._next = 0.0

    def attach(self, trainer: Trainer) -> InsightTap:
        self.trainer = trainer
        return self

    def on_run_started(self, event: RunStarted) -> None:
        assert self.trainer is not None and self.trainer.parts is not None
        p = self.trainer.parts
        try:
            use_val = p.data.val_size > 0
            self.capture = ProbeCapture(
                p.module, p.plan, p.analysis, p.val_inputs if use_val else p.train_inputs,
                p.val_target if use_val else p.train_target, p.objective, p.output_index,
                p.objective.classes, self.samples)
        except Exception as error:  # noqa: BLE001  (looking inside must never stop training)
            self._give_up(error)
        if p.metrics.mode != "value":
            p.metrics = ConfusionMetrics(p.config.metrics, p.config.loss.type,
                                         p.config.loss.params.get("ignore_index", -100))
        self._next = 0.0

    def on_step_end(self, event: StepEnd) -> None:
        if self.capture is not None and time.perf_counter() >= self._next:
            self.probe(event.epoch, event.step)

    def on_epoch_end(self, event: EpochEnd) -> None:
        assert self.trainer is not None and self.trainer.parts is not None
        metrics = self.trainer.parts.metrics
        matrix = metrics.confusion() if isinstance(metrics, ConfusionMetrics) else None
        if matrix is not None:
            self.sink(ConfusionReport(event.epoch, event.step, matrix))

    def probe(self, epoch: int, step: int) -> ProbeReport | None:
        """Probe now (on the thread that owns the module) and send the report to the sink."""
        if self.capture is None:
            return None
        try:
            report = self.capture.run(epoch, step, self.details)
        except Exception as error:  # noqa: BLE001
            self._give_up(error)
            return None
        self._next = time.perf_counter() + max(self.interval, report.seconds / self.budget)
        self.last = report
        self.sink(report)
        return report

    def _give_up(self, error: Exception) -> None:
        self.capture = None
        text = " ".join(str(error).split())[:200]
        self.sink(ProbeFailed(f"looking inside stopped: {type(error).__name__}: {text}"))
