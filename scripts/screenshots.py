"""Render the editor with example graphs to PNG files for the README.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--out docs/screenshots]

Each shot is a fresh main window (temporary settings, no recovery prompts) in the light or
dark theme, showing an example graph with one node selected, or as it first opens.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from dlstudio.ui import theme  # noqa: E402
from dlstudio.ui.app import create_application  # noqa: E402
from dlstudio.ui.files import RecoveryStore  # noqa: E402


@dataclass(frozen=True)
class Shot:
    name: str
    graph: str
    select: str | None
    dark: bool
    tab: str = "inspector"  # or "code"
    edits: tuple[tuple[str, str, object], ...] = ()  # (node, parameter, value) set before the shot
    size: tuple[int, int] = (1600, 1000)


SHOTS = (
    Shot("editor-light", "cnn_digits.json", "fc1", dark=False),
    Shot("editor-dark", "resnet18.json", "layer2_0_conv1", dark=True),
    Shot("code-light", "cnn_digits.json", "conv2", dark=False, tab="code"),
    Shot("problems-dark", "cnn_digits.json", "fc1", dark=True, edits=(("fc1", "in_features", 512),)),
    Shot("opened-light", "resnet18.json", None, dark=False, size=(1400, 900)),
)


def settle(app: QApplication, seconds: float = 0.6) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def render(app: QApplication, shot: Shot, folder: Path, scratch: Path) -> Path | None:
    from dlstudio.ui.main_window import MainWindow

    graph = ROOT / "graphs" / shot.graph
    if not graph.is_file():
        print(f"skip {shot.name}: no {graph}")
        return None
    theme.apply_theme(app, dark=shot.dark)
    settings = QSettings(str(scratch / f"{shot.name}.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, recovery=RecoveryStore(scratch / "recovery"))
    window.resize(*shot.size)
    window.show()
    window.files.open_path(graph, ask=False)
    for node, name, value in shot.edits:
        window.document.set_param(node, name, value)
    settle(app, 0.3)
    if shot.select:
        window.view.fit_all()
        window.view.select_node(shot.select, center=False)
        if window.view.zoom() < 0.6:  # a long graph: show its nodes readable, around the selection
            window.view.set_zoom(0.8)
            window.view.select_node(shot.select, center=True)
    if shot.tab == "code":
        window.code_dock.raise_()
    settle(app, 1.0)
    if shot.select:
        window.code.highlight([shot.select])
    settle(app, 0.3)
    path = folder / f"{shot.name}.png"
    window.grab().save(str(path))
    window.document.undo_stack.setClean()
    window.close()
    window.deleteLater()
    settle(app, 0.1)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--only", nargs="*", help="names of the shots to take")
    args = parser.parse_args()
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    app = create_application([sys.argv[0]])
    with tempfile.TemporaryDirectory() as scratch:
        for shot in SHOTS:
            if args.only and shot.name not in args.only:
                continue
            path = render(app, shot, folder, Path(scratch))
            if path is not None:
                print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
