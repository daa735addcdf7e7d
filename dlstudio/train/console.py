"""What ``dlstudio run`` shows: a rich progress bar and a final table, or JSON lines."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from dlstudio.core.summary import frozen_note
from dlstudio.train.callbacks import Callback
from dlstudio.train.events import (
    EpochEnd,
    Event,
    Failed,
    Finished,
    RunStarted,
    StepEnd,
    event_to_json,
    is_loss,
    loss_parts,
)


class JsonLines:
    """Prints every event as one JSON object per line (``--json``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        self.stream.write(event_to_json(event) + "\n")
        self.stream.flush()


def _format(name: str, value: float) -> str:
    if name.endswith(("accuracy", "f1")):
        return f"{100 * value:.2f}%"
    return f"{value:.4f}"


def _losses(event: StepEnd) -> str:
    """The step's loss, and its named parts when there are several: ``0.9000 (generator 0.7000, ...)``."""
    parts = loss_parts(event.losses)
    named = ", ".join(f"{name} {value:.4f}" for name, value in parts.items())
    return f"{event.loss:.4f} ({named})" if parts else f"{event.loss:.4f}"


class RichProgress(Callback):
    """A progress bar over the whole run (loss, main metric, ETA) and a table at the end."""

    def __init__(self, console: Any | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.progress: Any = None
        self.task: Any = None
        self.epochs = 0
        self.history: list[tuple[int, dict[str, float]]] = []

    def on_run_started(self, event: RunStarted) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.epochs = event.epochs
        where = f" in {event.run_dir}" if event.run_dir else ""
        trainable = event.parameters if event.trainable is None else event.trainable
        frozen = frozen_note(event.parameters, trainable)
        self.console.print(f"training on {event.device}: {event.train_samples} samples, "
                           f"{event.val_samples} for validation, {event.parameters:,} parameters{frozen}{where}")
        if event.data_workers:
            self.console.print(f"decoding images in {event.data_workers} worker processes")
        if event.init_weights:
            self.console.print(f"pretrained: {event.init_weights}")
        for note in event.notes:
            self.console.print(f"note: {note}")
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[metric]}"),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=True,
        )
        total = event.epochs * event.steps_per_epoch
        done = event.start_epoch * event.steps_per_epoch
        self.task = self.progress.add_task("train", total=total, completed=done, epoch=event.start_epoch + 1,
                                           epochs=event.epochs, loss="-", metric="")
        self.progress.start()

    def on_step_end(self, event: StepEnd) -> None:
        self.progress.update(self.task, advance=1, epoch=event.epoch, loss=_losses(event))

    def on_epoch_end(self, event: EpochEnd) -> None:
        self.history.append((event.epoch, event.metrics))
        shown = "  ".join(f"{k} {_format(k, v)}" for k, v in event.metrics.items())
        self.progress.console.print(f"epoch {event.epoch}/{self.epochs}  {shown}  ({event.seconds:.1f}s)")
        metric = next((k for k in event.metrics if k.startswith("val_") and not is_loss(k)), "val_loss")
        if metric in event.metrics:
            self.progress.update(self.task, metric=f"{metric} {_format(metric, event.metrics[metric])}")

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def on_finished(self, event: Finished) -> None:
        from rich.table import Table

        self._stop()
        self.console.print(f"{event.reason.replace('_', ' ')} after {event.epoch} epochs "
                           f"({event.step} steps) in {event.seconds:.1f}s")
        if event.metrics:
            table = Table()
            for column, justify in (("metric", "left"), ("final", "right"), ("best (epoch)", "right")):
                table.add_column(column, justify=justify)  # type: ignore[arg-type]
            for name, value in event.metrics.items():
                table.add_row(name, _format(name, value), self._best(name))
            self.console.print(table)
        if event.run_dir:
            self.console.print(f"run folder: {event.run_dir}")

    def _best(self, name: str) -> str:
        """Best value over this session's epochs: the lowest loss or error, the highest score."""
        values = [(m[name], epoch) for epoch, m in self.history if name in m]
        if not values:
            return ""
        pick = min if is_loss(name) or name.endswith(("loss", "mse", "mae")) else max
        value, epoch = pick(values, key=lambda pair: pair[0])
        return f"{_format(name, value)} ({epoch})"

    def on_failed(self, event: Failed) -> None:
        self._stop()
