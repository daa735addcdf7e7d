"""The loss plot's log axis at the start of training: labels that can be read, none overlapping."""

from __future__ import annotations

import math

import pytest
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QApplication

from dlstudio.train.events import StepEnd
from dlstudio.ui.training.plots import PlotsPanel


def labels_on_the_loss_axis(qtbot, losses: list[float]) -> list[tuple[float, str, float]]:
    """(pixels from the axis' top, text, loss there) of each label the loss axis draws."""
    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 420)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_epochs(10)
    panel.add_run("run", "run", live=True)
    panel.add_steps("run", [StepEnd(1, i + 1, i + 1, 100, loss, 1e-3) for i, loss in enumerate(losses)])
    panel.redraw()
    axis = panel.loss.getAxis("left")
    low, high = axis.range
    size = axis.geometry().height()
    values = [v for _, level in axis.tickValues(low, high, size) for v in level]
    texts = axis.tickStrings(values, 1.0, 1.0)
    return [((high - v) / (high - low) * size, t, 10**v) for v, t in zip(values, texts, strict=True) if t]


@pytest.mark.parametrize("losses", [
    [0.3 + 2.0 * math.exp(-i / 10) for i in range(40)],  # 2.3 down to 0.3: within one decade and a bit
    [2.30 - 0.002 * i for i in range(5)],  # the first steps: inside one 1..9 step of the decade
])
def test_loss_labels_do_not_overlap_and_there_are_some(qtbot, losses) -> None:
    labels = labels_on_the_loss_axis(qtbot, losses)
    assert len(labels) >= 2, labels
    height = QFontMetricsF(QApplication.font()).height()
    positions = sorted(y for y, _, _ in labels)
    assert all(b - a >= height for a, b in zip(positions, positions[1:], strict=False)), labels
    assert len({text for _, text, _ in labels}) == len(labels)  # each label says something new
    assert all(math.isclose(float(text), loss, rel_tol=0.005) for _, text, loss in labels), labels
