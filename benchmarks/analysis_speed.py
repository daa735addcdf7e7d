"""How long loading, validating and inferring a 1,000-node graph takes (target: 20 ms).

The graph is a deep residual network: a convolutional trunk of Conv2d/BatchNorm2d/ReLU/Add
blocks, then a residual MLP of Linear/LayerNorm/GELU/Add blocks, then a Linear head. Each run
parses the JSON text, builds the document and analyses it; the figure is the median of many
runs. "cold" clears analysis's caches before every run (a file opened for the first time);
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


def load_and_analyze(text: bytes) -> object:
    with paused_gc():  # what load_graph does around parsing
        graph = graph_from_dict(parse_json(text), "<benchmark>")
    analysis = analyze(graph)
    if not analysis.ok:
        raise SystemExit("benchmark graph is invalid: " + analysis.errors[0].one_line())
    return analysis


def measure(text: bytes, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Wall-clock and CPU milliseconds of each run, cold and warm runs interleaved (so both
    see the same machine load)."""
    times: dict[str, tuple[list[float], list[float]]] = {"cold": ([], []), "warm": ([], [])}
    for _ in range(runs):
        for label in ("cold", "warm"):
            if label == "cold":
                clear_caches()
            start, start_cpu = time.perf_counter(), time.process_time()
            analysis = load_and_analyze(text)
            times[label][0].append((time.perf_counter() - start) * 1000)
            times[label][1].append((time.process_time() - start_cpu) * 1000)
            del analysis  # freeing the result is not part of loading it
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    document = residual_graph(args.nodes)
    text = json.dumps(document).encode()
    load_and_analyze(text)  # warm up: imports and the catalogue's pydantic models
    kinds = sorted({node["type"] for node in document["nodes"]})
    print(f"graph: {len(document['nodes'])} nodes, {len(document['edges'])} edges, "
          f"{len(text) / 1024:.0f} KiB of JSON; types: {', '.join(kinds)}")
    medians = {}
    for label, (wall, cpu) in measure(text, args.runs).items():
        medians[label] = statistics.median(wall)
        print(f"load + validate + infer, {label}: median {medians[label]:.1f} ms wall "
              f"(min {min(wall):.1f}), {statistics.median(cpu):.1f} ms CPU, {args.runs} runs; "
              f"target <= {TARGET_MS:.0f} ms")
    if "torch" in sys.modules:
        print("error: torch was imported")
        return 1
    return 0 if medians["cold"] <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
