"""The Runs panel: this graph's runs from its runs folder, app and command line alike.

Tick a run to overlay its curves (read from its ``metrics.jsonl``) on the plots; select one to
resume it from its last checkpoint, export its trained model, or draw samples from it (Sample is
off, its tooltip saying why, for a run whose task draws nothing or that has no weights yet).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlstudio.train.events import is_loss
from dlstudio.ui.panels import plain_label
from dlstudio.ui.theme import plain_tooltip

if TYPE_CHECKING:  # dlstudio.train imports torch, which the editor loads only after its first paint
    from dlstudio.train.runlist import RunInfo

EXPORT_KINDS = (("weights", "Weights (safetensors)…"), ("python", "Python code with weights…"),
                ("onnx", "ONNX (checked with onnxruntime)…"), ("torchscript", "TorchScript…"))
COLUMNS = ("Run", "Epochs", "Val loss", "Metric", "Status")
PATH_ROLE = Qt.ItemDataRole.UserRole


class RunsPanel(QWidget):
    curves_toggled = Signal(object, bool)  # run folder, shown
    resume_requested = Signal(object, int)  # run folder, epochs in total
    export_requested = Signal(object, str)  # run folder, kind
    sample_requested = Signal(object)  # run folder
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runs_panel")
        self.runs: dict[Path, RunInfo] = {}
        self.training: Path | None = None  # the run training now, if any
        #: why a run's task cannot be sampled (None: it can); the workspace sets it, since it
        #: asks the task classes, which import torch
        self.task_refusal: Callable[[str], str | None] = lambda _task: None
        self._busy = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.addLayout(self._toolbar())
        self.folder = plain_label("", muted=True, small=True)
        layout.addWidget(self.folder)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.tree, 1)
        self._selection_changed()

    def _toolbar(self) -> QVBoxLayout:
        """Two rows, so the dock stays narrow: refresh, export, sample, open; then resume."""
        resume = QHBoxLayout()
        self.resume_button = QToolButton()
        self.resume_button.setText("Resume")
        self.resume_button.setToolTip(plain_tooltip("Continue the selected run from its last checkpoint"))
        self.resume_button.clicked.connect(self._resume)
        resume.addWidget(self.resume_button)
        resume.addWidget(QLabel("up to epoch"))
        self.resume_epochs = QSpinBox(minimum=1, maximum=100_000)
        resume.addWidget(self.resume_epochs)
        resume.addStretch(1)
        row = QHBoxLayout()
        refresh = QToolButton()
        refresh.setText("Refresh")
        refresh.clicked.connect(self.refresh_requested.emit)
        row.addWidget(refresh)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for kind, text in EXPORT_KINDS:
            menu.addAction(text, lambda k=kind: self._export(k))
        self.export_button.setMenu(menu)
        row.addWidget(self.export_button)
        self.sample_button = QToolButton()
        self.sample_button.setText("Sample")
        self.sample_button.setObjectName("sample_button")
        self.sample_button.clicked.connect(self._sample)
        row.addWidget(self.sample_button)
        self.open_button = QToolButton()
        self.open_button.setText("Open folder")
        self.open_button.clicked.connect(self._open_folder)
        row.addWidget(self.open_button)
        row.addStretch(1)
        rows = QVBoxLayout()
        rows.addLayout(row)
        rows.addLayout(resume)
        return rows

    def show_runs(self, runs: list[RunInfo], shown: set[Path], folder: Path | None = None,
                  colours: dict[Path, QColor] | None = None) -> None:
        """List ``runs``; those in ``shown`` are ticked, in their curves' ``colours``."""
        selected = self.selected_path()
        self.folder.setText(f"Runs in {folder}" if folder else "")
        self.runs = {r.path: r for r in runs}
        self.tree.blockSignals(True)
        self.tree.clear()
        for run in runs:
            item = QTreeWidgetItem([run_label(run.path), f"{run.epochs_done}/{run.epochs_total}",
                                    _metric(run.metrics.get("val_loss")), _main_metric(run), _status(run)])
            item.setData(0, PATH_ROLE, str(run.path))
            item.setCheckState(0, Qt.CheckState.Checked if run.path in shown else Qt.CheckState.Unchecked)
            if colours and run.path in colours:
                item.setData(0, Qt.ItemDataRole.DecorationRole, colours[run.path])
            item.setToolTip(0, plain_tooltip(f"{run.path}\nstarted {run.created}"))
            self.tree.addTopLevelItem(item)
            if run.path == selected:
                item.setSelected(True)
        self.tree.blockSignals(False)
        self._selection_changed()

    def selected_path(self) -> Path | None:
        items = self.tree.selectedItems()
        return Path(items[0].data(0, PATH_ROLE)) if items else None

    def select(self, path: Path) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setSelected(Path(item.data(0, PATH_ROLE)) == path)

    def set_busy(self, busy: bool, training: Path | None = None) -> None:
        """While a run (``training``) trains, nothing else may resume, and it is not sampled."""
        self._busy = busy
        self.training = training if busy else None
        self._selection_changed()

    def _selection_changed(self) -> None:
        run = self.runs.get(self.selected_path()) if self.selected_path() else None
        busy = self._busy
        self.resume_button.setEnabled(run is not None and run.resumable and not busy)
        self.export_button.setEnabled(run is not None and (run.complete or run.resumable))
        self.open_button.setEnabled(run is not None)
        refusal = self.sample_refusal(run)
        self.sample_button.setEnabled(refusal is None)
        self.sample_button.setToolTip(plain_tooltip(
            "Draw samples from the selected run (a GAN's images, a language model's text)" if refusal is None
            else f"Cannot sample: {refusal}"))
        if run is not None:
            self.resume_epochs.setValue(max(run.epochs_total, run.epochs_done + 1))

    def sample_refusal(self, run: RunInfo | None) -> str | None:
        """Why Sample is off for ``run``, or None when it can draw from it."""
        if run is None:
            return "select a run first"
        if run.path == self.training:
            return "this run is still training; what it draws after each epoch shows in Samples"
        refusal = self.task_refusal(run.task)
        if refusal is not None:
            return refusal
        return None if run.complete or run.resumable else "this run has no weights (no checkpoint was saved)"

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self.curves_toggled.emit(Path(item.data(0, PATH_ROLE)), item.checkState(0) == Qt.CheckState.Checked)

    def _resume(self) -> None:
        path = self.selected_path()
        if path is not None:
            self.resume_requested.emit(path, self.resume_epochs.value())

    def _export(self, kind: str) -> None:
        path = self.selected_path()
        if path is not None:
            self.export_requested.emit(path, kind)

    def _sample(self) -> None:
        path = self.selected_path()
        if path is not None:
            self.sample_requested.emit(path)

    def _open_folder(self) -> None:
        path = self.selected_path()
        if path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def run_label(path: Path) -> str:
    """A run's short name, its start time (``11-21 15:01:02``), as in the curves' legend."""
    parts = path.name.rsplit("-", 2)
    try:
        return dt.datetime.strptime("-".join(parts[-2:]), "%Y%m%d-%H%M%S").strftime("%m-%d %H:%M:%S")
    except ValueError:
        return path.name[-24:]


def _metric(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _main_metric(run: RunInfo) -> str:
    name = next((k for k in run.metrics if k.startswith("val_") and not is_loss(k)), None)
    if name is None:
        return ""
    value = run.metrics[name]
    shown = f"{value:.1%}" if name.endswith(("accuracy", "f1")) else f"{value:.4g}"
    return f"{name.removeprefix('val_')} {shown}"


def _status(run: RunInfo) -> str:
    return run.status if run.same_network else f"{run.status} (network since changed)"
