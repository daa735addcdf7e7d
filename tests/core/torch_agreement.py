"""Compare the analysis of one layer with what torch itself does for the same parameters.

``assert_agrees`` builds the torch module straight from the parameters (not through the
catalogue's constructor rule), runs a batch in training mode and checks both directions:
torch refuses (or returns an empty tensor) <=> the analysis reports an error; otherwise the
inferred shape (also with symbolic sizes, resolved) and parameter count equal torch's.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from dlstudio import analyze, load_graph
from dlstudio.core.analysis import Analysis
from tests.core.layer_check import layer_graph

#: Batch size of the torch run; larger than any channel count the tests draw, so torch
#: never mistakes the batch for a channel dimension by coincidence.
BATCH = 5


def analysed(type_name: str, params: dict[str, Any], shape: tuple, dtype: str = "float32") -> Analysis:
    return analyze(load_graph(layer_graph(type_name, params, [shape], [dtype])))


def torch_outcome(type_name: str, ctor: dict[str, Any], shape: tuple,
                  dtype: str = "float32") -> tuple[tuple[int, ...], int] | Exception:
    """torch's output shape for a batch of ``shape`` and its parameter count, or the exception."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in ctor.items()}
    size = (BATCH, *shape)
    data = torch.randn(size) if dtype == "float32" else torch.randint(0, 4, size, dtype=getattr(torch, dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = getattr(nn, type_name)(**kwargs).train()
            with torch.no_grad():
                result = tuple(module(data).shape)
        except (RuntimeError, ValueError, TypeError) as error:
            return error
    if 0 in result:  # some kernels return an empty tensor where others raise; both are refused
        return ValueError(f"empty output {result}")
    return result, sum(p.numel() for p in module.parameters())


def assert_agrees(type_name: str, params: dict[str, Any], ctor: dict[str, Any], shape: tuple,
                  symbolic: dict[int, str] | None = None, dtype: str = "float32") -> Analysis:
    """Analysis and torch agree on ``params`` (``ctor`` adds the inferred values torch needs).

    ``symbolic`` maps positions of ``shape`` to names, checked again with those sizes symbolic.
    """
    outcome = torch_outcome(type_name, ctor, shape, dtype)
    analysis = analysed(type_name, params, shape, dtype)
    errors = [d.one_line() for d in analysis.errors]
    if isinstance(outcome, Exception):
        assert errors, f"torch refuses ({outcome}) but the analysis accepts {params} on {shape}"
        return analysis
    assert not errors, f"torch gives {outcome} but the analysis reports {errors}"
    shape_out, count = outcome
    assert analysis.ports[("layer", "output")].concrete({"N": BATCH}) == shape_out
    assert analysis.param_counts["layer"] == count
    if symbolic:
        named = tuple(symbolic.get(i, size) for i, size in enumerate(shape))
        loose = analysed(type_name, params, named, dtype)
        sizes = {"N": BATCH, **{name: shape[i] for i, name in symbolic.items()}}
        assert loose.ok, [d.one_line() for d in loose.errors]
        assert loose.ports[("layer", "output")].concrete(sizes) == shape_out, loose.ports[("layer", "output")]
    return analysis
