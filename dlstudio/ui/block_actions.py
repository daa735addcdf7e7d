"""The editor's block commands: group into block, ungroup, make unique and open a block, in the
Edit menu and the canvas context menu; and the breadcrumb bar above the canvas that shows which
block is open and leads back out.

Each command is one call of the document's edits (one undo step); opening a block changes what
the canvas shows (:meth:`~dlstudio.ui.model.DocumentModel.open_path`), not the file.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dlstudio.core.block_edits import PORT_TYPES
from dlstudio.core.blocks import BlockSpec
from dlstudio.ui.canvas import GraphView
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.panels import plain_label
from dlstudio.ui.theme import plain_tooltip

ActionFactory = Callable[..., QAction]
SEPARATOR = "›"


class Breadcrumbs(QWidget):
    """``graph name › Residual › Inner``: one button per level above the block shown, shown
    while a block is open."""

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("breadcrumbs")
        self.document = document
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(8, 3, 8, 3)
        self.row.setSpacing(4)
        self._shown: tuple[list[str], tuple[str, ...]] | None = None
        document.scope_changed.connect(self.refresh)
        document.reset.connect(self.refresh)
        document.analysed.connect(lambda _analysis: self.refresh())  # the graph's name may change
        self.refresh()

    def crumbs(self) -> list[str]:
        """The names shown, outermost first."""
        return [self.document.graph.name, *self.document.scope_path]

    def refresh(self) -> None:
        shown = (self.crumbs(), self.document.scope_path)
        if shown == self._shown:
            return
        self._shown = shown
        while self.row.count():
            widget = self.row.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        path = self.document.scope_path
        for depth, name in enumerate(self.crumbs()):
            if depth:
                self.row.addWidget(QLabel(SEPARATOR))
            if depth == len(path):
                current = plain_label(name)
                font = current.font()
                font.setBold(True)
                current.setFont(font)
                self.row.addWidget(current)
            else:
                self.row.addWidget(self._button(name, path[:depth]))
        self.row.addStretch(1)
        self.setVisible(bool(path))

    def _button(self, name: str, path: tuple[str, ...]) -> QToolButton:
        button = QToolButton()
        button.setText(name)
        button.setAutoRaise(True)
        button.setObjectName(f"crumb_{len(path)}")
        button.setToolTip(plain_tooltip(f"Back to {name}"))
        button.clicked.connect(lambda _checked=False: self.document.open_path(path))
        return button


def canvas_with_breadcrumbs(view: GraphView, document: GraphDocument) -> tuple[QWidget, Breadcrumbs]:
    """The canvas with the breadcrumb bar above it, as one widget."""
    holder = QWidget()
    layout = QVBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    crumbs = Breadcrumbs(document, holder)
    layout.addWidget(crumbs)
    layout.addWidget(view, 1)
    return holder, crumbs


class BlockActions:
    """Group into block (Ctrl+G), Ungroup (Ctrl+Shift+G), Make unique and Open block, acting
    on the canvas selection; double-clicking a block node opens it."""

    def __init__(self, window: QWidget, document: GraphDocument, view: GraphView) -> None:
        self.window = window
        self.document = document
        self.view = view
        self.actions: dict[str, QAction] = {}
        self.menu: QMenu | None = None  # the context menu shown last
        self._shown_path = self.document.scope_path
        self.view.node_double_clicked.connect(self._double_clicked)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self.show_context_menu)
        self.view.selection_changed.connect(lambda _ids: self.update_actions())
        self.document.scope_changed.connect(self._scope_changed)
        self.document.reset.connect(self._scope_changed)  # another file opened

    def fill_menu(self, menu: QMenu, make: ActionFactory) -> None:
        """Add the block actions to ``menu`` through the window's action factory."""
        self.actions = {
            "group": make(menu, "&Group into Block…", self.group, "Ctrl+G", on_canvas=True),
            "ungroup": make(menu, "U&ngroup", self.ungroup, "Ctrl+Shift+G", on_canvas=True),
            "unique": make(menu, "Make Block &Unique", self.make_unique, on_canvas=True),
            "open": make(menu, "&Open Block", self.open_selected, on_canvas=True),
        }
        self.update_actions()

    def update_actions(self) -> None:
        """Enable each action when the selection allows it."""
        ids = self.view.selected_node_ids()
        block = self._selected_block() is not None
        groupable = bool(ids) and not any(self.document.node(n).type in PORT_TYPES for n in ids)
        for name, enabled in (("group", groupable), ("ungroup", block), ("unique", block), ("open", block)):
            if name in self.actions:
                self.actions[name].setEnabled(enabled)

    def show_context_menu(self, pos: QPoint) -> None:
        """The canvas menu at ``pos`` (viewport coordinates); a right-click on a node outside the
        selection selects that node first."""
        item = self.view.scene_.node_at(self.view.mapToScene(pos))
        if item is not None and not item.isSelected():
            self.view.select_node(item.node_id, center=False)
        self.update_actions()
        self.menu = QMenu(self.view)
        self.menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        for name in ("group", "ungroup", "unique", "open"):
            self.menu.addAction(self.actions[name])
        self.menu.popup(self.view.viewport().mapToGlobal(pos))

    # ----- the commands --------------------------------------------------------------------------

    def group(self) -> None:
        ids = self.view.selected_node_ids()
        if not ids:
            self._say("Select the nodes to group into a block")
            return
        name = self.ask_name()
        if name is None:
            return
        try:
            node_id = self.document.group_into_block(ids, name)
        except ValueError as error:
            self._say(str(error))
            return
        self.view.select_node(node_id, center=False)
        self._say(f"Grouped {len(ids)} nodes into block {name} (double-click it to edit)")

    def ask_name(self) -> str | None:
        """The new block's name from a dialog (None when cancelled)."""
        dialog = QInputDialog(self.window)
        dialog.setObjectName("block_name_dialog")
        dialog.setWindowTitle("Group into block")
        dialog.setLabelText("Block name (letters, digits and _):")
        dialog.setTextValue(self.document.default_block_name())
        if not dialog.exec():
            return None
        return dialog.textValue().strip() or None

    def ungroup(self) -> None:
        node_id = self._selected_block()
        if node_id is None:
            self._say("Select one block node to ungroup")
            return
        try:
            ids = self.document.ungroup(node_id)
        except ValueError as error:
            self._say(str(error))
            return
        self.view.select_nodes(ids)

    def make_unique(self) -> None:
        node_id = self._selected_block()
        if node_id is None:
            self._say("Select one block node to give its own copy of the block")
            return
        try:
            name = self.document.make_unique(node_id)
        except ValueError as error:
            self._say(str(error))
            return
        self.view.select_node(node_id, center=False)
        self._say(f"{node_id} now uses its own block {name}")

    def open_selected(self) -> None:
        node_id = self._selected_block()
        if node_id is not None:
            self.document.open_block(node_id)

    # ----- helpers -------------------------------------------------------------------------------

    def _selected_block(self) -> str | None:
        ids = self.view.selected_node_ids()
        if len(ids) != 1:
            return None
        spec = self.document.catalogue.get(self.document.node(ids[0]).type)
        return ids[0] if isinstance(spec, BlockSpec) else None

    def _double_clicked(self, node_id: str) -> None:
        if isinstance(self.document.catalogue.get(self.document.node(node_id).type), BlockSpec):
            self.document.open_block(node_id)

    def _scope_changed(self) -> None:
        """Frame the graph shown when another block (or the graph) opens, not after an edit."""
        if self.document.scope_path != self._shown_path:
            self._shown_path = self.document.scope_path
            self.view.frame_opening()
        self.update_actions()

    def _say(self, text: str) -> None:
        self.view.status_message.emit(text)
