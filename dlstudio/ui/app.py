"""Starting the editor: the application, its theme, the main window, then torch in the background.

torch is never imported before the window is painted: after the first paint a daemon thread
imports it (and the compiler) so that the first compile or export later is quick.
``DLSTUDIO_STARTUP_PROBE=1`` makes the app print ``painted`` after the first paint and
quit (``benchmarks/startup.py`` times that line).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from dlstudio.ui import theme
from dlstudio.ui.first_paint import FirstPaint

APP_NAME = "DL Studio"
PROBE_ENV = "DLSTUDIO_STARTUP_PROBE"


def warm_up_engine() -> threading.Thread:
    """Import torch and the compiler on a daemon thread so the UI never waits for them."""

    def work() -> None:
        import dlstudio.core.compiler  # noqa: F401  (imports torch)

    thread = threading.Thread(target=work, name="dlstudio-warm-up", daemon=True)
    thread.start()
    return thread


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with DL Studio's names, high-DPI policy and theme."""
    theme.setup_high_dpi()
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName("dlstudio")
    theme.apply_theme(app)
    if app.platformName() == "offscreen":
        app.aboutToQuit.connect(release_clipboard)
    return app  # type: ignore[return-value]


def release_clipboard() -> None:
    """Empty the clipboard of the offscreen platform before Qt is torn down: its clipboard
    crashes the process at exit (SIGSEGV) when it still holds data a copy put there. A desktop
    clipboard is left alone (what was copied stays pasteable into another window)."""
    QApplication.clipboard().clear()


def run_app(graph_path: str | None = None) -> int:
    """Open the main window (with ``graph_path`` if given) and run until it closes."""
    app = create_application()
    from dlstudio.ui.main_window import MainWindow

    window = MainWindow()
    opened = Path(graph_path) if graph_path else None
    probe = bool(os.environ.get(PROBE_ENV))

    def after_first_paint() -> None:
        if probe:
            _report_paint(app)
            return
        warm_up_engine()
        window.files.offer_recovery(opened)

    FirstPaint(window.view.viewport(), after_first_paint)
    window.show()
    if opened is not None:  # before the first paint; an error dialog shows over the window
        window.files.open_path(opened, ask=False)
    return app.exec()


def _report_paint(app: QApplication) -> None:
    print(f"painted torch_loaded={'torch' in sys.modules}", flush=True)
    modal = app.activeModalWidget()  # e.g. the dialog of a file that would not open
    if modal is not None:
        modal.close()
        QTimer.singleShot(0, app.quit)  # once the main loop runs again
    else:
        app.quit()
