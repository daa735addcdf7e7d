"""How long validating and inferring a 1,000-node graph takes (target: 20 ms).

The graph is a deep residual network: a convolutional trunk of Conv2d/BatchNorm2d/ReLU/Add
blocks, then a residual MLP of Linear/LayerNorm/GELU/Add blocks, then a Linear head. Each run
parses the JSON text and builds the document (timed apart: "load"), then analyses it
(validation plus shape inference: "analyse", the figure the target is about); the figures are
medians of many runs. "cold" clears analysis's caches before every run (a file opened for the first time);
"warm" keeps them (the editor re-analysing after an edit). The wall-clock figure is the one
the target is about; CPU time is printed too, since a busy machine inflates wall time.
torch is never imported (checked at the end).

    python benchmarks/analysis_speed.py [--nodes 1000] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlstudio.core.analysis import analyze, clear_caches  # noqa: E402
from dlstudio.core.io import graph_from_dict, parse_json, paused_gc  # noqa: E402

TARGET_MS = 20.0


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[dict] = []
        self.edges: list[dict] = []

    def add(self, kind: str, source: str | list[str] | None, **params: object) -> str:
        node_id = f"{kind.lower()}_{len(self.nodes)}"
        node: dict = {"id": node_id, "type": kind}
        if params:
            node["params"] = params
        node["position"] = [len(self.nodes) * 40, 0]
        self.nodes.append(node)
        sources = [source] if isinstance(source, str) else source or []
        for index, end in enumerate(sources):
            target = f"{node_id}.in{index}" if kind == "Add" else node_id
            self.edges.append({"source": end, "target": target})
        return node_id


def residual_graph(total: int = 1000) -> dict:
    """A realistic deep residual network of about ``total`` nodes."""
    b = _Builder()
    x = b.add("Input", None, shape=[16, 8, 8])
    x = b.add("ReLU", b.add("BatchNorm2d", b.add("Conv2d", x, out_channels=16, kernel_size=3, padding=1)))
    while len(b.nodes) < total // 2:
        y = b.add("Conv2d", x, out_channels=16, kernel_size=3, padding=1, bias=False)
        y = b.add("BatchNorm2d", b.add("ReLU", b.add("BatchNorm2d", y)))
        y = b.add("Conv2d", y, out_channels=16, kernel_size=3, padding=1, bias=False)
        x = b.add("ReLU", b.add("Add", [x, b.add("BatchNorm2d", y)]))
    x = b.add("Flatten", b.add("AdaptiveAvgPool2d", x, output_size=1))
    x = b.add("Linear", x, out_features=64)
    while len(b.nodes) < total - 6:
        y = b.add("GELU", b.add("LayerNorm", b.add("Linear", x, out_features=128)))
        x = b.add("Add", [x, b.add("Linear", y, out_features=64)])
    x = b.add("Linear", b.add("ReLU", b.add("LayerNorm", x)), out_features=10)
    b.add("Output", x)
    return {"format": "dlstudio.graph", "version": 1, "name": "deep residual", "description": "",
            "nodes": b.nodes, "edges": b.edges}


def load(text: bytes) -> object:
    with paused_gc():  # what load_graph does around parsing
        return graph_from_dict(parse_json(text), "<benchmark>")


def checked_analysis(graph: object) -> object:
    analysis = analyze(graph)
    if not analysis.ok:
        raise SystemExit("benchmark graph is invalid: " + analysis.errors[0].one_line())
    return analysis


class _Timer:
    """Wall-clock and CPU milliseconds of one timed block, appended to two lists."""

    def __init__(self, wall: list[float], cpu: list[float]) -> None:
        self.wall, self.cpu = wall, cpu

    def __enter__(self) -> None:
        self.start, self.start_cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *_: object) -> None:
        self.wall.append((time.perf_counter() - self.start) * 1000)
        self.cpu.append((time.process_time() - self.start_cpu) * 1000)


def measure(text: bytes, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Wall-clock and CPU milliseconds of each step, cold and warm runs interleaved (so both
    see the same machine load)."""
    labels = ("load", "analyse, cold", "analyse, warm", "load + analyse, cold")
    times: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in labels}
    for _ in range(runs):
        clear_caches()
        with _Timer(*times["load"]):
            graph = load(text)
        with _Timer(*times["analyse, cold"]):
            analysis = checked_analysis(graph)
        times["load + analyse, cold"][0].append(times["load"][0][-1] + times["analyse, cold"][0][-1])
        times["load + analyse, cold"][1].append(times["load"][1][-1] + times["analyse, cold"][1][-1])
        del analysis  # freeing the result is not part of analysing
        with _Timer(*times["analyse, warm"]):
            analysis = checked_analysis(graph)
        del analysis
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    document = residual_graph(args.nodes)
    text = json.dumps(document).encode()
    checked_analysis(load(text))  # warm up: imports and the catalogue's pydantic models
    kinds = sorted({node["type"] for node in document["nodes"]})
    print(f"graph: {len(document['nodes'])} nodes, {len(document['edges'])} edges, "
          f"{len(text) / 1024:.0f} KiB of JSON; types: {', '.join(kinds)}")
    medians = {}
    for label, (wall, cpu) in measure(text, args.runs).items():
        medians[label] = statistics.median(wall)
        target = f"; target <= {TARGET_MS:.0f} ms" if label.startswith("analyse") else ""
        print(f"{label}: median {medians[label]:.1f} ms wall (min {min(wall):.1f}), "
              f"{statistics.median(cpu):.1f} ms CPU, {args.runs} runs{target}")
    if "torch" in sys.modules:
        print("error: torch was imported")
        return 1
    return 0 if medians["analyse, cold"] <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
