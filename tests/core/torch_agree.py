"""Compare one layer's analysis with torch run directly, for property tests.

``agree("Flatten", {"start_dim": 2}, [(3, 4, 5)], lambda x: nn.Flatten(2)(x))`` analyses
Input(s) -> layer -> Output(s) and runs the reference on a batch of the same shapes. Torch
refusing the inputs must come with an analysis error and nothing else; torch accepting them
must come with the inferred shapes and dtypes of what it returned, the same parameter count,
and the same values from the compiled graph (weights copied from the reference module).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlstudio import Analysis, analyze, compile_graph, export_python, load_graph
from dlstudio.core.catalogue import CATALOGUE
from tests.core.layer_check import BATCH, layer_graph, sample_inputs

RUFF = Path(sys.executable).with_name("ruff")

#: What torch raises for inputs or arguments it refuses.
REFUSALS = (RuntimeError, ValueError, IndexError, AssertionError, TypeError)


def analyse(type_name: str, params: dict[str, Any], shapes: list[tuple],
            dtypes: list[str] | None = None) -> Analysis:
    return analyze(load_graph(layer_graph(type_name, params, shapes, dtypes)))


def agree(type_name: str, params: dict[str, Any], shapes: list[tuple],
          reference: Callable[..., Any], dtypes: list[str] | None = None,
          module: nn.Module | None = None, sizes: dict[str, int] | None = None) -> Analysis:
    """Assert that analysis and torch agree; ``reference`` maps input tensors to the outputs
    (a tensor, or a tuple in port order); ``module`` holds its weights, if any."""
    analysis = analyse(type_name, params, shapes, dtypes)
    inputs = sample_inputs(analysis, sizes)
    try:
        expected = _run(reference, inputs)
    except REFUSALS as error:
        assert analysis.errors, f"torch refuses ({error}) but the analysis accepts"
        return analysis
    assert analysis.ok, f"torch accepts but the analysis says {[d.one_line() for d in analysis.errors]}"
    spec = CATALOGUE[type_name]
    for port, tensor in zip(spec.output_ports(analysis.params["layer"]), expected, strict=True):
        inferred = analysis.ports[("layer", port)]
        assert inferred.concrete({"N": BATCH, **(sizes or {})}) == tuple(tensor.shape), (port, inferred, tensor.shape)
        assert inferred.dtype == str(tensor.dtype).removeprefix("torch."), (port, inferred.dtype, tensor.dtype)
    count = sum(p.numel() for p in module.parameters()) if module is not None else 0
    assert analysis.param_counts["layer"] == count
    _same_values(analysis, inputs, expected, module)
    return analysis


def _run(reference: Callable[..., Any], inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The reference's outputs, flat (a None left out); an empty one counts as refused,
    since DL Studio refuses shapes with a zero size."""
    with torch.no_grad():
        result = tuple(t for t in _flat(reference(*inputs)) if t is not None)
    if any(0 in t.shape for t in result):
        raise ValueError(f"empty output {[tuple(t.shape) for t in result]}")
    return result


def _flat(value: Any) -> list[Any]:
    """Nested tuples of outputs, ``(output, (h_n, c_n))``, as one list in port order."""
    return [t for v in value for t in _flat(v)] if isinstance(value, tuple) else [value]


def _same_values(analysis: Analysis, inputs: list[torch.Tensor], expected: tuple,
                 module: nn.Module | None) -> None:
    compiled = compile_graph(analysis).eval()
    if module is not None:
        compiled.layer.load_state_dict(module.state_dict(), strict=True)
    with torch.no_grad():
        result = compiled(*inputs)
    result = result if isinstance(result, tuple) else (result,)
    for ours, theirs in zip(result, expected, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def errors(type_name: str, params: dict[str, Any], shapes: list[tuple],
           dtypes: list[str] | None = None) -> list[str]:
    """The analysis errors of one layer as one-line messages."""
    return [d.one_line() for d in analyse(type_name, params, shapes, dtypes).errors]


def ruff_problems(source: str) -> str:
    """What ``ruff format --check`` and ``ruff check`` say about ``source`` ('' when clean)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.py"
        path.write_text(source)
        outputs = []
        for args in (["format", "--isolated", "--diff"],
                     ["check", "--isolated", "--select", "E,F,W,I,B,UP", "--no-cache"]):
            done = subprocess.run([str(RUFF), *args, str(path)], capture_output=True, text=True)
            if done.returncode:
                outputs.append(done.stdout + done.stderr)
        return "\n".join(outputs)


def exported_matches_compiled(analysis: Analysis, sizes: dict[str, int] | None = None) -> str:
    """Export ``analysis``, load the compiled module's weights strictly into the exported
    class, check both give identical outputs, and return the exported source."""
    source = export_python(analysis)
    namespace: dict[str, Any] = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102
    from dlstudio.core.naming import class_name

    compiled = compile_graph(analysis).eval()
    exported = namespace[class_name(analysis.graph.name)]().eval()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    inputs = sample_inputs(analysis, sizes)
    with torch.no_grad():
        ours, theirs = compiled(*inputs), exported(*inputs)
    for a, b in zip(ours if isinstance(ours, tuple) else (ours,),
                    theirs if isinstance(theirs, tuple) else (theirs,), strict=True):
        assert torch.equal(a, b)
    return source
