"""A callback that looks inside the network while it trains, cheaply enough not to be noticed.

:class:`InsightTap` runs a :class:`~dlstudio.train.probes.ProbeCapture` on the training
thread right after an optimizer step when its wall-clock due time has come: at once when the
nodes asked about change, then after each probe a gap of at least ``interval`` seconds that
keeps probing under a ``budget`` share of the time (a probe that took 20 ms waits 20 / budget
ms), but never longer than ``longest`` seconds, so a slow probe on a loaded machine cannot
freeze the view for a minute. It also counts a validation confusion matrix for classifiers and reports it after
each epoch. What it finds goes to ``sink`` as events, after the step event they follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dlstudio.bugs import report_bug
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
    whole output (not only statistics) the probes include (set with :meth:`want`, from any thread).
    ``clock`` gives the wall-clock seconds the probes are scheduled by."""

    def __init__(self, sink: CallbackFn, interval: float = 0.5, budget: float = 0.01,
                 samples: int = 16, longest: float = 2.0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.sink = sink
        self.interval = interval
        self.budget = budget
        self.samples = samples
        self.longest = longest
        self.clock = clock
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

    def want(self, nodes: tuple[str, ...]) -> None:
        """Include ``nodes``' whole outputs from now on; a new choice is probed as the step ends."""
        nodes = tuple(nodes)
        if nodes != self.details:
            self.details = nodes
            self._next = 0.0

    def gap(self, cost: float) -> float:
        """Seconds from the end of a probe that took ``cost`` seconds to the next one."""
        return min(max(self.interval, cost / self.budget), self.longest)

    def on_step_end(self, event: StepEnd) -> None:
        if self.capture is not None and self.clock() >= self._next:
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
        details, started = self.details, self.clock()
        try:
            report = self.capture.run(epoch, step, details)
        except Exception as error:  # noqa: BLE001
            self._give_up(error)
            return None
        finished = self.clock()
        if self.details == details:  # else nodes asked for during this probe are due at once
            self._next = finished + self.gap(finished - started)
        self.last = report
        self.sink(report)
        return report

    def _give_up(self, error: Exception) -> None:
        self.capture = None
        self.sink(ProbeFailed(f"looking inside stopped: {report_bug(error, 'probe')}"))
