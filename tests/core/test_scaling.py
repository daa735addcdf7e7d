"""Validate, analyze, summary, export and layout do work in proportion to the graph: doubling
the nodes at most about doubles the Python lines they run (a quadratic step would quadruple
them). Counted, not timed, so a busy machine cannot make these fail or pass."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dlstudio.core.analysis import analyze, clear_caches
from dlstudio.core.export import export_python
from dlstudio.core.graph import Graph
from dlstudio.core.io import graph_from_dict, graph_to_json, parse_json
from dlstudio.core.layout import WRAP, layered_layout
from dlstudio.core.summary import summarize
from tests.core.work_count import chain_document, fan_out_document, growth, residual_document

#: How much more work twice the nodes may take: 2 when linear, with room for n log n sorting.
LINEAR = 2.2

#: Graphs of about n nodes: one line, residual blocks (branches, joins, skip edges), and one
#: node feeding every layer (edges as long as the graph).
SHAPES: dict[str, Callable[[int], dict]] = {"chain": chain_document, "residual": lambda n: residual_document(n // 4),
                                           "fan-out": fan_out_document}


def _validate(document: dict) -> Callable[[], object]:
    """What ``dlstudio validate`` does: parse the text, build the document, analyse it."""
    text = graph_to_json(graph_from_dict(document))
    return lambda: analyze(graph_from_dict(parse_json(text)))


def _on_graph(work: Callable[[Graph], object], cold: bool = True) -> Callable[[dict], Callable[[], object]]:
    """A step doing ``work`` on the built document, with analysis's caches cleared first
    (``cold``: a file opened for the first time)."""
    def step_for(document: dict) -> Callable[[], object]:
        graph = graph_from_dict(document)

        def run() -> object:
            if cold:
                clear_caches()
            return work(graph)

        return run

    return step_for


STEPS: dict[str, Callable[[dict], Callable[[], object]]] = {
    "validate": _validate,
    "analyze": _on_graph(analyze),
    "summary": _on_graph(lambda graph: summarize(graph).as_table()),
    "layout": _on_graph(lambda graph: layered_layout(graph, wrap=WRAP), cold=False),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("step", sorted(STEPS))
def test_doubling_the_nodes_at_most_doubles_the_work(step, shape):
    assert growth(lambda nodes: STEPS[step](SHAPES[shape](nodes)), 400) <= LINEAR


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_export_work_grows_linearly(shape):
    export = _on_graph(export_python)
    assert growth(lambda nodes: export(SHAPES[shape](nodes)), 120) <= LINEAR


def test_a_quadratic_step_is_caught():
    """The measure itself: a scan of the graph per node more than doubles."""
    def step_for(nodes: int) -> Callable[[], object]:
        graph = graph_from_dict(chain_document(nodes))
        return lambda: [graph.node(node.id) for node in graph.nodes]

    assert growth(step_for, 400) > 3.5
