"""From an analysed graph to a module plan, and from a plan to formatted Python source.

The compiler and the exporter share this: the compiled module's ``forward`` is the very source
that the exporter writes, so both behave alike and neither adds per-node overhead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.analysis import Analysis
from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.errors import GraphInvalidError
from dlstudio.core.naming import MODULE_ATTRIBUTES, RESERVED, Namespace, class_name, literal, safe_text
from dlstudio.core.spec import Construct, LayerSpec

LINE_LENGTH = 88
INDENT = "    "


@dataclass(frozen=True)
class Submodule:
    """``self.<attr> = <construct>``, built for node ``node_id``."""

    attr: str
    node_id: str
    construct: Construct
    comment: str


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
    graph = analysis.graph
    plan = ModulePlan(class_name(graph.name))
    attributes = Namespace(RESERVED | MODULE_ATTRIBUTES)
    variables = Namespace()
    values: dict[tuple[str, str], str] = {}
    nodes = {node.id: node for node in graph.nodes}
    incoming = {(l.target, l.target_port): (l.source, l.source_port) for l in analysis.links}
    for node in graph.nodes:
        if node.type == "Input":
            name = variables.name(node.id)
            plan.arguments.append((name, node.id))
            values[(node.id, "output")] = name
    for node_id in analysis.order:
        node, spec = nodes[node_id], CATALOGUE[nodes[node_id].type]
        if node.type == "Output":
            values[(node_id, "output")] = values[incoming[(node_id, "input")]]
        if node.type in ("Input", "Output") or node_id not in analysis.live:
            continue
        params = analysis.params[node_id]
        ports = spec.input_ports(sum(1 for l in analysis.links if l.target == node_id))
        args = [values[incoming[(node_id, p)]] if (node_id, p) in incoming else "None" for p in ports]
        attr = ""
        if spec.module is not None:
            attr = attributes.name(node_id)
            comment = safe_text(node.label or "")
            plan.submodules.append(Submodule(attr, node_id, spec.module(params), comment))
        callee, call_args = _callee(spec, params, args, f"self.{attr}")
        ports = spec.output_ports(params)
        outputs = {port: variables.name(node_id if len(spec.outputs) == 1 else f"{node_id}_{port}")
                   for port in ports}
        values.update({(node_id, port): name for port, name in outputs.items()})
        plan.statements.append(Statement(node_id, _target(spec, outputs), callee, call_args))
        plan.imports |= spec.imports
        plan.support += [s for s in spec.support if s not in plan.support]
    plan.returns = [values[(n.id, "output")] for n in graph.nodes if n.type == "Output"]
    return plan


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
    """Lay out ``target = callee(args)`` (or ``target = args[0]``) the way ruff format does."""
    head = f"{indent}{target} = "
    if callee is None:
        whole = head + args[0]
        if len(whole) <= LINE_LENGTH or not args[0].startswith("("):
            return [whole] if len(whole) <= LINE_LENGTH else [head + "(", f"{indent}{INDENT}{args[0]}", f"{indent})"]
        return [whole]
    one_line = f"{head}{callee}({', '.join(args)})"
    if len(one_line) <= LINE_LENGTH or not args:
        return [one_line]
    inner = indent + INDENT
    hugged = inner + ", ".join(args)
    if len(hugged) <= LINE_LENGTH:
        return [f"{head}{callee}(", hugged, f"{indent})"]
    return [f"{head}{callee}(", *[f"{inner}{a}," for a in args], f"{indent})"]


def forward_source(plan: ModulePlan, annotate: bool = True) -> str:
    """The ``forward`` method's source, indented for a class body."""
    indent = INDENT * 2
    tensor = "torch.Tensor"
    params = ["self"] + [f"{name}: {tensor}" if annotate else name for name, _ in plan.arguments]
    result = tensor if len(plan.returns) == 1 else f"tuple[{', '.join([tensor] * len(plan.returns))}]"
    lines = _signature(params, result if annotate else None)
    for statement in plan.statements:
        lines += fit_assignment(indent, statement.target, statement.callee, list(statement.args))
    returned = ", ".join(plan.returns)
    lines.append(f"{indent}return {returned}")
    return "\n".join(lines) + "\n"


def _signature(params: list[str], result: str | None) -> list[str]:
    arrow = f" -> {result}" if result else ""
    one_line = f"{INDENT}def forward({', '.join(params)}){arrow}:"
    if len(one_line) <= LINE_LENGTH:
        return [one_line]
    hugged = f"{INDENT * 2}{', '.join(params)}"
    if len(hugged) <= LINE_LENGTH:
        return [f"{INDENT}def forward(", hugged, f"{INDENT}){arrow}:"]
    return [f"{INDENT}def forward(", *[f"{INDENT * 2}{p}," for p in params], f"{INDENT}){arrow}:"]
