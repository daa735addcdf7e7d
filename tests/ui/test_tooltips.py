"""Node tooltips are formatted when Qt asks for them, not when the scene is built: the text
shown on the first hover must still be the node's current one."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from dlstudio.core.io import load_graph
from dlstudio.ui.document import GraphDocument
from tests.ui.test_canvas import CHAIN, make_view, node_point, settle


def hover_tooltip(view, point: QPoint) -> str:
    """What Qt shows when the cursor rests at ``point`` of the view."""
    QToolTip.hideText()
    event = QHelpEvent(QEvent.Type.ToolTip, point, view.viewport().mapToGlobal(point))
    QApplication.sendEvent(view.viewport(), event)
    return QToolTip.text()


def test_the_first_hover_shows_the_current_problem(qtbot):
    doc = GraphDocument(load_graph(CHAIN))
    view = make_view(qtbot, doc)
    doc.set_param("fc2", "in_features", 31)
    settle(doc)
    shown = hover_tooltip(view, node_point(view, "fc2"))
    assert shown.startswith("<p style='white-space:pre-wrap'>Linear &#x27;fc2&#x27;")
    assert "expects last dimension 31 but gets 32 from &#x27;act&#x27;" in shown
    doc.undo_stack.undo()
    settle(doc)
    shown = hover_tooltip(view, node_point(view, "fc2"))
    assert "Linear &#x27;fc2&#x27;" in shown and "error" not in shown


def test_each_node_shows_its_own_tooltip(qtbot):
    view = make_view(qtbot, GraphDocument(load_graph(CHAIN)))
    assert "ReLU &#x27;act&#x27;\n&lt;b&gt;bold?&lt;/b&gt;" in hover_tooltip(view, node_point(view, "act"))
    assert "Linear &#x27;fc1&#x27;" in hover_tooltip(view, node_point(view, "fc1"))
