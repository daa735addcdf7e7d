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
