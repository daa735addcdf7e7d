"""The layer palette: every layer type of the document's catalogue grouped by family, with a
search box.

Drag a layer onto the canvas (mime ``application/x-dlstudio-layer``, data = the type name) or
double-click it (or press Enter) to add it; :attr:`PalettePanel.add_requested` carries the type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QMimeData, Qt, Signal
from PySide6.QtGui import QFont, QIcon, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlstudio.core.catalogue import Catalogue
from dlstudio.core.layer_search import search_key
from dlstudio.core.spec import LayerSpec
from dlstudio.ui.canvas.style import canvas_style
from dlstudio.ui.theme import plain_tooltip

if TYPE_CHECKING:
    from dlstudio.ui.document import GraphDocument

LAYER_MIME = "application/x-dlstudio-layer"
TYPE_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 2


def family_icon(family: str, size: int = 10) -> QIcon:
    """A dot in the family's canvas colour, so palette groups match the node headers."""
    pixmap = QPixmap(size * 2, size * 2)
    pixmap.setDevicePixelRatio(2.0)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(canvas_style().family(family))
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


class LayerTree(QTreeWidget):
    """A tree of families and layers whose layer rows drag out as ``LAYER_MIME``."""

    enter_pressed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.enter_pressed.emit()
            return
        super().keyPressEvent(event)

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        types = [item.data(0, TYPE_ROLE) for item in items if item.data(0, TYPE_ROLE)]
        if types:
            data.setData(LAYER_MIME, types[0].encode("utf-8"))
            data.setText(types[0])
        return data


class PalettePanel(QWidget):
    """Search box over the tree of the document's layer types."""

    add_requested = Signal(str)  # layer type

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._catalogue: Catalogue | None = None
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search layers  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first_match)
        self.tree = LayerTree(self)
        self.tree.itemDoubleClicked.connect(self._activated)
        self.tree.enter_pressed.connect(self._add_first_match)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        document.reset.connect(self.refresh)
        document.catalogue_changed.connect(self.refresh)  # the file's blocks changed
        self.refresh()

    def refresh(self) -> None:
        """List the document's layer types (again when a newly opened graph, or an edit of the
        file's blocks, brought others)."""
        if self.document.catalogue is self._catalogue:
            return
        self._catalogue = self.document.catalogue
        self.tree.clear()
        self._populate(self._catalogue)
        self.filter(self.search.text())

    def _populate(self, catalogue: Catalogue) -> None:
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for family, specs in catalogue.families().items():
            group = QTreeWidgetItem(self.tree, [f"{family}  ({len(specs)})"])
            group.setFont(0, bold)
            group.setIcon(0, family_icon(family))
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group.setData(0, Qt.ItemDataRole.UserRole, family)
            for spec in sorted(specs, key=lambda s: s.type.lower()):
                self._layer_item(group, spec)
        self.tree.expandAll()

    @staticmethod
    def _layer_item(group: QTreeWidgetItem, spec: LayerSpec) -> QTreeWidgetItem:
        item = QTreeWidgetItem(group, [spec.type])
        item.setData(0, TYPE_ROLE, spec.type)
        item.setData(0, SEARCH_ROLE, f"{spec.family} {spec.summary}")
        item.setToolTip(0, plain_tooltip(f"{spec.type}\n{spec.summary}"))
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                      | Qt.ItemFlag.ItemIsDragEnabled)
        return item

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # the theme changed: recolour the dots
            root = self.tree.invisibleRootItem()
            for i in range(root.childCount()):
                group = root.child(i)
                group.setIcon(0, family_icon(str(group.data(0, Qt.ItemDataRole.UserRole))))
        super().changeEvent(event)

    def layer_items(self) -> list[QTreeWidgetItem]:
        root = self.tree.invisibleRootItem()
        return [root.child(i).child(j) for i in range(root.childCount())
                for j in range(root.child(i).childCount())]

    def visible_types(self) -> list[str]:
        return [item.data(0, TYPE_ROLE) for item in self.layer_items() if not item.isHidden()]

    def filter(self, text: str) -> None:
        """Show the layers that match ``text`` best first in each family (see
        :mod:`dlstudio.core.layer_search`), count them in the family's heading, and highlight
        the best match of all for Enter to add."""
        root = self.tree.invisibleRootItem()
        ranked: list[tuple[tuple[int, str], QTreeWidgetItem]] = []
        for i in range(root.childCount()):
            group = root.child(i)
            shown = self._rank_group(group, text)
            ranked += shown
            group.setText(0, f"{group.data(0, Qt.ItemDataRole.UserRole)}  ({len(shown)})")
            group.setHidden(not shown)
            group.setExpanded(True)
        if ranked and text.strip():
            best = min(ranked, key=lambda pair: pair[0])[1]
            self.tree.setCurrentItem(best)
            self.tree.scrollToItem(best)

    @staticmethod
    def _rank_group(group: QTreeWidgetItem, text: str) -> list[tuple[tuple[int, str], QTreeWidgetItem]]:
        """Order ``group``'s layers by how well they match ``text`` (by name when it is empty),
        hide those that do not match, and return the others with their keys."""
        keyed = [(search_key(text, item.data(0, TYPE_ROLE), str(item.data(0, SEARCH_ROLE))), item)
                 for item in (group.child(j) for j in range(group.childCount()))]
        keyed.sort(key=lambda pair: (pair[0] is None, pair[0] or (0, "")))
        group.takeChildren()
        group.addChildren([item for _, item in keyed])
        for key, item in keyed:
            item.setHidden(key is None)
        return [(key, item) for key, item in keyed if key is not None]

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _first_visible(self) -> QTreeWidgetItem | None:
        return next((item for item in self.layer_items() if not item.isHidden()), None)

    def _add_first_match(self) -> None:
        current = self.tree.currentItem()
        item = current if current is not None and current.data(0, TYPE_ROLE) and not current.isHidden() \
            else self._first_visible()
        if item is not None:
            self.add_requested.emit(item.data(0, TYPE_ROLE))

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        layer_type = item.data(0, TYPE_ROLE)
        if layer_type:
            self.add_requested.emit(layer_type)
