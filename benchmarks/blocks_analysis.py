"""How long the published models built from blocks take to analyse (target: GPT-2 small in 20 ms).

A block is analysed once per parameter set and input types, not once per copy: GPT-2's twelve
layers are one analysis of its Block. Each example is loaded from its file, then analysed
"cold" (every cache cleared, the file's block scope included: a file opened for the first
time) and "warm" (the editor re-analysing after an edit outside the blocks); figures are
medians of many runs, wall-clock and CPU time side by side. Node counts show what analysing
the same models flat would have to walk.

    python benchmarks/blocks_analysis.py [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlstudio.core import catalogue  # noqa: E402
from dlstudio.core.analysis import Analysis, analyze, clear_caches  # noqa: E402
from dlstudio.core.io import load_graph  # noqa: E402

EXAMPLES = ("gpt2_small", "mamba_130m", "transformer_base", "resnet18", "resnet50")
TARGET_MS = 20.0


def _flat_nodes(analysis: Analysis) -> int:
    """Nodes the model holds once every block copy is expanded."""
    total = 0
    for node in analysis.graph.nodes:
        copies = analysis.blocks.get(node.id)
        total += sum(_flat_nodes(copy.analysis) for copy in copies) if copies else 1
    return total


def _time(path: Path, runs: int, cold: bool) -> tuple[float, float]:
    graph = load_graph(path)
    analyze(graph)
    walls, cpus = [], []
    for _ in range(runs):
        if cold:
            clear_caches()
            catalogue._SCOPES.clear()  # noqa: SLF001  (a file seen for the first time)
        wall, cpu = time.perf_counter(), time.process_time()
        analyze(graph)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(f"{'example':18} {'top nodes':>9} {'all nodes':>9} {'params':>13}  {'cold ms':>8} {'cpu':>6}  "
          f"{'warm ms':>8} {'cpu':>6}")
    for name in EXAMPLES:
        path = ROOT / "graphs" / f"{name}.json"
        analysis = analyze(load_graph(path))
        cold, cold_cpu = _time(path, args.runs, cold=True)
        warm, warm_cpu = _time(path, args.runs, cold=False)
        print(f"{name:18} {len(analysis.graph.nodes):9} {_flat_nodes(analysis):9} {analysis.total_params:13,}  "
              f"{cold:8.2f} {cold_cpu:6.2f}  {warm:8.2f} {warm_cpu:6.2f}")
    gpt2, _ = _time(ROOT / "graphs" / "gpt2_small.json", args.runs, cold=True)
    print(f"GPT-2 small cold analysis {gpt2:.2f} ms: {'meets' if gpt2 <= TARGET_MS else 'misses'} the "
          f"{TARGET_MS:.0f} ms target ({gpt2 / TARGET_MS:.2f} of it)")


if __name__ == "__main__":
    main()
