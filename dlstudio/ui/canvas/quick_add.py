"""The quick-add popup: type to filter the document's catalogue, Enter places the chosen layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlstudio.core.layer_search import search_key
from dlstudio.ui.canvas.style import plain_tooltip

if TYPE_CHECKING:
    from dlstudio.ui.document import GraphDocument

TYPE_ROLE = Qt.ItemDataRole.UserRole


def matches(query: str, type_name: str, family: str, summary: str) -> tuple[int, str] | None:
    """A sort key when ``query`` matches: exact name, prefix, substring, then description."""
    return search_key(query, type_name, f"{family} {summary}")


class QuickAdd(QFrame):
    """A popup list of layers with a filter box; emits :attr:`chosen` with the type name."""

    chosen = Signal(str)

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.document = document
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Add layer…")
        self.search.setClearButtonEnabled(True)
        self.list = QTreeWidget(self)
        self.list.setColumnCount(2)
        self.list.setHeaderHidden(True)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.list.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.list.header().setStretchLastSection(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.resize(300, 340)
        self.search.textChanged.connect(self.refilter)
        self.search.installEventFilter(self)
        self.list.itemActivated.connect(self._activate)
        self.refilter("")

    def refilter(self, query: str) -> None:
        """Show the layers matching ``query``, best matches first; select the first."""
        found = []
        for family, specs in self.document.catalogue.families().items():
            for spec in specs:
                key = matches(query, spec.type, family, spec.summary)
                if key is not None:
                    found.append((key, spec.type, family, spec.summary))
        self.list.clear()
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        for _, type_name, family, summary in sorted(found):
            item = QTreeWidgetItem([type_name, family])
            item.setData(0, TYPE_ROLE, type_name)
            item.setForeground(1, muted)
            item.setToolTip(0, plain_tooltip(summary))
            self.list.addTopLevelItem(item)
        if self.list.topLevelItemCount():
            self.list.setCurrentItem(self.list.topLevelItem(0))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key() if isinstance(event, QKeyEvent) else None
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                self.list.keyPressEvent(event)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._activate(self.list.currentItem())
                return True
            if key == Qt.Key.Key_Escape:
                self.close()
                return True
        return super().eventFilter(watched, event)

    def popup(self, global_pos: QPoint) -> None:
        self.search.clear()
        self.move(global_pos)
        self.show()
        self.search.setFocus()

    def current_type(self) -> str | None:
        item = self.list.currentItem()
        return item.data(0, TYPE_ROLE) if item is not None else None

    def _activate(self, item: QTreeWidgetItem | None, _column: int = 0) -> None:
        if item is None:
            return
        type_name = item.data(0, TYPE_ROLE)
        self.close()
        self.chosen.emit(type_name)

