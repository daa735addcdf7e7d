"""Where the nodes are, for routing edges: a grid of square cells, each holding the nodes whose
rectangle touches it.

Routing an edge around the nodes in its way asks which nodes cross a band between its ends.
Asking Qt's scene index costs time in proportion to every item the band crosses, edges
included, so a node feeding thousands of others made opening a graph quadratic. The grid
answers from the cells the band covers, and gives up (None) on a band that covers more than
:data:`MAX_CELLS` cells or crosses more than a caller's ``limit`` of nodes: routing around that
many nodes would not make the edge easier to follow, and each answer stays bounded work.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import product
from typing import Generic, TypeVar

Key = TypeVar("Key")
Rect = tuple[float, float, float, float]  # left, top, right, bottom

#: Side of a cell in scene units (about a node and its gap).
CELL = 512.0
#: The most cells one query visits before it gives up.
MAX_CELLS = 256


class RectGrid(Generic[Key]):
    """Rectangles by key, found by the cells they touch."""

    def __init__(self, cell: float = CELL) -> None:
        self.cell = cell
        self._cells: dict[tuple[int, int], set[Key]] = {}
        self._rects: dict[Key, Rect] = {}

    def __len__(self) -> int:
        return len(self._rects)

    def place(self, key: Key, rect: Rect) -> None:
        """Put ``key`` at ``rect`` (moving it when it was elsewhere)."""
        if self._rects.get(key) == rect:
            return
        self.remove(key)
        self._rects[key] = rect
        cells = self._cells
        for cell in self._cover(rect):  # an edge's way can cover hundreds: no set made per cell
            keys = cells.get(cell)
            if keys is None:
                cells[cell] = {key}
            else:
                keys.add(key)

    def remove(self, key: Key) -> None:
        rect = self._rects.pop(key, None)
        if rect is None:
            return
        for cell in self._cover(rect):
            keys = self._cells.get(cell)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._cells[cell]

    def rect_of(self, key: Key) -> Rect | None:
        return self._rects.get(key)

    def covers_few_cells(self, rect: Rect) -> bool:
        """Whether ``rect`` covers at most :data:`MAX_CELLS` cells (a query of it is answered)."""
        return self._cell_count(rect) <= MAX_CELLS

    def clear(self) -> None:
        self._cells.clear()
        self._rects.clear()

    def crossing(self, area: Rect, limit: int) -> list[Key] | None:
        """The keys whose rectangle overlaps ``area``; None when ``area`` covers more than
        :data:`MAX_CELLS` cells or more than ``limit`` keys overlap it."""
        left, top, right, bottom = area
        if right < left or bottom < top:
            return []
        if not self.covers_few_cells(area):
            return None
        found: dict[Key, None] = {}
        for cell in self._cover(area):
            for key in self._cells.get(cell, ()):
                if key not in found and _overlap(self._rects[key], area):
                    found[key] = None
                    if len(found) > limit:
                        return None
        return list(found)

    def _span(self, low: float, high: float) -> range:
        return range(math.floor(low / self.cell), math.floor(high / self.cell) + 1)

    def _cell_count(self, rect: Rect) -> int:
        return len(self._span(rect[0], rect[2])) * len(self._span(rect[1], rect[3]))

    def _cover(self, rect: Rect) -> Iterator[tuple[int, int]]:
        """The (column, row) of every cell ``rect`` touches, column by column."""
        return product(self._span(rect[0], rect[2]), self._span(rect[1], rect[3]))


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
