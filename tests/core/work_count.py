"""Counting work instead of timing it: the Python lines a call executes, a number that does not
depend on the machine's load, so a step that turns quadratic fails a test deterministically."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any


def lines_run(step: Callable[[], object]) -> int:
    """How many Python lines ``step()`` executes (loop iterations included)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Callable | None:
        nonlocal count
        count += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        step()
    finally:
        sys.settrace(previous)
    return count


def growth(step_for: Callable[[int], Callable[[], object]], nodes: int, repeats: int = 1) -> float:
    """The work of ``step_for(2 * nodes)`` over that of ``step_for(nodes)``: about 2 when linear,
    4 when quadratic. Both steps are built (graphs generated) and run once before their work is
    counted, so one-time work (imports, first use of a model) counts in neither; each counts its
    least of ``repeats`` runs, so work that only sometimes falls in a run (a timer's) counts in
    neither."""
    small, large = step_for(nodes), step_for(2 * nodes)
    small()
    large()
    return min(lines_run(large) for _ in range(repeats)) / min(lines_run(small) for _ in range(repeats))


def chain_document(total: int) -> dict:
    """Input, then Linear and ReLU in turn, then Output: ``total`` nodes in a line."""
    nodes: list[dict] = [{"id": "x", "type": "Input", "params": {"shape": [16]}}]
    edges: list[dict] = []
    while len(nodes) < total - 1:
        kind = "Linear" if len(nodes) % 2 else "ReLU"
        node: dict = {"id": f"n{len(nodes)}", "type": kind}
        if kind == "Linear":
            node["params"] = {"out_features": 16}
        edges.append({"source": nodes[-1]["id"], "target": node["id"]})
        nodes.append(node)
    edges.append({"source": nodes[-1]["id"], "target": "out"})
    nodes.append({"id": "out", "type": "Output"})
    return {"format": "dlstudio.graph", "version": 1, "name": "chain", "nodes": nodes, "edges": edges}


def residual_document(blocks: int) -> dict:
    """Input, ``blocks`` residual blocks (Linear, ReLU, Linear, Add with the block input), Output:
    branches, joins and skip edges, 4 nodes a block."""
    nodes: list[dict] = [{"id": "x", "type": "Input", "params": {"shape": [16]}}]
    edges: list[dict] = []
    previous = "x"
    for index in range(blocks):
        a, act, b, join = f"a{index}", f"act{index}", f"b{index}", f"add{index}"
        nodes += [{"id": a, "type": "Linear", "params": {"out_features": 16}}, {"id": act, "type": "ReLU"},
                  {"id": b, "type": "Linear", "params": {"out_features": 16}}, {"id": join, "type": "Add"}]
        edges += [{"source": previous, "target": a}, {"source": a, "target": act},
                  {"source": act, "target": b}, {"source": b, "target": f"{join}.in0"},
                  {"source": previous, "target": f"{join}.in1"}]
        previous = join
    nodes.append({"id": "out", "type": "Output"})
    edges.append({"source": previous, "target": "out"})
    return {"format": "dlstudio.graph", "version": 1, "name": "residual", "nodes": nodes, "edges": edges}


def fan_out_document(total: int) -> dict:
    """Input, then a line of Adds that each add the Input again: one node feeds every layer,
    so its edges span from one column to every other."""
    nodes: list[dict] = [{"id": "x", "type": "Input", "params": {"shape": [16]}}]
    edges: list[dict] = []
    previous = "x"
    while len(nodes) < total - 1:
        join = f"add{len(nodes)}"
        nodes.append({"id": join, "type": "Add"})
        edges += [{"source": previous, "target": f"{join}.in0"}, {"source": "x", "target": f"{join}.in1"}]
        previous = join
    nodes.append({"id": "out", "type": "Output"})
    edges.append({"source": previous, "target": "out"})
    return {"format": "dlstudio.graph", "version": 1, "name": "fan-out", "nodes": nodes, "edges": edges}
