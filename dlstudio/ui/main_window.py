"""The main window: canvas in the middle, palette, inspector, problems, code and history around it.

It wires views to the one :class:`~dlstudio.ui.document.GraphDocument` and owns the menus,
shortcuts and status bar. File operations (with their dialogs) are in :class:`FileActions`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QPointF, QSettings, Qt
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMenu, QWidget

from dlstudio.core.analysis import Analysis
from dlstudio.core.summary import frozen_note, unreached_note
from dlstudio.ui.block_actions import BlockActions, canvas_with_breadcrumbs
from dlstudio.ui.canvas import GraphView
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.files import (
    AUTOSAVE_MS,
    Autosaver,
    FileActions,
    RecentFiles,
    RecoveryStore,
    dropped_graph,
)
from dlstudio.ui.importing import ModelImport
from dlstudio.ui.overlay import CanvasOverlay
from dlstudio.ui.panels import (
    human_count,
    plain_label,
    select_all_on_focus_everywhere,
    set_text_colour,
)
from dlstudio.ui.panels.code_view import CodePanel
from dlstudio.ui.panels.history import HistoryPanel
from dlstudio.ui.panels.inspector import InspectorPanel
from dlstudio.ui.panels.palette import PalettePanel
from dlstudio.ui.panels.problems import ProblemsPanel
from dlstudio.ui.theme import colors, plain_tooltip
from dlstudio.ui.training import install_training

ADD_OFFSET = 30.0


class MainWindow(QMainWindow):
    """One document in one window."""

    def __init__(self, document: GraphDocument | None = None, settings: QSettings | None = None,
                 recovery: RecoveryStore | None = None, autosave_ms: int = AUTOSAVE_MS,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("main_window")
        select_all_on_focus_everywhere()
        self.document = document or GraphDocument()
        self.document.setParent(self)
        self.settings = settings or QSettings()
        self.recent = RecentFiles(self.settings, self)
        self.autosaver = Autosaver(self.document, recovery or RecoveryStore(), autosave_ms, self)
        self.files = FileActions(self)
        self.importer = ModelImport(self)
        self._adds = 0
        self.view = GraphView(self.document)
        self.scene = self.view.scene_
        self.view.setObjectName("canvas")
        canvas, self.breadcrumbs = canvas_with_breadcrumbs(self.view, self.document)
        self.setCentralWidget(canvas)
        self.blocks = BlockActions(self, self.document, self.view)
        self._build_panels()
        self.overlay = CanvasOverlay(self.view, self.inspector, self._current_run)
        self._build_status_bar()
        self._build_menus()
        self._connect()
        install_training(self)  # Training panel, curves, Inside view, runs; the Train menu
        self.training.weights_written.connect(self.overlay.weights_written)
        self.setAcceptDrops(True)
        self.view.viewport().installEventFilter(self)
        self._fit_screen(1440, 880)
        self._layout_restored = False
        self._update_title()
        self._analysed(self.document.analysis)

    # ----- construction ------------------------------------------------------------------------

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _build_panels(self) -> None:
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.palette_panel = PalettePanel(self.document)
        self.inspector = InspectorPanel(self.document)
        self.problems = ProblemsPanel()
        self.code = CodePanel(self.document)
        self.history = HistoryPanel(self.document)
        self.palette_dock = self._dock("Layers", "palette_dock", self.palette_panel, left)
        self.inspector_dock = self._dock("Inspector", "inspector_dock", self.inspector, right)
        self.code_dock = self._dock("Code", "code_dock", self.code, right)
        self.code_dock.visibilityChanged.connect(self.code.set_dock_shown)
        self.problems_dock = self._dock("Problems", "problems_dock", self.problems, bottom)
        self.history_dock = self._dock("History", "history_dock", self.history, right)
        # one tab group only: Qt 6 leaves a stray tab bar when two are made before the first show
        self.tabifyDockWidget(self.inspector_dock, self.code_dock)
        self.tabifyDockWidget(self.code_dock, self.history_dock)
        self.inspector_dock.raise_()
        self.resizeDocks([self.palette_dock, self.inspector_dock], [230, 360], Qt.Orientation.Horizontal)
        self.resizeDocks([self.problems_dock], [170], Qt.Orientation.Vertical)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_problems = plain_label("")
        self.status_params = plain_label("")
        self.status_flops = plain_label("")
        self.status_flops.setToolTip(plain_tooltip("Multiply-adds for one sample"))
        self.status_outputs = plain_label("")
        for label in (self.status_problems, self.status_params, self.status_flops, self.status_outputs):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)
        bar.addPermanentWidget(self.overlay.combo())

    def _action(self, menu: QMenu, text: str, slot: object, shortcuts: object = None,
                on_canvas: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcuts is not None:
            keys = shortcuts if isinstance(shortcuts, list) else [shortcuts]
            action.setShortcuts([QKeySequence(k) for k in keys])
        action.triggered.connect(lambda _checked=False: slot())
        if on_canvas:  # single keys and edit keys act on the canvas only, not in text fields
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.view.addAction(action)
        else:
            self.addAction(action)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        self._file_menu(self.menuBar().addMenu("&File"))
        self._edit_menu(self.menuBar().addMenu("&Edit"))
        self._view_menu(self.menuBar().addMenu("&View"))
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "About DL Studio", self.files.about)

    def _file_menu(self, menu: QMenu) -> None:
        f = self.files
        self._action(menu, "&New", f.new, QKeySequence.StandardKey.New)
        f.fill_templates(menu.addMenu("New from &Template"))
        self.examples_menu = menu.addMenu("New from &Example")
        self.examples_menu.aboutToShow.connect(lambda: f.fill_examples(self.examples_menu))
        f.fill_examples(self.examples_menu)
        self._action(menu, "&Open…", f.open, QKeySequence.StandardKey.Open)
        self.recent_menu = menu.addMenu("Open &Recent")
        self.recent.changed.connect(lambda: f.fill_recent(self.recent_menu))
        f.fill_recent(self.recent_menu)
        menu.addSeparator()
        self._action(menu, "&Save", f.save, QKeySequence.StandardKey.Save)
        self._action(menu, "Save &As…", f.save_as, "Ctrl+Shift+S")
        self._action(menu, "&Import Model…", self.importer.import_model, "Ctrl+I")
        export = menu.addMenu("&Export")
        self.export_action = self._action(export, "&Python…", f.export_python, "Ctrl+E")
        menu.addSeparator()
        self._action(menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

    def _edit_menu(self, menu: QMenu) -> None:
        stack = self.document.undo_stack
        self.undo_action = stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo_action = stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action in (self.undo_action, self.redo_action):
            menu.addAction(action)
            self.addAction(action)
        menu.addSeparator()
        view = self.view
        self._action(menu, "&Copy", view.copy_selection, "Ctrl+C", on_canvas=True)
        self._action(menu, "&Paste", view.paste, "Ctrl+V", on_canvas=True)
        self._action(menu, "&Duplicate", view.duplicate_selection, "Ctrl+D", on_canvas=True)
        self._action(menu, "De&lete", view.delete_selection, ["Delete", "Backspace"], on_canvas=True)
        menu.addSeparator()
        self.blocks.fill_menu(menu, self._action)
        menu.addSeparator()
        self._action(menu, "Select &All", view.select_all, "Ctrl+A", on_canvas=True)

    def _view_menu(self, menu: QMenu) -> None:
        view = self.view
        self._action(menu, "&Fit All", view.fit_all, "F", on_canvas=True)
        self._action(menu, "Auto &Layout", view.auto_layout, "Ctrl+L", on_canvas=True)
        self._action(menu, "&Quick Add…", view.show_quick_add, "Tab", on_canvas=True)
        self._action(menu, "Find &Layer", self.find_layer, "Ctrl+F")
        menu.addSeparator()
        self.overlay.fill_menu(menu)
        menu.addSeparator()
        for dock in (self.palette_dock, self.inspector_dock, self.code_dock, self.problems_dock,
                     self.history_dock):
            menu.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
        doc = self.document
        doc.analysed.connect(self._analysed)
        doc.modified_changed.connect(lambda _modified: self._update_title())
        doc.path_changed.connect(lambda _path: self._update_title())
        doc.reset.connect(self._update_title)
        doc.node_renamed.connect(lambda _old, _new: self._selection_changed(self.view.selected_node_ids()))
        self.view.selection_changed.connect(self._selection_changed)
        self.view.status_message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self.palette_panel.add_requested.connect(self.add_layer)
        self.problems.node_activated.connect(lambda node: self.view.select_node(node, center=True))
        self.code.export_requested.connect(self.files.export_python)
        self.autosaver.failed.connect(lambda text: self.statusBar().showMessage(text, 10000))

    def showEvent(self, event: QShowEvent) -> None:
        if not self._layout_restored:  # restoring before the first show upsets Qt's dock tabs
            self._layout_restored = True
            self._restore_layout()
        super().showEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # the application palette (theme) changed
            self.inspector.restyle()
            self.problems.restyle()
            self.code.restyle()
            self._show_totals(self.document.analysis)
        super().changeEvent(event)

    def _fit_screen(self, width: int, height: int) -> None:
        """Open at ``width`` x ``height``, or smaller where the screen is (a 1366-wide laptop)."""
        screen = self.screen() or QApplication.primaryScreen()
        room = screen.availableGeometry() if screen is not None else None
        if room is not None and not room.isEmpty():
            width, height = min(width, room.width()), min(height, room.height())
        self.resize(width, height)

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    # ----- reacting ----------------------------------------------------------------------------

    def _update_title(self) -> None:
        self.setWindowTitle(self.document.title)

    def _selection_changed(self, node_ids: list[str]) -> None:
        self.inspector.show_nodes(list(node_ids))
        self.code.highlight([] if self.document.scope_path else list(node_ids))  # a block's ids are its own

    def _analysed(self, analysis: Analysis) -> None:
        self.problems.show_analysis(analysis)
        self._show_totals(analysis)

    def _show_totals(self, analysis: Analysis) -> None:
        errors = len(analysis.errors)
        warnings = len(analysis.diagnostics) - errors
        if errors or warnings:
            parts = [f"{errors} error{'s' * (errors != 1)}"] * bool(errors)
            parts += [f"{warnings} warning{'s' * (warnings != 1)}"] * bool(warnings)
            self.status_problems.setText(", ".join(parts))
            set_text_colour(self.status_problems, colors().error if errors else colors().warning)
        else:
            self.status_problems.setText("No problems")
            set_text_colour(self.status_problems, colors().ok)
        self.status_params.setText(f"Params {analysis.total_params:,}"
                                   + frozen_note(analysis.total_params, analysis.trainable_params)
                                   + unreached_note(analysis))
        self.status_flops.setText(f"FLOPs {human_count(analysis.total_flops)}")
        outputs = analysis.outputs()
        text = "  ".join(f"{name} {tensor}" for name, tensor in outputs.items())
        self.status_outputs.setText(f"Out {text}" if text else "No output shape")

    # ----- commands ----------------------------------------------------------------------------

    def add_layer(self, layer_type: str) -> str | None:
        """Add a layer near the middle of the visible canvas (staggered) and select it."""
        offset = (self._adds % 6) * ADD_OFFSET
        self._adds += 1
        return self.view.add_layer(layer_type, self.scene_centre() + QPointF(offset, offset))

    def find_layer(self) -> None:
        self.palette_dock.show()
        self.palette_dock.raise_()
        self.palette_panel.focus_search()

    def _current_run(self) -> Path | None:
        """The run chosen in the Runs panel, else the latest one started here."""
        training = getattr(self, "training", None)  # installed after the menus
        return None if training is None else training.runs.selected_path() or training.last_run

    def scene_centre(self) -> QPointF:
        return self.view.mapToScene(self.view.viewport().rect().center())

    # ----- window events -----------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Let a .json file dropped on the canvas open (the canvas handles layer drops)."""
        if watched is self.view.viewport() and event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if dropped_graph(event.mimeData()) is not None:
                event.acceptProposedAction()
                return True
        if watched is self.view.viewport() and event.type() == QEvent.Type.Drop:
            path = dropped_graph(event.mimeData())
            if path is not None:
                event.acceptProposedAction()
                self.files.open_path(path)
                return True
        return super().eventFilter(watched, event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_graph(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_graph(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.files.open_path(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.files.maybe_save():
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        event.accept()
