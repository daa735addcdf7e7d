"""Render the training view to PNG files for the README: a real run of an example graph.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots_training.py [--out docs/screenshots]

Each shot is a fresh main window (temporary settings and runs folder) that trains the CNN
example from the window, with a node selected so the Inside view and the canvas indicators
show what the network does.
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
    select: str
    dark: bool
    tab: str = "Activations"  # the Inside view's tab
    dock: str = "train_dock"  # the right-hand dock raised
    runs: tuple[float, ...] = (0.002,)  # learning rates of the runs to overlay (last one selected)
    epochs: int = 8
    size: tuple[int, int] = (1680, 1050)


SHOTS = (
    Shot("training-light", "conv2", dark=False),
    Shot("training-predictions-dark", "conv1", dark=True, tab="Predictions", dock="runs_dock",
         runs=(0.0005, 0.002)),
    Shot("training-confusion-light", "fc1", dark=False, tab="Confusion", runs=(0.002,), epochs=4),
)


def settle(app: QApplication, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def train(app: QApplication, window, shot: Shot, lr: float) -> None:  # noqa: ANN001
    data = window.document.graph.training.model_dump(mode="json", exclude_none=True)
    data["epochs"] = shot.epochs
    data["optimizer"]["params"]["lr"] = lr
    window.document.set_graph_field("training", data)
    window.training.start()
    while window.training.running:
        settle(app, 0.1)
    settle(app, 1.2)


def render(app: QApplication, shot: Shot, folder: Path, scratch: Path) -> Path:
    from dlstudio.ui.main_window import MainWindow

    theme.apply_theme(app, dark=shot.dark)
    settings = QSettings(str(scratch / f"{shot.name}.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, recovery=RecoveryStore(scratch / "recovery"))
    window.training.runs_root_override = scratch / f"{shot.name}-runs"
    window.training.mode = "thread"
    window.resize(*shot.size)
    window.show()
    window.files.open_path(ROOT / "graphs" / "cnn_digits.json", ask=False)
    settle(app, 0.3)
    window.view.select_node(shot.select, center=False)
    for lr in shot.runs:
        train(app, window, shot, lr)
    window.training.refresh_runs()
    for run in list(window.training.runs.runs)[1:]:
        window.training.show_run_curves(run, True)
    window.training.runs.select(window.training.last_run)
    getattr(window.training, shot.dock).raise_()
    insight = window.training.insight
    insight.setCurrentIndex([insight.tabText(i) for i in range(insight.count())].index(shot.tab))
    window.view.set_zoom(0.85)
    window.view.select_node(shot.select, center=True)
    settle(app, 1.5)
    path = folder / f"{shot.name}.png"
    window.grab().save(str(path))
    window.document.undo_stack.setClean()
    window.close()
    window.deleteLater()
    settle(app, 0.2)
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
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
