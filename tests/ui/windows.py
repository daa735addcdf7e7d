"""The main window as the UI tests open it: settings and recovery store in the test's folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from dlstudio.ui.files import RecoveryStore
from dlstudio.ui.main_window import MainWindow


def open_window(qtbot, tmp_path: Path, size: tuple[int, int] | None = None) -> MainWindow:
    """A shown, exposed main window of ``size`` (default: its own)."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, recovery=RecoveryStore(tmp_path / "recovery"))
    qtbot.addWidget(win)
    if size is not None:
        win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    return win
