"""The grid the canvas routes edges with: it finds the nodes a band crosses, follows moves, and
gives up (None) instead of doing unbounded work on a crowded or huge band."""

from __future__ import annotations

from dlstudio.ui.canvas.grid import CELL, MAX_CELLS, RectGrid


def test_finds_what_overlaps_and_follows_moves():
    grid: RectGrid[str] = RectGrid()
    grid.place("a", (0, 0, 100, 50))
    grid.place("b", (2000, 0, 2100, 50))
    assert sorted(grid.crossing((-10, -10, 3000, 10), limit=10)) == ["a", "b"]
    assert grid.crossing((101, 0, 1999, 50), limit=10) == []
    grid.place("a", (5000, 5000, 5100, 5050))
    assert grid.crossing((0, 0, 200, 60), limit=10) == []
    assert grid.crossing((4900, 4900, 5200, 5200), limit=10) == ["a"]
    grid.remove("a")
    assert grid.crossing((4900, 4900, 5200, 5200), limit=10) == [] and len(grid) == 1


def test_a_node_spanning_cells_is_found_once():
    grid: RectGrid[str] = RectGrid()
    grid.place("wide", (0, 0, 3 * CELL, 2 * CELL))
    assert grid.crossing((0, 0, 3 * CELL, 2 * CELL), limit=1) == ["wide"]


def test_gives_up_on_a_crowded_or_huge_band():
    grid: RectGrid[int] = RectGrid()
    for index in range(100):
        grid.place(index, (index * 200.0, 0, index * 200.0 + 150, 60))
    assert grid.crossing((0, 0, 100 * 200.0, 60), limit=20) is None
    assert len(grid.crossing((0, 0, 19 * 200.0 + 10, 60), limit=20)) == 20
    huge = (0, 0, CELL * (MAX_CELLS + 1), CELL / 2)
    assert grid.crossing(huge, limit=1000) is None
