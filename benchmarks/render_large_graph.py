"""Render the full view of a 1,000-node graph offscreen and print the time per frame.

    QT_QPA_PLATFORM=offscreen python benchmarks/render_large_graph.py [--nodes 1000] [--frames 60]

The graph is a deep stack of Linear/activation blocks with Bilinear skip joins (long edges),
laid out by the canvas. Each frame paints the whole viewport (1600x900) into a QImage through
the view's real paint path. Reported: building the scene, the full view (everything visible,
level of detail on), a 100% zoom view and a pan sequence; the target is <= 16 ms per frame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QPoint  # noqa: E402
from PySide6.QtGui import QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from dlstudio.core.graph import Edge, Graph, Node  # noqa: E402
from dlstudio.ui.canvas import GraphView  # noqa: E402
from dlstudio.ui.document import GraphDocument  # noqa: E402

ACTIVATIONS = ("ReLU", "GELU", "Tanh", "SiLU")


def large_graph(count: int) -> Graph:
    """Input -> blocks of Linear, activation, Linear and a Bilinear join with the block input."""
    nodes = [Node(id="x", type="Input", params={"shape": [64]})]
    edges: list[Edge] = []
    previous, index = "x", 0
    while len(nodes) < count - 1:
        fc1, act, fc2, join = (f"fc{index}a", f"act{index}", f"fc{index}b", f"join{index}")
        nodes += [
            Node(id=fc1, type="Linear", params={"out_features": 64}),
            Node(id=act, type=ACTIVATIONS[index % len(ACTIVATIONS)]),
            Node(id=fc2, type="Linear", params={"out_features": 64}),
            Node(id=join, type="Bilinear", params={"out_features": 64}),
        ]
        edges += [Edge(source=previous, target=fc1), Edge(source=fc1, target=act),
                  Edge(source=act, target=fc2), Edge(source=fc2, target=f"{join}.input1"),
                  Edge(source=previous, target=f"{join}.input2")]
        previous, index = join, index + 1
    nodes.append(Node(id="out", type="Output"))
    edges.append(Edge(source=previous, target="out"))
    return Graph(name="large", nodes=nodes[:count], edges=edges)


def frame_times(view: GraphView, frames: int, move=None) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds to paint the whole viewport into an image, per frame.

    CPU time is reported too because on a shared machine the wall clock also counts the time
    other processes hold the cores.
    """
    image = QImage(view.viewport().size(), QImage.Format.Format_ARGB32_Premultiplied)
    wall, cpu = [], []
    for frame in range(frames):
        if move is not None:
            move(frame)
        start, start_cpu = time.perf_counter(), time.process_time()
        painter = QPainter(image)
        view.viewport().render(painter, QPoint())
        painter.end()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def report(name: str, times: tuple[list[float], list[float]]) -> None:
    wall, cpu = (series[1:] or series for series in times)
    print(f"{name:<26} first {times[0][0]:6.1f} ms  median {statistics.median(wall):5.1f} ms  "
          f"p90 {sorted(wall)[int(len(wall) * 0.9) - 1]:5.1f} ms  cpu median {statistics.median(cpu):5.1f} ms"
          f"  ({len(times[0])} frames)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    graph = large_graph(args.nodes)
    start = time.perf_counter()
    document = GraphDocument(graph)
    view = GraphView(document)
    view.resize(1600, 900)
    view.show()
    app.processEvents()
    built = (time.perf_counter() - start) * 1000
    print(f"{len(graph.nodes)} nodes, {len(graph.edges)} edges; analysis + scene + layout {built:.0f} ms"
          f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    view.fit_all()
    app.processEvents()
    report(f"full view (zoom {view.zoom():.3f})", frame_times(view, args.frames))
    view.set_zoom(1.0)
    view.centerOn(view.scene_.nodes[graph.nodes[len(graph.nodes) // 2].id])
    report("100% zoom", frame_times(view, args.frames))
    view.fit_all()
    view.set_zoom(0.25)
    bar = view.horizontalScrollBar()
    report("pan at 25% zoom", frame_times(view, args.frames, lambda f: bar.setValue(bar.value() + 40)))


if __name__ == "__main__":
    main()
