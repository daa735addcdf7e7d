"""Compile a graph into a ``torch.nn.Module`` whose forward is generated straight-line code.

The forward source comes from :mod:`dlstudio.core.codegen` (the same text the exporter
writes), compiled once: a training step costs what the hand-written module costs.
Submodules are registered under the node ids, so state_dict keys read ``conv_1.weight``.

An error inside the forward is re-raised as :class:`NodeRuntimeError` naming the node whose
line failed (found through the code's line map). The forward's body sits in a ``try`` that
costs nothing until something raises; only then is the traceback read.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
import sys
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.codegen import BlockUse, Code, ModulePlan, TiePlan, forward_code, plan_module
from dlstudio.core.errors import NodeRuntimeError
from dlstudio.core.graph import Graph
from dlstudio.core.io import GraphSource, load_graph
from dlstudio.core.spec import Construct

#: The function the forward's ``except`` calls; a dunder, so no variable or class mangles it.
BLAME = "__dlstudio_blame__"
#: The forward is compiled inside ``class _Forward:``, one line above its own first line.
CLASS_LINE = "class _Forward:\n"


def compile_graph(source: GraphSource | Analysis) -> Any:
    """Build a fresh ``torch.nn.Module`` for a valid graph (raises GraphInvalidError)."""
    analysis = source if isinstance(source, Analysis) else analyze(_as_graph(source))
    return build_module(plan_module(analysis))


def _as_graph(source: GraphSource) -> Graph:
    return source if isinstance(source, Graph) else load_graph(source)


def build_module(plan: ModulePlan, shared: Any = None) -> Any:
    """Instantiate the planned module: submodules from their constructs, forward from source.

    With ``shared`` (a module built from the plan that ``plan`` is a part of, see
    :func:`~dlstudio.core.codegen.part_plan`), the submodules are that module's own, not new ones.
    Blocks become modules of their own class (one class per block plan, made once), a repeat
    an ``nn.ModuleList``; tied parameters are one ``nn.Parameter``.
    """
    return module_class(plan, {}, shared)()


def module_class(plan: ModulePlan, classes: dict[int, type], shared: Any = None) -> type:
    """The ``nn.Module`` class of ``plan``; block classes are made once each, in ``classes``."""
    import torch
    from torch import nn

    from dlstudio.core.helpers import SUPPORT

    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "F": torch.nn.functional,
                                 "math": __import__("math"), **SUPPORT}
    code = forward_code(plan)
    source = CLASS_LINE + code.text
    filename = f"<dlstudio {plan.class_name} {hashlib.sha1(source.encode()).hexdigest()[:8]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
    namespace[BLAME] = _blame(plan, code, filename)
    exec(_guarded(source, filename), namespace)  # noqa: S102  (checked identifiers and literals only)
    forward = namespace["_Forward"].forward

    def init(self: nn.Module) -> None:
        nn.Module.__init__(self)
        for sub in plan.submodules:
            if shared is not None:
                setattr(self, sub.attr, getattr(shared, sub.attr))
                continue
            module = _block_module(sub.block, classes) if sub.block else instantiate(sub.construct)
            setattr(self, sub.attr, module.requires_grad_(False) if sub.frozen else module)
        for tie in plan.ties if shared is None else ():
            _tie(self, tie)

    return type(plan.class_name, (nn.Module,), {"__init__": init, "forward": forward,
                                                "__module__": "dlstudio.compiled"})


def _tie(module: Any, tie: TiePlan) -> None:
    """Make the tied parameter the source's tensor (through ``Transposed`` if transposed)."""
    from torch.nn.utils import parametrize

    from dlstudio.core.helpers import SUPPORT

    target, shared = getattr(module, tie.attr), getattr(getattr(module, tie.source_attr), tie.source_param)
    if not tie.transpose:
        setattr(target, tie.param, shared)
        return
    parametrize.register_parametrization(target, tie.param, SUPPORT["Transposed"](), unsafe=True)
    getattr(target.parametrizations, tie.param).original = shared


def _block_module(block: BlockUse, classes: dict[int, type]) -> Any:
    """A block node's module: one instance of its class per copy, in a ModuleList if repeated."""
    from torch import nn

    copies = []
    for plan in block.plans:
        cls = classes.get(id(plan))
        if cls is None:
            cls = classes[id(plan)] = module_class(plan, classes)
        copies.append(cls())
    return nn.ModuleList(copies) if block.repeated else copies[0]


def _guarded(source: str, filename: str) -> CodeType:
    """Compile ``source`` with the forward's body wrapped in ``try: ... except Exception:
    __dlstudio_blame__(); raise``, its statements keeping their line numbers."""
    tree = ast.parse(source, filename)
    forward = tree.body[0].body[0]
    blame = ast.Expr(ast.Call(ast.Name(BLAME, ast.Load()), [], []))
    handler = ast.ExceptHandler(ast.Name("Exception", ast.Load()), None, [blame, ast.Raise()])
    forward.body = [ast.copy_location(ast.Try(forward.body, [handler], [], []), forward)]
    return compile(ast.fix_missing_locations(tree), filename, "exec")


def _blame(plan: ModulePlan, code: Code, filename: str) -> Callable[[], None]:
    """The forward's exception handler: raises :class:`NodeRuntimeError` (chained from the
    error) for the node whose statement was running; returns for an out-of-memory error or a
    line no node wrote, and the error goes on unchanged."""
    import torch

    types = {statement.node_id: statement.node_type for statement in plan.statements}

    def blame() -> None:
        error = sys.exception()
        if error is None or isinstance(error, torch.OutOfMemoryError):
            return
        line = _line_in(error.__traceback__, filename)
        node_id = None if line is None else code.node_at(line - 1 - CLASS_LINE.count("\n"))
        if node_id in types:
            raise NodeRuntimeError(node_id, types[node_id], error) from error

    return blame


def _line_in(traceback: TracebackType | None, filename: str) -> int | None:
    """The line (1-based) running in the first frame of ``filename`` on ``traceback``."""
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == filename:
            return traceback.tb_lineno
        traceback = traceback.tb_next
    return None


def instantiate(construct: Construct) -> Any:
    """Create the module a :class:`Construct` describes."""
    from torch import nn

    from dlstudio.core.helpers import SUPPORT

    if construct.cls.startswith("nn."):
        factory = getattr(nn, construct.cls[3:])
    else:
        factory = SUPPORT[construct.cls]
    return factory(*construct.args, **dict(construct.kwargs))
