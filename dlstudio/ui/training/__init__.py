"""Training from the app: the Training panel, live curves, a look inside the network, runs, exports.

:func:`install_training` adds these to a main window. The engine (:mod:`dlstudio.train`) runs on
a worker thread; this package only shows what it reports and edits the graph's training section.
"""

from __future__ import annotations

from typing import Any


def install_training(window: Any) -> Any:
    """Add the training docks, the Train menu and toolbar to ``window``; returns the workspace."""
    from dlstudio.ui.training.workspace import TrainingWorkspace

    window.training = TrainingWorkspace(window)
    return window.training
