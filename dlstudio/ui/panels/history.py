"""The History panel: the undo stack's steps; clicking one goes back (or forward) to it."""

from __future__ import annotations

from PySide6.QtWidgets import QUndoView, QWidget

from dlstudio.ui.document import GraphDocument


class HistoryPanel(QUndoView):
    """A QUndoView on the document's stack, whose first row is the state as opened."""

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(document.undo_stack, parent)
        self.document = document
        self.setEmptyLabel("Opened")
        self.setAlternatingRowColors(True)
        document.path_changed.connect(lambda _path: self._relabel())
        document.reset.connect(self._relabel)
        self._relabel()

    def _relabel(self) -> None:
        path = self.document.path
        self.setEmptyLabel(f"Opened {path.name}" if path else "New graph")
