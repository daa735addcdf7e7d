"""Shared test set-up: Qt runs offscreen, and paths to the example graphs."""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each of pytest -n's workers computes on one thread: on a 2-core machine two workers with
    # two threads each spend most of their time fighting over the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


def pytest_sessionfinish(session, exitstatus) -> None:
    """Empty the offscreen clipboard before Qt is torn down (see ``release_clipboard``): a test
    that copied nodes otherwise made the whole run exit with SIGSEGV after every test passed."""
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is not None:
        from dlstudio.ui.app import release_clipboard

        release_clipboard()
