"""The canvas overlay: colour every node by its export readiness for a target, or by sparsity.

The mode is chosen in View › Overlay or in the combo on the status bar; it is a view setting,
so it stays when another graph opens. Readiness comes from the analysis (a millisecond on
resnet50), so it follows every edit; marks are computed once per analysis and mode. Sparsity
reads the weights the user loaded (View › Load Weights for Overlay…: a ``.safetensors`` file
or a run folder) or else those of the current run; weights loaded for one graph are dropped
when another graph opens. A legend in the canvas's corner names the colours and counts them;
a node's tooltip and the inspector say why it is not ready and how to fix it.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from dlstudio.core.readiness import Readiness
from dlstudio.core.sparsity import scope_sparsity
from dlstudio.ui.canvas import GraphView
from dlstudio.ui.canvas.overlay import (
    Mark,
    readiness_marks,
    sparsity_colour,
    sparsity_marks,
    tinted,
)
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.panels.inspector import InspectorPanel
from dlstudio.ui.theme import plain_tooltip

#: Overlay modes: key and the name the menu and combo show.
MODES = {"none": "None", "onnx": "Export readiness: ONNX", "torchscript": "Export readiness: TorchScript",
         "int8": "Export readiness: int8", "sparsity": "Sparsity"}
THEME_CHANGES = (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)
NO_WEIGHTS = "No weights: View › Load Weights for Overlay…, or train a run"


@dataclass(frozen=True, eq=False)
class Weights:
    """A state dict and where it came from (shown in the legend and tooltips)."""

    state: Mapping[str, Any]
    path: Path

    @property
    def source(self) -> str:
        return self.path.parent.name + "/" + self.path.name if self.path.name == "model.safetensors" else self.path.name


def load_weights(path: Path) -> Weights:
    """The weights of a ``.safetensors`` file, or of a run folder (its ``model.safetensors``, else
    its newest checkpoint). Raises OSError or ValueError when there are none."""
    if path.is_dir():
        from dlstudio.train.errors import RunDirError
        from dlstudio.train.exporting import run_weights
        from dlstudio.train.rundir import RunDir

        run = RunDir(path)
        if not run.weights.exists():
            try:
                return Weights(run_weights(run), path)
            except RunDirError as error:
                raise ValueError(str(error)) from error
        path = run.weights
    try:
        from safetensors.numpy import load_file
    except ImportError:  # numpy is light; torch only where numpy lacks the dtype (bfloat16)
        from safetensors.torch import load_file
    try:
        return Weights(load_file(str(path)), path)
    except TypeError:
        from safetensors.torch import load_file as load_torch

        return Weights(load_torch(str(path)), path)


class OverlayLegend(QFrame):
    """What the overlay's colours mean, with counts, in the canvas's top right corner."""

    theme_changed = Signal()

    def __init__(self, view: GraphView) -> None:
        super().__init__(view)
        self.setObjectName("overlay_legend")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.label = QLabel(self)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        QVBoxLayout(self).addWidget(self.label)
        self.layout().setContentsMargins(10, 6, 10, 6)
        self.view = view
        self.lines: list[str] = []
        view.installEventFilter(self)
        self.hide()

    def show_entries(self, title: str, entries: list[tuple[QColor, str]], note: str = "") -> None:
        """``title``, one swatch per entry and a closing note (all plain text)."""
        rows = [f"<b>{html.escape(title)}</b>"]
        rows += [f"<span style='color:{colour.name()}'>■</span>&nbsp;{html.escape(text)}" for colour, text in entries]
        rows += [f"<i>{html.escape(note)}</i>"] if note else []
        self.label.setText("<br>".join(rows))
        self.lines = [title, *(text for _, text in entries), *([note] if note else [])]
        self.adjustSize()
        self._place()
        self.show()
        self.raise_()

    def plain_text(self) -> str:
        """The legend's words, a line each."""
        return "\n".join(self.lines)

    def _place(self) -> None:
        bar = self.view.verticalScrollBar()
        right = self.view.width() - (bar.width() if bar.isVisible() else 0) - 10
        self.move(max(0, right - self.width()), 10)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.view and event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        if watched is self.view and event.type() in THEME_CHANGES:
            self.theme_changed.emit()  # the view restyles the scene once the event reaches it
        return False


class CanvasOverlay(QObject):
    """The overlay mode of one canvas, the marks it puts on the nodes and its legend."""

    mode_changed = Signal(str)

    def __init__(self, view: GraphView, inspector: InspectorPanel,
                 current_run: Callable[[], Path | None] = lambda: None) -> None:
        super().__init__(view)
        self.view = view
        self.document: GraphDocument = view.document
        self.current_run = current_run
        self.mode = "none"
        self.weights: Weights | None = None  # loaded by the user, for this graph
        self._run_weights: tuple[Any, Weights | None] = (None, None)  # the current run's, read once per change
        self._cache: tuple[tuple[Any, ...], dict[str, Mark]] = ((), {})
        self._fractions: tuple[tuple[Any, ...], dict[str, float]] = ((), {})
        self._shown = False
        self.actions: dict[str, QAction] = {}
        self.legend = OverlayLegend(view)
        self.legend.theme_changed.connect(self.refresh, Qt.ConnectionType.QueuedConnection)
        self.document.analysed.connect(lambda _analysis: self.refresh())
        self.document.scope_changed.connect(self.refresh)
        self.document.reset.connect(self._graph_replaced)
        inspector.node_note = self.note
        self.inspector = inspector

    # ----- choosing --------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown overlay {mode!r}")
        if mode != self.mode:
            self.mode = mode
            self.mode_changed.emit(mode)
            self.refresh()
            self.inspector.refresh()

    def set_weights(self, weights: Weights | None) -> None:
        """Show sparsity from ``weights`` (None: from the current run's)."""
        self.weights = weights
        self.refresh()
        self.inspector.refresh()

    def choose_weights(self) -> None:
        """Ask for a weights file (a run's ``model.safetensors``, a pruned model's) and show it."""
        run = self.current_run()
        start = str(run) if run is not None else str(self.document.folder or Path.cwd())
        name, _ = QFileDialog.getOpenFileName(self.view.window(), "Load Weights for Overlay", start,
                                              "Weights (*.safetensors);;All files (*)")
        if name:
            self.open_weights(Path(name))

    def open_weights(self, path: Path) -> bool:
        """Load weights from ``path`` (a file or a run folder) and switch to the sparsity view;
        a failure is reported on the status line."""
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            weights = load_weights(path)
        except (OSError, ValueError) as error:
            self.view.status_message.emit(f"Could not load weights from {path}: {error}")
            return False
        finally:
            QGuiApplication.restoreOverrideCursor()
        self.set_weights(weights)
        self.set_mode("sparsity")
        return True

    def _graph_replaced(self) -> None:
        self.weights, self._run_weights = None, (None, None)
        self.refresh()

    # ----- showing ---------------------------------------------------------------------------

    def weights_written(self) -> None:
        """A run wrote weights: the sparsity view shows them (a run's own are read again)."""
        if self.mode == "sparsity":
            self.refresh()

    def refresh(self) -> None:
        """Put the current marks on the nodes shown (nothing to do while the overlay is off)."""
        if self.mode == "none" and not self._shown:
            return
        marks, style = self.marks(), self.view.scene_.style
        for node_id, item in self.view.scene_.nodes.items():
            mark = marks.get(node_id)
            item.set_overlay(mark)
            wanted = style if mark is None else tinted(style, mark)
            if item.style is not wanted:
                item.set_style(wanted)
        self._shown = bool(marks)
        self.view.scene_.overview_dirty()
        self._show_legend(marks)

    def marks(self) -> dict[str, Mark]:
        """Each node's mark in the current mode (none while off), once per analysis."""
        if self.mode == "none":
            return {}
        analysis, style = self.document.scope_analysis, self.view.scene_.style
        weights = self.shown_weights() if self.mode == "sparsity" else None
        key = (self.mode, analysis, style, weights)
        if not _same(self._cache[0], key):
            if self.mode == "sparsity":
                marks = self._sparsity_marks(analysis, weights)
            else:
                marks = readiness_marks(analysis, self.mode, style)
            self._cache = (key, marks)
        return self._cache[1]

    def note(self, node_id: str) -> tuple[str, QColor]:
        """What the overlay says about ``node_id`` (the inspector shows it)."""
        mark = self.marks().get(node_id)
        if mark is None:
            return "", QColor()
        return mark.tooltip, self.view.scene_.style.muted if mark.veiled else mark.colour

    def shown_weights(self) -> Weights | None:
        """The weights the sparsity view reads: the user's, else the current run's."""
        if self.weights is not None:
            return self.weights
        run = self.current_run()
        if run is None:
            return None
        stamp = (run, *(_modified(run / name) for name in ("model.safetensors", "checkpoints")))
        if stamp != self._run_weights[0]:
            try:
                self._run_weights = (stamp, load_weights(run))
            except (OSError, ValueError):  # a run without weights yet: read again once it writes some
                self._run_weights = (stamp, None)
        return self._run_weights[1]

    def _sparsity_marks(self, analysis: Any, weights: Weights | None) -> dict[str, Mark]:
        ids = [node.id for node in analysis.graph.nodes]
        weighted = {node for node, count in analysis.param_counts.items() if count}
        if weights is None:
            return sparsity_marks({}, weighted, ids, "", self.view.scene_.style)
        key = (weights, self.document.graph, self.document.scope_path, tuple(ids))
        if not _same(self._fractions[0], key):
            self._fractions = (key, scope_sparsity(self.document.analysis, self.document.scope_path,
                                                          weights.state))
        return sparsity_marks(self._fractions[1], weighted, ids, weights.source, self.view.scene_.style)

    def _show_legend(self, marks: dict[str, Mark]) -> None:
        if not marks:
            self.legend.hide()
            return
        style = self.view.scene_.style
        if self.mode == "sparsity":
            self.legend.show_entries(*self._sparsity_legend(marks))
            return
        counts = {state: 0 for state in Readiness}
        for mark in marks.values():
            counts[mark.state] += 1
        colours = {Readiness.READY: style.valid, Readiness.NOT_READY: style.error,
                   Readiness.NOT_APPLICABLE: style.muted}
        entries = [(colours[state], f"{state.value} ({count})") for state, count in counts.items()]
        self.legend.show_entries(MODES[self.mode], entries, "hover a node for the reason and the fix"
                                 if counts[Readiness.NOT_READY] else "")

    def _sparsity_legend(self, marks: dict[str, Mark]) -> tuple[str, list[tuple[QColor, str]], str]:
        weights = self.shown_weights()
        shown = [mark.fraction for mark in marks.values() if mark.fraction is not None]
        entries = [(sparsity_colour(share), f"{share:.0%} zero") for share in (0.0, 0.5, 1.0)]
        if weights is None:
            return "Sparsity", entries, NO_WEIGHTS
        if not shown:
            return "Sparsity", entries, f"{weights.source} holds no weights of the layers shown"
        note = f"{weights.source}: {len(shown)} layers, {sum(shown) / len(shown):.0%} zero on average"
        return "Sparsity (share of zero weights)", entries, note

    # ----- controls --------------------------------------------------------------------------

    def fill_menu(self, menu: QMenu) -> None:
        """View › Overlay (one checkable entry per mode) and View › Load Weights for Overlay…."""
        overlay = menu.addMenu("&Overlay")
        group = QActionGroup(overlay)
        for mode, text in MODES.items():
            action = overlay.addAction(text)
            action.setCheckable(True)
            action.setChecked(mode == self.mode)
            action.setObjectName(f"overlay_{mode}")
            group.addAction(action)
            action.triggered.connect(lambda _checked=False, chosen=mode: self.set_mode(chosen))
            self.actions[mode] = action
        self.mode_changed.connect(lambda mode: self.actions[mode].setChecked(True))
        menu.addAction("Load &Weights for Overlay…", self.choose_weights)

    def combo(self) -> QWidget:
        """``Overlay [None ▾]`` for the status bar, in step with the menu."""
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(8, 0, 4, 0)
        row.addWidget(QLabel("Overlay"))
        box = QComboBox()
        box.setObjectName("overlay_combo")
        box.setToolTip(plain_tooltip("Colour the canvas by export readiness for a target, or by sparsity"))
        for mode, text in MODES.items():
            box.addItem(text, mode)
        box.activated.connect(lambda index: self.set_mode(box.itemData(index)))
        self.mode_changed.connect(lambda mode: box.setCurrentIndex(list(MODES).index(mode)))
        row.addWidget(box)
        self.box = box
        return holder


def _same(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    """Whether a cache key still holds: the same objects, or equal names and paths."""
    return len(old) == len(new) and all(a is b or (isinstance(a, str | tuple) and a == b)
                                        for a, b in zip(old, new, strict=True))


def _modified(path: Path) -> int | None:
    """When ``path`` last changed (a folder: when a file in it came or went); None if absent."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
