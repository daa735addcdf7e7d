"""A training worker process: the trainer away from the UI's interpreter and its lock.

The app starts one with :func:`start_worker` (``multiprocessing`` *spawn*, so nothing of the
UI process is inherited) ahead of time; it imports torch and waits. Commands
(:data:`~dlstudio.train.events.Command`) go in over a pipe; events come back over a queue, in
batches, as the engine's own event dataclasses and insight reports. Every message is declared
in :mod:`dlstudio.train.events`. The graph travels as its JSON text and the configuration as a
JSON-able dict, so no user file is ever unpickled. No Qt here.

After a run the worker keeps the trained network for probes until it is told to :class:`Quit`.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from dlstudio.train.events import (
    Command,
    Control,
    Failed,
    Finished,
    Job,
    Pause,
    Quit,
    Ready,
    Resume,
    RunEnded,
    RunStarted,
    SetDetails,
    StartRun,
    Stop,
)

#: Events are sent in batches at most this often while training (each send wakes a feeder
#: thread that competes with the training thread for the interpreter).
BATCH_S = 0.25


class _Batcher:
    """Collects events and sends them as one list every ``BATCH_S`` while training (a thread
    of its own sends them, so a paused run's last steps still arrive), and at once for the
    events that begin or end something, or outside a run."""

    URGENT = (Ready, RunStarted, Finished, Failed, RunEnded)

    def __init__(self, events: Any) -> None:
        self.events = events
        self.pending: list[Any] = []
        self.lock = threading.Lock()
        self.training = False
        threading.Thread(target=self._send_regularly, name="dlstudio-events", daemon=True).start()

    def __call__(self, event: Any) -> None:
        with self.lock:
            self.pending.append(event)
            if not self.training or isinstance(event, self.URGENT):
                self._send()

    def _send(self) -> None:
        if self.pending:
            self.events.put(self.pending)
            self.pending = []

    def _send_regularly(self) -> None:
        while True:
            time.sleep(BATCH_S)
            with self.lock:
                self._send()


@dataclass(frozen=True, slots=True)
class _ProbeNow:
    """The worker's own job: probe the trained network now (new details after a run)."""


def steer(trainer: Any, command: Control) -> None:
    """Pause, resume or stop ``trainer`` (from any thread)."""
    match command:
        case Pause():
            trainer.request_pause()
        case Resume():
            trainer.request_resume()
        case Stop():
            trainer.request_stop()


class _Worker:
    def __init__(self, commands: Connection, events: Any) -> None:
        self.commands = commands
        self.send = _Batcher(events)
        self.jobs: queue.Queue[StartRun | Quit | _ProbeNow] = queue.Queue()
        self.trainer: Any = None
        self.tap: Any = None

    def listen(self) -> None:
        """Commands from the UI (a thread: it must answer while ``fit`` runs)."""
        while True:
            try:
                command: Command = self.commands.recv()
            except (EOFError, OSError):  # the app is gone: stop the run (it checkpoints) and end
                if self.trainer is not None:
                    steer(self.trainer, Stop())
                command = Quit()
            match command:
                case StartRun():
                    self.jobs.put(command)
                case Quit():
                    self.jobs.put(command)
                    return
                case SetDetails(nodes):
                    self._details(nodes)
                case Pause() | Resume() | Stop() if self.trainer is not None:
                    steer(self.trainer, command)

    def _details(self, nodes: tuple[str, ...]) -> None:
        if self.tap is not None:
            self.tap.want(nodes)
            if nodes and not self.send.training:
                self.jobs.put(_ProbeNow())

    def serve(self) -> None:
        import dlstudio.train.trainer  # noqa: F401  (torch and the engine, before Ready)

        threading.Thread(target=self.listen, name="dlstudio-commands", daemon=True).start()
        self.send(Ready())
        while True:
            match self.jobs.get():
                case Quit():
                    return
                case StartRun(job) if self.trainer is None:
                    self.run(job)
                case _ProbeNow() if self.tap is not None and self.trainer is not None:
                    self.tap.probe(self.trainer.state.epoch, self.trainer.state.step)

    def run(self, job: Job) -> None:
        from dlstudio.core.io import graph_from_dict, parse_json
        from dlstudio.core.training import TrainingConfig
        from dlstudio.train.insight import InsightTap
        from dlstudio.train.rundir import RunDir
        from dlstudio.train.trainer import Trainer

        self.send.training = True
        crashed = False
        try:
            self.tap = InsightTap(self.send, interval=job.probe_interval)
            self.tap.details = job.details
            graph = graph_from_dict(parse_json(job.graph_json, "the run's graph"), "the run's graph")
            self.trainer = Trainer(graph, TrainingConfig.model_validate(job.config),
                                   [self.send, self.tap], run_dir=RunDir(job.run_dir) if job.run_dir else None,
                                   resume=job.resume, base_dir=Path(job.base_dir) if job.base_dir else None,
                                   max_steps=job.max_steps)
            self.tap.attach(self.trainer)
            self.trainer.fit()
            if self.tap.capture is not None:
                self.tap.probe(self.trainer.state.epoch, self.trainer.state.step)
        except Exception:  # noqa: BLE001  (reported as Failed by the trainer; the worker lives on)
            crashed = True
            traceback.print_exc(file=sys.stderr)
        finally:
            self.send.training = False
            self.send(RunEnded(crashed))


def worker_main(commands: Connection, events: Any) -> None:
    """The worker process's entry point. Told to quit, it ends at once: every file it writes is
    closed by then, while a normal interpreter exit with torch loaded spends seconds tearing
    modules down (2 to 3 s on a busy machine, and the app's quit waited for it)."""
    _Worker(commands, events).serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@dataclass(eq=False)
class WorkerHandle:
    """The UI's end of a worker: its process, command pipe and event queue."""

    process: Any
    commands: Connection
    events: Any

    def send(self, command: Command) -> bool:
        try:
            self.commands.send(command)
            return True
        except (OSError, ValueError):
            return False

    def poll(self, limit: int = 10_000) -> list[Any]:
        """Events waiting now (never blocks)."""
        found: list[Any] = []
        for _ in range(limit):
            try:
                found += self.events.get_nowait()  # the worker sends lists of events
            except queue.Empty:
                break
        return found

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Ask the worker to quit; kill it if it does not within ``timeout`` seconds."""
        self.send(Quit())
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.commands.close()


_OPEN_WORKERS: weakref.WeakSet[WorkerHandle] = weakref.WeakSet()


@atexit.register
def _close_open_workers() -> None:
    """Close the workers still open when this interpreter ends: they are not daemons (a daemon
    may not start DataLoader workers), and multiprocessing would otherwise wait for them."""
    for handle in list(_OPEN_WORKERS):
        handle.close(timeout=1.0)


def start_worker() -> WorkerHandle:
    """A fresh worker process (spawned: it shares nothing with this one)."""
    context = mp.get_context("spawn")
    ours, theirs = context.Pipe()
    events = context.Queue()
    # Not a daemon, so that it may start DataLoader workers; it ends when its command pipe closes.
    process = context.Process(target=worker_main, args=(theirs, events), name="dlstudio-trainer")
    process.start()
    theirs.close()
    handle = WorkerHandle(process, ours, events)
    _OPEN_WORKERS.add(handle)
    return handle
