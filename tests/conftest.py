"""Shared test set-up: Qt runs offscreen, and paths to the example graphs."""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
