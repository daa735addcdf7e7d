"""The Curves panel fed through the training bridge: one curve per named loss, and a legend naming
them, for a run with several losses; exactly the usual curves for a run with one."""

from __future__ import annotations

import numpy as np
import pytest

from dlstudio.train.events import EpochEnd, SessionMode, StepEnd
from dlstudio.ui.training.bridge import TrainingSession
from dlstudio.ui.training.plots import PlotsPanel
from tests.train.helpers import graph_of, mlp

KEY = "runs/live"


@pytest.fixture
def fed(qtbot):
    """A Curves panel listening to a training session, as the training workspace wires them."""
    plots = PlotsPanel()
    qtbot.addWidget(plots)
    session = TrainingSession(graph_of(mlp()), mode=SessionMode.THREAD)
    plots.add_run(KEY, "live", live=True)
    session.steps.connect(lambda steps: plots.add_steps(KEY, steps))
    session.epoch_ended.connect(lambda event: plots.add_epoch(KEY, event.epoch, event.metrics))

    def feed(*events):
        for event in events:
            session.queue(event)  # what the trainer's callbacks do, on its thread
        session.deliver()
        plots.redraw()
        return plots.runs[KEY]

    yield plots, feed
    session.close()


def gan_steps(batches: int = 4) -> list[StepEnd]:
    steps = []
    for b in range(1, batches + 1):
        generator, critic = 1.0 / b, 0.5 + 0.1 * b
        steps.append(StepEnd(1, b, b, batches, generator + critic, 0.01,
                             {"loss/total": generator + critic, "loss/generator": generator, "loss/critic": critic}))
    return steps


def legend_labels(plots: PlotsPanel) -> list[str]:
    legend = plots.loss.legend
    return [] if legend is None else [label.text for _, label in legend.items]


def curve(series, name: str) -> tuple[list[float], list[float]]:
    x, y = series.items[name].getOriginalDataset()  # as given (getData is after the log scale)
    return list(x), list(y)


def test_a_run_with_several_losses_shows_one_curve_per_named_loss_with_a_legend(fed) -> None:
    plots, feed = fed
    steps = gan_steps()
    series = feed(*steps, EpochEnd(1, 4, {"train_loss": 1.6, "train_loss/generator": 0.5, "train_loss/critic": 1.1,
                                          "val_loss": 1.5, "val_loss/generator": 0.4, "val_loss/critic": 1.1,
                                          "val_accuracy": 0.5}, 1.0))
    x = [s.epoch - 1 + s.batch / s.batches for s in steps]
    assert curve(series, "train_loss_step") == (x, [s.loss for s in steps])  # the total, as ever
    gen_x, gen_y = curve(series, "train_loss_smoothed/generator")
    critic_x, critic_y = curve(series, "train_loss_smoothed/critic")
    assert gen_x == critic_x == x
    assert gen_y[0] == pytest.approx(1.0) and gen_y[-1] < gen_y[0]  # smoothed 1, 1/2, 1/3, 1/4: falling
    assert critic_y[0] == pytest.approx(0.6) and critic_y[-1] > critic_y[0]
    assert curve(series, "val_loss/generator") == ([1.0], [0.4])
    assert curve(series, "val_loss/critic") == ([1.0], [1.1])
    assert legend_labels(plots) == ["total", "generator", "critic"]
    pens = {name: series.items[name].opts["pen"].color().name() for name in
            ("train_loss_smoothed", "train_loss_smoothed/generator", "train_loss_smoothed/critic")}
    assert pens["train_loss_smoothed"] == series.colour.name() and len(set(pens.values())) == 3
    assert series.items["val_loss/generator"].opts["pen"].color().name() == pens["train_loss_smoothed/generator"]
    assert plots.metrics.listDataItems() == [series.items["val_accuracy"]]  # named losses are no metric
    assert ("live", "train_loss_step/generator", x[1], 0.5) in plots.rows()


def test_a_run_with_one_loss_shows_exactly_the_usual_curves(fed) -> None:
    plots, feed = fed
    steps = [StepEnd(1, b, b, 4, 1.0 / b, 0.01, {"loss/total": 1.0 / b}) for b in range(1, 5)]
    series = feed(*steps, EpochEnd(1, 4, {"train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.7}, 1.0))
    loss_items = {name for name, item in series.items.items() if item in plots.loss.listDataItems()}
    assert loss_items == {"train_loss_step", "train_loss_smoothed", "val_loss"}
    assert curve(series, "train_loss_step") == ([0.25, 0.5, 0.75, 1.0], [1.0, 0.5, 1 / 3, 0.25])
    assert plots.loss.legend is None and series.parts == {}
    assert {item.opts["pen"].color().name() for item in plots.loss.listDataItems()} == {series.colour.name()}


def test_a_past_run_shows_its_named_epoch_losses_and_removing_it_empties_the_legend(qtbot) -> None:
    plots = PlotsPanel()
    qtbot.addWidget(plots)
    records = [{"epoch": e, "train_loss": 2.0 / e, "train_loss/generator": 1.0 / e, "val_loss": 2.5 / e,
                "val_loss/generator": 1.5 / e} for e in (1, 2, 3)]
    series = plots.load_history("runs/old", "old", records)
    plots.redraw()
    x, y = curve(series, "train_loss/generator")
    assert x == [1.0, 2.0, 3.0] and np.allclose(y, [1.0, 0.5, 1 / 3])
    assert curve(series, "val_loss/generator")[1] == pytest.approx([1.5, 0.75, 0.5])
    assert legend_labels(plots) == ["total", "generator"]
    plots.remove_run("runs/old")
    assert legend_labels(plots) == [] and plots.loss.listDataItems() == []
