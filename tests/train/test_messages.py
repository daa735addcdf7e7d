"""The messages between trainer, worker and UI: callback hooks, enums, commands, named losses."""

from __future__ import annotations

import io
import pickle
import typing

import pytest
from rich.console import Console

from dlstudio.train.callbacks import HOOKS, Callback, Recorder
from dlstudio.train.console import RichProgress
from dlstudio.train.errors import ConfigError, Diverged
from dlstudio.train.events import (
    ActivationSample,
    CheckpointSaved,
    Command,
    EpochEnd,
    EpochSample,
    Event,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    Job,
    LearningRate,
    RunStarted,
    SessionState,
    SetDetails,
    StartRun,
    StepEnd,
    Throughput,
    event_to_json,
    is_loss,
    loss_parts,
)

ONE_OF_EACH: list[Event] = [
    RunStarted(None, "cpu", 2, 0, 4, 40, 10, 100),
    StepEnd(1, 1, 1, 4, 0.5, 0.1),
    LearningRate(1, 0, (0.1,)),
    Throughput(1, 4, 100.0, 10.0),
    EpochEnd(1, 4, {"train_loss": 0.5}, 1.0),
    ActivationSample(4, "fc1", (2, 3), 0.0, 1.0, -1.0, 1.0, 0.0, (1, 2)),
    EpochSample(1, 4, "samples/epoch-001.txt", text="to be"),
    CheckpointSaved(1, 4, "run/checkpoints/epoch-1"),
    Finished("completed", 2, 8, {}, 2.0),
    Failed("diverged", "the loss became nan"),
]


def test_every_event_type_has_its_own_hook_and_each_hook_hears_only_its_event() -> None:
    assert set(HOOKS) == set(typing.get_args(Event))
    heard: list[tuple[str, type]] = []

    def noting(name: str):  # an override that notes which hook heard which event
        return lambda self, event: heard.append((name, type(event)))

    overrides = {hook.__name__: noting(hook.__name__) for hook in HOOKS.values()}
    listener = type("Listener", (Callback,), overrides)()
    for event in ONE_OF_EACH:
        listener(event)
    assert heard == [(HOOKS[type(e)].__name__, type(e)) for e in ONE_OF_EACH]
    assert len({name for name, _ in heard}) == len(ONE_OF_EACH)


def test_a_subclass_hears_what_it_overrides_and_nothing_else() -> None:
    class Steps(Callback):
        def __init__(self) -> None:
            self.losses: list[float] = []

        def on_step_end(self, event: StepEnd) -> None:
            self.losses.append(event.loss)

    steps = Steps()
    for event in ONE_OF_EACH:
        steps(event)
    Callback()(ONE_OF_EACH[0])  # the base class does nothing for any event
    assert steps.losses == [0.5]


def test_a_misspelt_hook_is_an_error_naming_the_typo_and_the_nearest_hook() -> None:
    with pytest.raises(TypeError, match=r"Late\.on_epoch_ended is not a callback hook; did you mean on_epoch_end\?"):
        class Late(Callback):
            def on_epoch_ended(self, event: EpochEnd) -> None:
                pass

    with pytest.raises(TypeError, match="did you mean on_step_end"):
        type("Typo", (Recorder,), {"on_stepend": lambda self, event: None})


def test_finish_reasons_and_failure_kinds_are_enums_and_json_lines_are_unchanged() -> None:
    finished = Finished("early_stopping", 3, 30, {"val_loss": 0.25}, 1.5, "runs/a")
    assert finished.reason is FinishReason.EARLY_STOPPING
    assert event_to_json(finished) == ('{"event":"finished","reason":"early_stopping","epoch":3,"step":30,'
                                       '"metrics":{"val_loss":0.25},"seconds":1.5,"run_dir":"runs/a"}')
    failed = Failed(Diverged.kind, "the loss became nan", "lower the learning rate", 2, 7)
    assert failed.kind is FailureKind.DIVERGED and ConfigError.kind is FailureKind.CONFIG
    assert event_to_json(failed) == ('{"event":"failed","kind":"diverged","message":"the loss became nan",'
                                     '"advice":"lower the learning rate","epoch":2,"step":7}')
    assert pickle.loads(pickle.dumps(failed)) == failed  # as it crosses from the worker process
    with pytest.raises(ValueError, match="completd"):
        Finished("completd", 1, 1, {}, 0.0)


def test_commands_cross_a_pipe_as_themselves() -> None:
    job = Job(graph_json="{}", config={"epochs": 1}, details=("fc1",))
    commands: list[Command] = [StartRun(job), SetDetails(("act",))]
    assert [pickle.loads(pickle.dumps(c)) for c in commands] == commands


def test_session_states_say_what_applies() -> None:
    assert [s for s in SessionState if s.active] == ["running", "paused", "stopping"]
    assert [s for s in SessionState if s.controllable] == ["running", "paused"]
    assert [s for s in SessionState if s.ended] == ["finished", "stopped", "failed"]


def test_step_losses_default_to_none_named_and_keep_positional_construction() -> None:
    step = StepEnd(1, 2, 2, 4, 0.75, 0.01)
    assert step.losses == {} and step.lr == 0.01
    named = StepEnd(1, 2, 2, 4, 0.75, 0.01, {"loss/total": 0.75, "loss/generator": 0.5, "loss/critic": 0.25})
    assert loss_parts(named.losses) == {"generator": 0.5, "critic": 0.25}
    assert loss_parts({"loss/total": 0.75}) == {} and loss_parts({}) == {}
    assert [k for k in ("train_loss", "val_loss/generator", "train_loss/critic", "val_accuracy", "val_lossy")
            if is_loss(k)] == ["train_loss", "val_loss/generator", "train_loss/critic"]


def _console_run(steps: list[StepEnd], epochs: list[EpochEnd]) -> tuple[str, RichProgress]:
    out = io.StringIO()
    progress = RichProgress(Console(file=out, width=200, force_terminal=False))
    progress(RunStarted(None, "cpu", len(epochs), 0, len(steps), 40, 10, 100))
    for event in steps:
        progress(event)
    loss = progress.progress.tasks[0].fields["loss"]
    for event in epochs:
        progress(event)
    progress(Finished("completed", len(epochs), len(steps), epochs[-1].metrics, 1.0))
    return loss + "\n" + out.getvalue(), progress


def test_the_console_shows_named_losses_when_there_are_several() -> None:
    losses = {"loss/total": 0.9, "loss/generator": 0.7, "loss/critic": 0.2}
    epochs = [EpochEnd(1, 1, {"train_loss": 0.9, "train_loss/generator": 0.7, "val_loss": 1.0}, 1.0),
              EpochEnd(2, 2, {"train_loss": 0.8, "train_loss/generator": 0.9, "val_loss": 0.9}, 1.0)]
    shown, _ = _console_run([StepEnd(1, 1, 1, 1, 0.9, 0.1, losses)], epochs)
    assert shown.splitlines()[0] == "0.9000 (generator 0.7000, critic 0.2000)"
    assert "train_loss/generator 0.9000" in shown  # the epoch line
    best = next(line for line in shown.splitlines() if "train_loss/generator" in line and "(1)" in line)
    assert "0.7000 (1)" in best  # a named loss's best is its lowest, as for any loss


def test_the_console_shows_one_loss_as_before() -> None:
    shown, _ = _console_run([StepEnd(1, 1, 1, 1, 0.9, 0.1, {"loss/total": 0.9})],
                            [EpochEnd(1, 1, {"train_loss": 0.9}, 1.0)])
    assert shown.splitlines()[0] == "0.9000"
