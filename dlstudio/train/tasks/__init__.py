"""Training tasks: what one training step, a validation pass and a sample are.

Each module in this package declares one task: a :class:`~dlstudio.train.tasks.base.Task`
subclass registered under the name a graph file's ``training.task`` uses. Importing the
package imports every task module, so adding a task touches one file (plus its name in
:data:`dlstudio.core.training.TASKS`, which lets ``dlstudio validate`` check it without torch).
"""

from __future__ import annotations

import importlib
import pkgutil

from dlstudio.train.tasks.base import TASKS, Task, task_class


def _load_tasks() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_tasks()

__all__ = ["TASKS", "Task", "task_class"]
