"""Callbacks: how anything outside the loop (console, GUI bridge, metric log) hears events.

A callback is any callable taking one event. :class:`Callback` dispatches to a method named
after the event (``on_step_end``, ``on_epoch_end``, ...) and ignores the rest, so a subclass
implements only what it needs. Callbacks run on the training thread; a GUI bridge forwards
each event as a signal and returns at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dlstudio.train.events import Event, event_name

CallbackFn = Callable[[Event], None]


class Callback:
    """Base class: ``self(event)`` calls ``self.on_<event name>(event)`` when defined."""

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"on_{event_name(event)}", None)
        if handler is not None:
            handler(event)


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
