"""Compile a graph into a ``torch.nn.Module`` whose forward is generated straight-line code.

The forward source comes from :mod:`dlstudio.core.codegen` (the same text the exporter
writes), compiled once: a training step costs what the hand-written module costs.
Submodules are registered under the node ids, so state_dict keys read ``conv_1.weight``.
"""

from __future__ import annotations

import linecache
from typing import Any

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.codegen import ModulePlan, forward_source, plan_module
from dlstudio.core.graph import Graph
from dlstudio.core.io import GraphSource, load_graph
from dlstudio.core.spec import Construct


def compile_graph(source: GraphSource | Analysis) -> Any:
    """Build a fresh ``torch.nn.Module`` for a valid graph (raises GraphInvalidError)."""
    analysis = source if isinstance(source, Analysis) else analyze(_as_graph(source))
    return build_module(plan_module(analysis))


def _as_graph(source: GraphSource) -> Graph:
    return source if isinstance(source, Graph) else load_graph(source)


def build_module(plan: ModulePlan) -> Any:
    """Instantiate the planned module: submodules from their constructs, forward from source."""
    import torch
    from torch import nn

    from dlstudio.core.helpers import SUPPORT

    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "F": torch.nn.functional,
                                 "math": __import__("math"), **SUPPORT}
    source = "class _Forward:\n" + forward_source(plan)
    filename = f"<dlstudio {plan.class_name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
    code = compile(source, filename, "exec")
    exec(code, namespace)  # noqa: S102  (generated from checked identifiers and literals only)
    forward = namespace["_Forward"].forward

    def init(self: nn.Module) -> None:
        nn.Module.__init__(self)
        for sub in plan.submodules:
            module = instantiate(sub.construct)
            setattr(self, sub.attr, module.requires_grad_(False) if sub.frozen else module)

    cls = type(plan.class_name, (nn.Module,), {"__init__": init, "forward": forward,
                                               "__module__": "dlstudio.compiled"})
    return cls()


def instantiate(construct: Construct) -> Any:
    """Create the module a :class:`Construct` describes."""
    from torch import nn

    from dlstudio.core.helpers import SUPPORT

    if construct.cls.startswith("nn."):
        factory = getattr(nn, construct.cls[3:])
    else:
        factory = SUPPORT[construct.cls]
    return factory(*construct.args, **dict(construct.kwargs))
