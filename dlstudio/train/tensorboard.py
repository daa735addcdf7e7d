"""Optional TensorBoard event files (``--tensorboard``) when the tensorboard package is present."""

from __future__ import annotations

from pathlib import Path

from dlstudio.train.callbacks import Callback
from dlstudio.train.events import EpochEnd, Finished, LearningRate, StepEnd

MISSING = "--tensorboard needs the tensorboard package (pip install tensorboard); training without it"


def tensorboard_log(folder: Path) -> TensorBoardLog | None:
    """A callback writing to ``folder``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return TensorBoardLog(SummaryWriter(log_dir=str(folder)))


class TensorBoardLog(Callback):
    def __init__(self, writer: object) -> None:
        self.writer = writer

    def on_step_end(self, event: StepEnd) -> None:
        self.writer.add_scalar("train/step_loss", event.loss, event.step)  # type: ignore[attr-defined]

    def on_learning_rate(self, event: LearningRate) -> None:
        self.writer.add_scalar("train/lr", event.lrs[0], event.step)  # type: ignore[attr-defined]

    def on_epoch_end(self, event: EpochEnd) -> None:
        for name, value in event.metrics.items():
            group, _, metric = name.partition("_")
            self.writer.add_scalar(f"{group}/{metric}", value, event.epoch)  # type: ignore[attr-defined]

    def on_finished(self, event: Finished) -> None:
        self.writer.close()  # type: ignore[attr-defined]
