"""The app exits cleanly after a copy on the offscreen platform (headless use: screenshots,
tests), whose clipboard crashed the process at exit while it held the copied nodes."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
from PySide6.QtCore import QMimeData, QTimer
from dlstudio.ui.app import create_application
app = create_application()
data = QMimeData()
data.setText("copied nodes")
app.clipboard().setMimeData(data)
QTimer.singleShot(0, app.quit)
app.exec()
"""


def test_quitting_after_a_copy_exits_with_0() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
