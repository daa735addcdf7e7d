"""The Problems panel: every diagnostic of the latest analysis; clicking one finds its node."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from dlstudio.core.analysis import Analysis, Diagnostic
from dlstudio.ui.theme import colors, plain_tooltip

NODE_ROLE = Qt.ItemDataRole.UserRole + 1


class _WrappingDelegate(QStyledItemDelegate):
    """Sizes a cell for its text wrapped to its column (a tree view asks with no width)."""

    def __init__(self, view: QTreeWidget) -> None:
        super().__init__(view)
        self.view = view

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        sized = QStyleOptionViewItem(option)
        sized.rect = QRect(0, 0, self.view.columnWidth(index.column()), max(option.rect.height(), 1))
        return super().sizeHint(sized, index)


class ProblemsPanel(QTreeWidget):
    """A flat list of diagnostics, errors first; emits :attr:`node_activated` on click."""

    node_activated = Signal(str)
    COLUMNS = ("", "Node", "Problem", "Fix")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(self.COLUMNS))
        self.setHeaderLabels(list(self.COLUMNS))
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setWordWrap(True)  # a long message or fix takes more lines, never an ellipsis
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.setItemDelegate(_WrappingDelegate(self))
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(0, 28)
        header.resizeSection(1, 150)
        header.resizeSection(3, 320)
        header.sectionResized.connect(lambda *_: self.scheduleDelayedItemsLayout())  # wrap anew
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)
        self.diagnostics: list[Diagnostic] = []

    def show_analysis(self, analysis: Analysis) -> None:
        """Replace the list with ``analysis``'s diagnostics, errors first."""
        ordered = sorted(analysis.diagnostics, key=lambda d: d.severity != "error")
        if ordered == self.diagnostics:
            return
        self.diagnostics = ordered
        self.setUpdatesEnabled(False)
        self.clear()
        self.addTopLevelItems([self._item(d) for d in ordered])
        self.setUpdatesEnabled(True)

    def restyle(self) -> None:
        """Recolour the rows for a new theme."""
        diagnostics, self.diagnostics = self.diagnostics, []
        self.setUpdatesEnabled(False)
        self.clear()
        self.addTopLevelItems([self._item(d) for d in diagnostics])
        self.diagnostics = diagnostics
        self.setUpdatesEnabled(True)

    def _item(self, diagnostic: Diagnostic) -> QTreeWidgetItem:
        item = QTreeWidgetItem(["", diagnostic.node or "(graph)", diagnostic.message, diagnostic.fix])
        error = diagnostic.severity == "error"
        icon = QStyle.StandardPixmap.SP_MessageBoxCritical if error else QStyle.StandardPixmap.SP_MessageBoxWarning
        item.setIcon(0, self.style().standardIcon(icon))
        item.setData(0, Qt.ItemDataRole.AccessibleTextRole, diagnostic.severity)
        item.setForeground(1, colors().error if error else colors().warning)
        item.setData(0, NODE_ROLE, diagnostic.node)
        tip = plain_tooltip(f"{diagnostic.severity}: {diagnostic.one_line()}")
        for column in range(len(self.COLUMNS)):
            item.setToolTip(column, tip)
            item.setTextAlignment(column, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        return item

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.topLevelItemCount() == 0:  # say so, rather than show an empty table
            painter = QPainter(self.viewport())
            painter.setPen(colors().muted)
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                             "No problems: every node has a known shape.")
            painter.end()

    def counts(self) -> tuple[int, int]:
        errors = sum(d.severity == "error" for d in self.diagnostics)
        return errors, len(self.diagnostics) - errors

    def _clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        node = item.data(0, NODE_ROLE)
        if node:
            self.node_activated.emit(node)
