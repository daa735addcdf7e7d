"""An edge keeps plain numbers and makes its curve when first painted: the bounds and label
place it works out without the curve must be those of the curve Qt draws."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QPointF

from dlstudio.ui.canvas import style
from dlstudio.ui.canvas.edge_item import EdgeItem, curve_bounds, edge_path

coordinate = st.floats(min_value=-5000, max_value=5000, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(coordinate, coordinate, coordinate, coordinate)
def test_curve_bounds_are_the_bounds_of_the_curve_drawn(x0, y0, x1, y1) -> None:
    bounds = edge_path(QPointF(x0, y0), QPointF(x1, y1)).boundingRect()
    expected = (bounds.left(), bounds.top(), bounds.right(), bounds.bottom())
    assert curve_bounds(x0, y0, x1, y1) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("start", "end", "channel"), [
    ((0, 0), (600, 300), None),  # forward
    ((0, 0), (20, 40), None),  # short: the handles bulge past the ends
    ((900, 0), (0, 400), None),  # backward
    ((0, 0), (900, 0), 200.0),  # routed below the nodes in its way
    ((900, 0), (0, 400), 300.0),  # back to the next row
])
def test_a_placed_edge_bounds_its_curve_and_label(qapp, start, end, channel) -> None:
    edge = EdgeItem(("a", "b"), style.canvas_style())
    edge.set_label("[N, 16]")
    edge.set_ends(QPointF(*start), QPointF(*end), channel)
    assert edge.start == QPointF(*start) and edge.end == QPointF(*end)
    assert edge.path == edge_path(QPointF(*start), QPointF(*end), channel)
    assert edge.boundingRect().contains(edge.path.boundingRect())
    long_enough = abs(end[0] - start[0]) + abs(end[1] - start[1]) > 100
    assert edge.label_rect.isNull() != long_enough  # a short edge shows no label
    assert not long_enough or edge.boundingRect().contains(edge.label_rect)
    if channel is None and long_enough:
        centre, middle = edge.label_rect.center(), edge.path.pointAtPercent(0.5)
        assert (centre.x(), centre.y()) == pytest.approx((middle.x(), middle.y()), abs=1e-6)
    moved = QPointF(end[0] + 50, end[1])
    edge.set_ends(QPointF(*start), moved, None)
    assert edge.path == edge_path(QPointF(*start), moved)  # made again for the new ends
