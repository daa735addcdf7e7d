"""Helper ``nn.Module`` classes of one layer family each (``<family>.py``), registered with
:func:`dlstudio.core.modules.support` like those in :mod:`dlstudio.core.modules` itself. The
same rules hold: self-contained classes using only ``torch``, ``nn``, ``F`` and ``math``,
formatted as ``ruff format`` writes them (the exporter copies them).

Importing this package imports every module here, so :data:`SUPPORT` then names every helper:
the compiler and the exporter read it from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from dlstudio.core.modules import REGISTERED

#: Every helper class (and function) by name, for the compiler's namespace and the exporter.
SUPPORT: dict[str, Any] = REGISTERED


def _load_family_helpers() -> None:
    """Import :mod:`dlstudio.core.helpers`' modules: a family's helpers live beside its layers'."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")


_load_family_helpers()

