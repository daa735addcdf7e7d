"""The bridge between the training engine and the UI: a run off the UI thread, its events as signals.

The app trains in a worker process (:mod:`dlstudio.train.worker`): the UI thread and the
training then never compete for one interpreter lock, which kept a QThread from painting in
time (a 100 ms gap budget) while training ran at full speed. A QThread mode is kept for tests
and scripts. Either way the training side only appends events to a queue; a timer on the UI
thread drains it four times a second and emits typed signals, the steps of that quarter of a
second as one list, so the UI works a few times a second however fast the steps come.
Pause, resume and stop set flags the trainer checks before every batch. The run trains its
own copy of the graph (deep-copied here, sent as JSON to a worker), so editing the document
during a run cannot touch it.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from dlstudio.core.graph import Graph
from dlstudio.core.training import TrainingConfig
from dlstudio.train.events import (
    Control,
    Pause,
    Resume,
    SessionMode,
    SessionState,
    SetDetails,
    StartRun,
    Stop,
)

DRAIN_MS = 500
#: After a run, or a probe asked for after it, how long to keep listening for its reports.
LINGER_S = 10.0


class EventQueue:
    """Collects events from any thread; :meth:`drain` takes them all, oldest first."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()

    def __call__(self, event: Any) -> None:
        self._items.append(event)

    def drain(self) -> list[Any]:
        items = []
        while self._items:
            items.append(self._items.popleft())
        return items


class _JobThread(QThread):
    """Runs one callable on its own thread; an unexpected error is kept, never raised into Qt."""

    def __init__(self, job: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.job()
        except Exception as error:  # noqa: BLE001  (the trainer already reported it as Failed)
            self.error = error
            traceback.print_exc(file=sys.stderr)


class TrainingSession(QObject):
    """One training run of a snapshot of a graph, driven from the UI thread.

    ``mode`` :attr:`~SessionMode.PROCESS` (the app's choice) trains in a worker process, so the
    UI and the training never wait for each other's interpreter lock; :attr:`~SessionMode.THREAD`
    trains on a QThread in this process. Both deliver the same signals. ``state`` is a
    :class:`SessionState`.
    """

    started = Signal(object)  # RunStarted
    steps = Signal(list)  # [StepEnd, ...] since the last delivery
    learning_rate = Signal(object)  # LearningRate
    throughput = Signal(object)  # Throughput
    epoch_ended = Signal(object)  # EpochEnd
    checkpoint_saved = Signal(object)  # CheckpointSaved
    probed = Signal(object)  # ProbeReport (only the newest of each delivery)
    confusion = Signal(object)  # ConfusionReport
    sampled = Signal(object)  # EpochSample: a picture or text the task drew after an epoch
    notice = Signal(str)  # something worth a status message (probing gave up, ...)
    finished = Signal(object)  # Finished
    failed = Signal(object)  # Failed
    state_changed = Signal(object)  # SessionState

    def __init__(self, graph: Graph, config: TrainingConfig | None = None, *, run_dir: Path | None = None,
                 resume: bool = False, base_dir: Path | None = None, max_steps: int | None = None,
                 probe_interval: float = 0.5, mode: SessionMode = SessionMode.PROCESS, worker: Any = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.graph = graph.model_copy(deep=True)
        chosen = config if config is not None else graph.training
        self.config = chosen.model_copy(deep=True) if chosen is not None else None
        self.run_dir = run_dir
        self.resume = resume
        self.base_dir = base_dir
        self.max_steps = max_steps
        self.probe_interval = probe_interval
        self.mode = SessionMode(mode)
        self.worker = worker
        self.queue = EventQueue()
        self.details: tuple[str, ...] = ()
        self.outcome: Any = None  # the Finished or Failed event
        self.run_started: Any = None
        self.state = SessionState.READY
        self.trainer: Any = None
        self.tap: Any = None
        self._ended = False
        self._thread_ended = False
        self._linger = 0.0
        self._thread: _JobThread | None = None
        self._probe_job: _JobThread | None = None
        self._probe_again = False
        self._timer = QTimer(self, interval=DRAIN_MS)
        self._timer.timeout.connect(self.deliver)

    # ----- control ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.state != SessionState.READY:
            raise RuntimeError(f"this session is {self.state}")
        if self.config is None:
            raise ValueError("the graph has no training section")
        if self.mode == SessionMode.THREAD:
            self._start_thread()
        else:
            self._start_process()
        self._set_state(SessionState.RUNNING)
        self._timer.start()

    def _start_process(self) -> None:
        from dlstudio.core.io import graph_to_json
        from dlstudio.train.events import Job
        from dlstudio.train.worker import start_worker

        self.worker = self.worker if self.worker is not None and self.worker.alive else start_worker()
        self.worker.send(StartRun(Job(
            graph_json=graph_to_json(self.graph), config=self.config.model_dump(mode="json"),
            run_dir=str(self.run_dir) if self.run_dir else None, resume=self.resume,
            base_dir=str(self.base_dir) if self.base_dir else None, max_steps=self.max_steps,
            probe_interval=self.probe_interval, details=self.details)))

    def _start_thread(self) -> None:
        from dlstudio.train.insight import InsightTap
        from dlstudio.train.rundir import RunDir
        from dlstudio.train.trainer import Trainer

        self.tap = InsightTap(self.queue, interval=self.probe_interval)
        self.tap.details = self.details
        self.trainer = Trainer(self.graph, self.config, [self.queue, self.tap],
                               run_dir=RunDir(self.run_dir) if self.run_dir else None, resume=self.resume,
                               base_dir=self.base_dir, max_steps=self.max_steps)
        self.tap.attach(self.trainer)
        self._thread = _JobThread(self._fit, self)
        self._thread.finished.connect(self._thread_done)
        self._thread.start()

    def _fit(self) -> None:
        self.trainer.fit()
        if self.tap.capture is not None:
            self.tap.probe(self.trainer.state.epoch, self.trainer.state.step)

    def _thread_done(self) -> None:
        from dlstudio.train.events import RunEnded

        if self._thread_ended:  # called by wait() and by the thread's finished signal
            return
        self._thread_ended = True
        self.queue(RunEnded(crashed=self._thread is not None and self._thread.error is not None))
        self.deliver()

    def _command(self, command: Control) -> None:
        if self.mode == SessionMode.PROCESS:
            self.worker.send(command)
        else:
            from dlstudio.train.worker import steer

            steer(self.trainer, command)

    def pause(self) -> None:
        if self.state == SessionState.RUNNING:
            self._command(Pause())
            self._set_state(SessionState.PAUSED)

    def resume_run(self) -> None:
        if self.state == SessionState.PAUSED:
            self._command(Resume())
            self._set_state(SessionState.RUNNING)

    def stop(self) -> None:
        """Stop before the next batch (a checkpoint is written first)."""
        if self.state.controllable:
            self._command(Stop())
            self._set_state(SessionState.STOPPING)

    @property
    def active(self) -> bool:
        return self.state.active

    def wait(self, ms: int = 30_000) -> bool:
        """Block until the run has ended and its events are delivered (tests, shutdown)."""
        deadline = time.monotonic() + ms / 1000
        while self.active and time.monotonic() < deadline:
            if self._thread is not None:
                if self._thread.wait(50):
                    self._thread_done()  # the finished signal cannot arrive while this blocks
            else:
                time.sleep(0.02)
            self.deliver()
        return not self.active

    def close(self) -> None:
        """Let the worker go (its trained network with it); a running one is stopped first."""
        if self.active:
            self.stop()
            self.wait()
        self._timer.stop()
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        if self._thread is not None:
            self._thread.wait()

    # ----- looking inside ---------------------------------------------------------------------------

    def set_details(self, nodes: list[str]) -> None:
        """Nodes whose whole output the probes include; after a run, probes again at once."""
        self.details = tuple(nodes)
        if self.state == SessionState.READY:
            return
        if self.mode == SessionMode.PROCESS:
            if self.worker is not None and self.worker.send(SetDetails(self.details)):
                self._linger = time.monotonic() + LINGER_S
                self._timer.start()
            return
        self.tap.want(self.details)
        if not self.active and self.details:
            self._probe_after_run()

    def _probe_after_run(self) -> None:
        if self.tap.capture is None:
            return
        if self._probe_job is not None:  # one at a time: probe again when this one is done
            self._probe_again = True
            return
        state = self.trainer.state
        self._probe_job = _JobThread(lambda: self.tap.probe(state.epoch, state.step), self)
        self._probe_job.finished.connect(self._probe_done)
        self._probe_job.start()

    def _probe_done(self) -> None:
        self._probe_job = None
        self.deliver()
        if self._probe_again:
            self._probe_again = False
            self._probe_after_run()

    # ----- delivery -----------------------------------------------------------------------------------

    def deliver(self) -> None:
        """Emit what the training side queued since the last call (UI thread)."""
        from dlstudio.train import events as ev

        events = self.queue.drain() if self.mode == SessionMode.THREAD else self._poll_worker()
        steps = [e for e in events if isinstance(e, ev.StepEnd)]
        probes = [e for e in events if isinstance(e, ev.ProbeReport)]
        signals = {ev.LearningRate: self.learning_rate, ev.Throughput: self.throughput,
                   ev.EpochEnd: self.epoch_ended, ev.CheckpointSaved: self.checkpoint_saved,
                   ev.ConfusionReport: self.confusion, ev.EpochSample: self.sampled}
        for event in events:
            if isinstance(event, ev.StepEnd):
                if event is steps[0]:
                    self.steps.emit(steps)
            elif isinstance(event, ev.RunStarted):
                self.run_started = event
                self.started.emit(event)
            elif type(event) in signals:
                signals[type(event)].emit(event)
            elif isinstance(event, ev.ProbeFailed):
                self.notice.emit(event.message)
            elif isinstance(event, ev.Finished | ev.Failed):
                self.outcome = event
                (self.finished if isinstance(event, ev.Finished) else self.failed).emit(event)
            elif isinstance(event, ev.RunEnded):
                self._ended = True
        if probes:
            self.probed.emit(probes[-1])
        if self._ended and self.active:
            self._run_over()
        elif not self.active and time.monotonic() > self._linger:
            self._timer.stop()

    def _poll_worker(self) -> list[Any]:
        if self.worker is None:
            return []
        events = self.worker.poll()
        if not self.worker.alive and not self._ended and self.active:
            from dlstudio.train.events import Failed, FailureKind, RunEnded

            code = self.worker.process.exitcode
            events += self.worker.poll() + [
                Failed(FailureKind.ERROR, f"the training process ended unexpectedly (exit code {code})",
                       "the machine may have run out of memory; try a smaller batch size"), RunEnded(True)]
        return events

    def _run_over(self) -> None:
        from dlstudio.train.events import Finished, FinishReason

        self._linger = time.monotonic() + LINGER_S  # the final probe may still be on its way
        if isinstance(self.outcome, Finished):
            done = self.outcome.reason in (FinishReason.COMPLETED, FinishReason.EARLY_STOPPING,
                                           FinishReason.MAX_STEPS)
            self._set_state(SessionState.FINISHED if done else SessionState.STOPPED)
        else:
            self._set_state(SessionState.FAILED)

    def _set_state(self, state: SessionState) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
