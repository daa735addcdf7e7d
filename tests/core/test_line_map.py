"""Generated code knows its lines: the map code generation records as it writes, and a
compiled graph's runtime error that names the node it happened in."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
import torch

from dlstudio import analyze, compile_graph, load_graph
from dlstudio.core.codegen import forward_code, plan_module
from dlstudio.core.errors import NodeRuntimeError
from dlstudio.core.export import export_python, module_code
from tests.conftest import GRAPHS
from tests.core.source_lines import lines_by_node

LONG = "a_node_id_long_enough_that_every_statement_using_it_has_to_wrap"  # 63 of at most 64


def chain(*layers: tuple[str, str, dict], shape: list | None = None, **node_extra: dict) -> dict:
    """Input ``x`` -> layers ``(id, type, params)`` -> Output ``out``; ``node_extra`` adds keys per id."""
    nodes = [{"id": "x", "type": "Input", "params": {"shape": shape or [4]}}]
    nodes += [{"id": i, "type": t, "params": p, **node_extra.get(i, {})} for i, t, p in layers]
    nodes.append({"id": "out", "type": "Output"})
    ids = [n["id"] for n in nodes]
    return {"format": "dlstudio.graph", "version": 1, "name": "lines", "description": "A chain.",
            "nodes": nodes, "edges": [{"source": a, "target": b} for a, b in zip(ids, ids[1:], strict=False)]}


LABELLED = chain(("fc1", "Linear", {"out_features": 8}), (LONG, "Tanh", {}),
                 ("fc2", "Linear", {"out_features": 3}),
                 fc1={"label": "first layer", "frozen": True}, fc2={"label": "head"})


def spanned_lines(spans: list[tuple[int, int]]) -> set[int]:
    return {line for first, count in spans for line in range(first, first + count)}


@pytest.mark.parametrize("source", [*sorted(GRAPHS.glob("*.json")), LABELLED],
                         ids=lambda s: s.stem if isinstance(s, Path) else "labelled-frozen-wrapped")
def test_every_node_maps_to_the_lines_that_construct_and_call_it(source) -> None:
    analysis = analyze(load_graph(source))
    plan = plan_module(analysis)
    code = module_code(plan, analysis.graph)
    assert code.text == export_python(analysis)
    expected = lines_by_node(code.text, plan)
    assert {node: spanned_lines(spans) for node, spans in code.spans.items()} == expected
    constructed = {sub.node_id: sub.attr for sub in plan.submodules}
    for node in analysis.graph.nodes:
        if node.id not in analysis.live and node.type not in ("Input", "Output"):
            assert node.id not in code.spans, node.id
            continue
        spans = code.spans[node.id]
        texts = ["\n".join(code.lines[first:first + count]) for first, count in spans]
        if node.id in constructed:
            attr = constructed[node.id]
            assert f"self.{attr} = " in texts[0], node.id  # __init__
            assert f"self.{attr}(" in texts[-1] or f"in self.{attr}:" in texts[-1], node.id  # forward


def test_the_compiled_forward_uses_the_exported_forward_and_its_map() -> None:
    plan = plan_module(analyze(load_graph(LABELLED)))
    code = module_code(plan, load_graph(LABELLED))
    forward = forward_code(plan)
    offset = code.lines.index(forward.lines[0])
    assert code.lines[offset:offset + len(forward.lines)] == forward.lines
    for node_id, spans in forward.spans.items():
        assert [(first + offset, count) for first, count in spans] == code.spans[node_id][-len(spans):]


# -- runtime errors ---------------------------------------------------------------------------

#: Sizes check out for any T, but fc2 wants 4 values: a longer input fails only at run time.
SYMBOLIC = chain(("act", "ReLU", {}), ("fc2", "Linear", {"in_features": 4, "out_features": 3}),
                 shape=["T"])


def test_a_runtime_error_names_its_node_and_chains_the_original() -> None:
    analysis = analyze(load_graph(SYMBOLIC))
    assert analysis.ok, analysis.errors
    module = compile_graph(analysis)
    assert module(torch.randn(2, 4)).shape == (2, 3)
    with pytest.raises(NodeRuntimeError) as caught:
        module(torch.randn(2, 6))
    error = caught.value
    assert str(error) == "node 'fc2' (Linear): mat1 and mat2 shapes cannot be multiplied (2x6 and 4x3)"
    assert (error.node_id, error.node_type) == ("fc2", "Linear")
    assert isinstance(error, RuntimeError) and type(error.__cause__) is RuntimeError
    shown = traceback.extract_tb(error.__cause__.__traceback__)
    assert shown[0].line == "fc2 = self.fc2(act)"  # the generated line, as a traceback prints it


def test_a_statement_over_several_lines_still_names_its_node() -> None:
    graph = chain((LONG, "Linear", {"in_features": 4, "out_features": 3}), shape=["T"])
    module = compile_graph(load_graph(graph))
    _first, count = module_code(plan_module(analyze(load_graph(graph))), load_graph(graph)).spans[LONG][-1]
    assert count > 1
    with pytest.raises(NodeRuntimeError, match=f"^node '{LONG}' \\(Linear\\): mat1 and mat2"):
        module(torch.randn(2, 5))


def test_a_reshape_that_fails_at_run_time_names_it() -> None:
    graph = chain(("grid", "Reshape", {"shape": [2, -1]}), shape=[8])
    module = compile_graph(load_graph(graph))
    with pytest.raises(NodeRuntimeError, match=r"^node 'grid' \(Reshape\): shape '\[2, 2, -1\]' is invalid"):
        module(torch.randn(2, 7))


def test_out_of_memory_passes_through_unchanged() -> None:
    """The trainer treats running out of memory on its own; the error must keep its type."""
    module = compile_graph(load_graph(SYMBOLIC))

    def exhausted(_module, _inputs):
        raise torch.OutOfMemoryError("out of memory")

    module.fc2.register_forward_pre_hook(exhausted)
    with pytest.raises(torch.OutOfMemoryError) as caught:
        module(torch.randn(2, 4))
    assert not isinstance(caught.value, NodeRuntimeError)
