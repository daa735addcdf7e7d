"""From an analysed graph to a module plan, and from a plan to formatted Python source.

The compiler and the exporter share this: the compiled module's ``forward`` is the very source
that the exporter writes, so both behave alike and neither adds per-node overhead.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.analysis import Analysis
from dlstudio.core.catalogue import Catalogue
from dlstudio.core.errors import GraphInvalidError
from dlstudio.core.graph import Node
from dlstudio.core.naming import (
    ATTRIBUTE_RESERVED,
    RESERVED,
    Namespace,
    class_name,
    literal,
    safe_text,
)
from dlstudio.core.pyformat import INDENT, format_assignment, format_def, format_return
from dlstudio.core.spec import Construct, LayerSpec

TENSOR = "torch.Tensor"


def helpers(catalogue: Catalogue) -> frozenset[str]:
    """Helpers (from dlstudio.core.modules) that a forward line may call: no variable takes these names."""
    return frozenset(name for spec in catalogue.values() for name in spec.support)


@dataclass(frozen=True)
class Submodule:
    """``self.<attr> = <construct>``, built for node ``node_id``; a frozen one's parameters
    do not train (``requires_grad_(False)``)."""

    attr: str
    node_id: str
    construct: Construct
    comment: str
    frozen: bool = False


@dataclass(frozen=True)
class Statement:
    """One forward line for node ``node_id``: ``target = callee(*args)``, or
    ``target = args[0]`` when there is no callee."""

    node_id: str
    target: str
    callee: str | None
    args: tuple[str, ...]

    @property
    def expression(self) -> str:
        return f"{self.callee}({', '.join(self.args)})" if self.callee else self.args[0]


@dataclass
class ModulePlan:
    """What the generated module holds and computes."""

    class_name: str
    submodules: list[Submodule] = field(default_factory=list)
    arguments: list[tuple[str, str]] = field(default_factory=list)  # (name, node id)
    statements: list[Statement] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)
    support: list[str] = field(default_factory=list)


def plan_module(analysis: Analysis) -> ModulePlan:
    """Plan a module for a valid graph; raises :class:`GraphInvalidError` otherwise."""
    if not analysis.ok:
        raise GraphInvalidError(analysis.graph.name, analysis.errors)
    return _Planner(analysis).plan()


class _Planner:
    """Walks the nodes in order, naming attributes and variables through two namespaces."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.attributes = Namespace(ATTRIBUTE_RESERVED)
        self.variables = Namespace(RESERVED | helpers(analysis.catalogue))
        self.values: dict[tuple[str, str], str] = {}
        self.incoming = {(link.target, link.target_port): (link.source, link.source_port)
                         for link in analysis.links}
        self.in_degree = Counter(link.target for link in analysis.links)
        self.nodes = {node.id: node for node in analysis.graph.nodes}
        self.result = ModulePlan("Model")

    def plan(self) -> ModulePlan:
        graph, plan = self.analysis.graph, self.result
        for node in graph.nodes:
            if node.type == "Input":
                name = self.variables.name(node.id)
                plan.arguments.append((name, node.id))
                self.values[(node.id, "output")] = name
        for node_id in self.analysis.order:
            self._node(self.nodes[node_id])
        plan.returns = [self.values[(n.id, "output")] for n in graph.nodes if n.type == "Output"]
        plan.class_name = class_name(graph.name, frozenset(plan.support))
        return plan

    def _node(self, node: Node) -> None:
        if node.type == "Output":
            self.values[(node.id, "output")] = self.values[self.incoming[(node.id, "input")]]
        if node.type in ("Input", "Output") or node.id not in self.analysis.live:
            return
        spec, params, plan = self.analysis.catalogue[node.type], self.analysis.params[node.id], self.result
        ports = spec.input_ports(self.in_degree[node.id])
        args = [self.values[self.incoming[(node.id, p)]] if (node.id, p) in self.incoming else "None"
                for p in ports]
        attr = ""
        if spec.module is not None:
            attr = self.attributes.name(node.id)
            comment = safe_text(node.label or "")
            frozen = node.frozen and self.analysis.param_counts.get(node.id, 0) > 0
            plan.submodules.append(Submodule(attr, node.id, spec.module(params), comment, frozen))
        callee, call_args = _callee(spec, params, args, f"self.{attr}")
        single = len(spec.outputs) == 1
        outputs = {port: self.variables.name(node.id if single else f"{node.id}_{port}")
                   for port in spec.output_ports(params)}
        self.values.update({(node.id, port): name for port, name in outputs.items()})
        statement = Statement(node.id, _target(spec, outputs), callee, call_args)
        plan.statements.append(statement)
        plan.imports |= spec.imports
        used = set(re.findall(r"\w+", statement.expression))
        used |= {plan.submodules[-1].construct.cls} if spec.module is not None else set()
        plan.support += [name for name in spec.support if name not in plan.support and name in used]


def _callee(spec: LayerSpec, params: dict[str, Any], args: list[str],
            attr: str) -> tuple[str | None, tuple[str, ...]]:
    """The callee and arguments of a node's forward line (a text ``call`` has no callee)."""
    if spec.call is None:
        return attr, tuple(args)
    made = spec.call(params, args, attr)
    return (None, (made,)) if isinstance(made, str) else (made[0], tuple(made[1]))


def _target(spec: LayerSpec, outputs: dict[str, str]) -> str:
    """The assignment target; an output port the parameters leave out is written ``_``."""
    if spec.unpack:
        return spec.unpack.format_map(defaultdict(lambda: "_", outputs))
    names = list(outputs.values())
    return names[0] if len(names) == 1 or spec.output_rule is None else ", ".join(names)


def construct_source(construct: Construct) -> tuple[str, list[str]]:
    """The callee text and argument texts of a constructor call."""
    args = [literal(a) for a in construct.args]
    args += [f"{key}={literal(value)}" for key, value in construct.kwargs.items()]
    return construct.cls, args


def fit_assignment(indent: str, target: str, callee: str | None, args: list[str]) -> list[str]:
    """Lay out ``target = callee(args)`` (or ``target = args[0]``) exactly as ruff format does."""
    value = args[0] if callee is None else f"{callee}({', '.join(args)})"
    return format_assignment(len(indent) // len(INDENT), target, value)


def forward_source(plan: ModulePlan, annotate: bool = True) -> str:
    """The ``forward`` method's source, indented for a class body."""
    params = ["self"] + [f"{name}: {TENSOR}" if annotate else name for name, _ in plan.arguments]
    lines = format_def(1, "forward", params, return_annotation(len(plan.returns)) if annotate else None)
    for statement in plan.statements:
        lines += fit_assignment(INDENT * 2, statement.target, statement.callee, list(statement.args))
    lines += format_return(2, plan.returns)
    return "\n".join(lines) + "\n"


def return_annotation(count: int) -> str:
    """``torch.Tensor`` for one output, a tuple of them for several (``...`` past four)."""
    if count == 1:
        return TENSOR
    return f"tuple[{', '.join([TENSOR] * count)}]" if count <= 4 else f"tuple[{TENSOR}, ...]"
