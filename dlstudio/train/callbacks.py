"""Callbacks: how anything outside the loop (console, GUI bridge, metric log) hears events.

A callback is any callable taking one event. :class:`Callback` declares one hook per event
(``on_step_end``, ``on_epoch_end``, ...), each doing nothing, and dispatches by the event's
type through :data:`HOOKS`, so a subclass overrides only what it needs. A subclass method
named ``on_...`` that is no hook is refused when the class is created: a misspelt hook is
an error, never a hook that silently does not fire. Callbacks run on the training thread;
a GUI bridge forwards each event as a signal and returns at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from dlstudio.train.events import (
    ActivationSample,
    CheckpointSaved,
    EpochEnd,
    EpochSample,
    Event,
    Failed,
    Finished,
    LearningRate,
    RunStarted,
    StepEnd,
    Throughput,
)

CallbackFn = Callable[[Event], None]


class Callback:
    """Base class: ``self(event)`` calls the hook for the event's type."""

    #: the hooks this class overrides, by event type (set for each subclass as it is created)
    _hooks: ClassVar[dict[type, Callable[[Any, Any], None]]] = {}

    def on_run_started(self, event: RunStarted) -> None:
        """Set-up is done; training starts."""

    def on_step_end(self, event: StepEnd) -> None:
        """An optimizer step is done."""

    def on_learning_rate(self, event: LearningRate) -> None:
        """An epoch starts with these learning rates."""

    def on_throughput(self, event: Throughput) -> None:
        """The training speed over the epoch that just ended."""

    def on_epoch_end(self, event: EpochEnd) -> None:
        """An epoch and its validation are done."""

    def on_activation_sample(self, event: ActivationSample) -> None:
        """What a node produced for the probe batch."""

    def on_epoch_sample(self, event: EpochSample) -> None:
        """The task drew a picture or a text after an epoch."""

    def on_checkpoint_saved(self, event: CheckpointSaved) -> None:
        """A checkpoint is complete on disk."""

    def on_finished(self, event: Finished) -> None:
        """The run ended without error."""

    def on_failed(self, event: Failed) -> None:
        """The run stopped on an error."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            if name.startswith("on_") and callable(value) and name not in HOOK_NAMES:
                nearest = difflib.get_close_matches(name, HOOK_NAMES, n=1, cutoff=0.0)[0]
                raise TypeError(f"{cls.__qualname__}.{name} is not a callback hook; did you mean {nearest}?")
        cls._hooks = _overridden(cls)

    def __call__(self, event: Event) -> None:
        hook = self._hooks.get(type(event))
        if hook is not None:
            hook(self, event)


#: The hook each event type calls.
HOOKS: dict[type, Callable[[Any, Any], None]] = {
    RunStarted: Callback.on_run_started, StepEnd: Callback.on_step_end,
    LearningRate: Callback.on_learning_rate, Throughput: Callback.on_throughput,
    EpochEnd: Callback.on_epoch_end, ActivationSample: Callback.on_activation_sample,
    EpochSample: Callback.on_epoch_sample,
    CheckpointSaved: Callback.on_checkpoint_saved, Finished: Callback.on_finished, Failed: Callback.on_failed,
}
HOOK_NAMES = tuple(hook.__name__ for hook in HOOKS.values())


def _overridden(cls: type[Callback]) -> dict[type, Callable[[Any, Any], None]]:
    """The hooks ``cls`` overrides, by event type (the others do nothing and need no call)."""
    found = {kind: getattr(cls, hook.__name__) for kind, hook in HOOKS.items()}
    return {kind: method for kind, method in found.items() if method is not HOOKS[kind]}


class Dispatcher:
    """Delivers each event to every callback in order."""

    def __init__(self, callbacks: Iterable[CallbackFn] = ()) -> None:
        self.callbacks: list[CallbackFn] = list(callbacks)

    def add(self, callback: CallbackFn) -> None:
        self.callbacks.append(callback)

    def __call__(self, event: Event) -> None:
        for callback in self.callbacks:
            callback(event)


class Recorder(Callback):
    """Keeps every event in a list (for tests and for the GUI's history)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]
