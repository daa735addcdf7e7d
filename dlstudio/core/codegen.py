"""From an analysed graph to a module plan, and from a plan to formatted Python source.

The compiler and the exporter share this: the compiled module's ``forward`` is the very source
that the exporter writes, so both behave alike and neither adds per-node overhead. Source is
written as :class:`Code`, which records which lines each node wrote (as torch.fx keeps a line
map): the code panel lights a node's lines with it, and the compiler names the node that failed.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.analysis import Analysis
from dlstudio.core.blocks import is_repeated
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
from dlstudio.core.pyformat import INDENT, LINE_LENGTH, format_assignment, format_def, format_return
from dlstudio.core.spec import Construct, LayerSpec
from dlstudio.core.wiring import live_nodes

TENSOR = "torch.Tensor"
Span = tuple[int, int]  # first line (0-based), line count


def helpers(catalogue: Catalogue) -> frozenset[str]:
    """Helpers (from dlstudio.core.modules) that a forward line may call: no variable takes these names."""
    return frozenset(name for spec in catalogue.values() for name in spec.support)


@dataclass(frozen=True)
class BlockUse:
    """A block node's module: one plan per copy (the same plan object for copies that are
    alike), with each copy's block parameters; ``repeated`` makes an ``nn.ModuleList``."""

    block: str
    plans: tuple[ModulePlan, ...]
    envs: tuple[dict[str, Any], ...]
    repeated: bool


@dataclass(frozen=True)
class Submodule:
    """``self.<attr> = <construct>``, built for node ``node_id``; a frozen one's parameters
    do not train (``requires_grad_(False)``). A block node has a ``block`` instead of a
    torch construct (its ``construct`` names the block)."""

    attr: str
    node_id: str
    construct: Construct
    comment: str
    frozen: bool = False
    block: BlockUse | None = None
    node_type: str = ""
    #: The node's resolved parameters (what a block class's constructor arguments follow).
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TiePlan:
    """``self.<attr>.<param> = self.<source_attr>.<source_param>``: one shared tensor; with
    ``transpose``, the parameter is read through a ``Transposed`` parametrization of it."""

    attr: str
    param: str
    source_attr: str
    source_param: str
    transpose: bool = False

    def lines(self) -> list[str]:
        """The ``__init__`` statements that tie the parameter."""
        source = f"self.{self.source_attr}.{self.source_param}"
        if not self.transpose:
            return [f"self.{self.attr}.{self.param} = {source}"]
        return [f'nn.utils.parametrize.register_parametrization(self.{self.attr}, "{self.param}", '
                "Transposed(), unsafe=True)",
                f"self.{self.attr}.parametrizations.{self.param}.original = {source}"]


@dataclass(frozen=True)
class Statement:
    """One forward line for node ``node_id``: ``target = callee(*args)``, or
    ``target = args[0]`` when there is no callee."""

    node_id: str
    node_type: str
    target: str
    callee: str | None
    args: tuple[str, ...]
    #: A repeated block: ``target = args[0]`` then ``for block in callee: target = block(target,
    #: *args[1:])`` (the first input chains, the others reach every copy).
    loop: bool = False

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
    outputs: list[str] = field(default_factory=list)  # the Output node ids, in return order
    imports: set[str] = field(default_factory=set)
    support: list[str] = field(default_factory=list)
    ties: list[TiePlan] = field(default_factory=list)
    #: The analysis this plan was made from (a block plan's is its copy's analysis).
    analysis: Analysis | None = field(default=None, repr=False, compare=False)

    def block_plans(self) -> list[ModulePlan]:
        """Every block plan below this one, inner ones first, each once."""
        found: dict[int, ModulePlan] = {}
        for sub in self.submodules:
            for plan in sub.block.plans if sub.block else ():
                for inner in [*plan.block_plans(), plan]:
                    found.setdefault(id(inner), inner)
        return list(found.values())


def plan_module(analysis: Analysis) -> ModulePlan:
    """Plan a module for a valid graph; raises :class:`GraphInvalidError` otherwise."""
    if not analysis.ok:
        raise GraphInvalidError(analysis.graph.name, analysis.errors)
    return _Planner(analysis, {}).plan()


def part_plan(plan: ModulePlan, analysis: Analysis, *outputs: str) -> ModulePlan:
    """The slice of ``plan`` that computes the Outputs ``outputs`` (returned in that order): the
    nodes they depend on, with the whole plan's names, so a module built from it can share the
    whole module's submodules."""
    needed = live_nodes(list(outputs), analysis.links)
    statements = [s for s in plan.statements if s.node_id in needed]
    used = {word for s in statements for word in re.findall(r"\w+", s.expression)}
    submodules = [m for m in plan.submodules if m.node_id in needed]
    used |= {m.construct.cls for m in submodules}
    return ModulePlan(
        class_name=plan.class_name, submodules=submodules,
        arguments=[(name, node_id) for name, node_id in plan.arguments if node_id in needed],
        statements=statements, returns=[plan.returns[plan.outputs.index(o)] for o in outputs],
        outputs=list(outputs),
        imports=set(plan.imports), support=[name for name in plan.support if name in used])


class _Planner:
    """Walks the nodes in order, naming attributes and variables through two namespaces."""

    def __init__(self, analysis: Analysis, block_plans: dict[int, ModulePlan]) -> None:
        self.analysis = analysis
        self.block_plans = block_plans  # per analysed copy: copies that are alike share a plan
        self.attributes = Namespace(ATTRIBUTE_RESERVED)
        self.variables = Namespace(RESERVED | helpers(analysis.catalogue))
        self.values: dict[tuple[str, str], str] = {}
        self.incoming = {(link.target, link.target_port): (link.source, link.source_port)
                         for link in analysis.links}
        self.in_degree = Counter(link.target for link in analysis.links)
        self.nodes = {node.id: node for node in analysis.graph.nodes}
        self.result = ModulePlan("Model", analysis=analysis)

    def plan(self) -> ModulePlan:
        graph, plan = self.analysis.graph, self.result
        for node in graph.nodes:
            if node.type == "Input":
                name = self.variables.name(node.id)
                plan.arguments.append((name, node.id))
                self.values[(node.id, "output")] = name
        for node_id in self.analysis.order:
            self._node(self.nodes[node_id])
        plan.outputs = [n.id for n in graph.nodes if n.type == "Output"]
        plan.returns = [self.values[(node_id, "output")] for node_id in plan.outputs]
        plan.class_name = class_name(graph.name, frozenset(plan.support) | self._block_names())
        attrs = {sub.node_id: sub.attr for sub in plan.submodules}
        plan.ties = [TiePlan(attrs[tie.target], tie.param, attrs[tie.source], tie.source_param, tie.transpose)
                     for tie in self.analysis.ties if tie.target in attrs and tie.source in attrs]
        if any(tie.transpose for tie in plan.ties) and "Transposed" not in plan.support:
            plan.support.append("Transposed")
        return plan

    def _block_names(self) -> frozenset[str]:
        return frozenset(p.class_name for p in self.result.block_plans())

    def _block_use(self, node: Node) -> BlockUse:
        copies = self.analysis.blocks[node.id]
        plans = []
        for copy in copies:
            plan = self.block_plans.get(id(copy.analysis))
            if plan is None:
                plan = self.block_plans[id(copy.analysis)] = _Planner(copy.analysis, self.block_plans).plan()
                plan.class_name = node.type
            plans.append(plan)
        return BlockUse(node.type, tuple(plans), tuple(c.env for c in copies), is_repeated(node))

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
        block = self._block_use(node) if node.id in self.analysis.blocks else None
        if spec.module is not None or block is not None:
            attr = self.attributes.name(node.id)
            comment = safe_text(node.label or "")
            frozen = node.frozen and self.analysis.param_counts.get(node.id, 0) > 0
            construct = Construct(node.type) if block else spec.module(params)  # type: ignore[misc]
            plan.submodules.append(Submodule(attr, node.id, construct, comment, frozen, block, node.type, params))
        callee, call_args = _callee(spec, params, args, f"self.{attr}")
        single = len(spec.outputs) == 1
        outputs = {port: self.variables.name(node.id if single else f"{node.id}_{port}")
                   for port in spec.output_ports(params)}
        self.values.update({(node.id, port): name for port, name in outputs.items()})
        target = ", ".join(outputs.values()) if block else _target(spec, outputs)
        statement = Statement(node.id, node.type, target, callee, call_args, bool(block and block.repeated))
        plan.statements.append(statement)
        plan.imports |= spec.imports
        used = set(re.findall(r"\w+", statement.expression))
        used |= {plan.submodules[-1].construct.cls} if spec.module is not None and not block else set()
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


@dataclass
class Code:
    """Lines of generated source and, for each node, the spans of lines it wrote."""

    lines: list[str] = field(default_factory=list)
    spans: dict[str, list[Span]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def write(self, lines: list[str], *node_ids: str) -> None:
        """Append ``lines``, written for ``node_ids`` (none for lines of the module itself)."""
        for node_id in node_ids:
            self._mark(node_id, len(self.lines), len(lines))
        self.lines += lines

    def append(self, other: Code) -> None:
        """Append ``other``'s lines, and its spans moved down past these lines."""
        offset = len(self.lines)
        for node_id, spans in other.spans.items():
            for first, count in spans:
                self._mark(node_id, offset + first, count)
        self.lines += other.lines

    def node_at(self, line: int) -> str | None:
        """The first node whose lines include ``line`` (0-based), if any."""
        return next((node_id for node_id, spans in self.spans.items()
                     if any(first <= line < first + count for first, count in spans)), None)

    def _mark(self, node_id: str, first: int, count: int) -> None:
        spans = self.spans.setdefault(node_id, [])
        if spans and sum(spans[-1]) == first:  # a label comment, then its assignment
            spans[-1] = (spans[-1][0], spans[-1][1] + count)
        else:
            spans.append((first, count))


def forward_code(plan: ModulePlan, annotate: bool = True) -> Code:
    """The ``forward`` method, indented for a class body: the signature belongs to the Input
    nodes, each statement to its node, the return line to the Output nodes."""
    params = ["self"] + [f"{name}: {TENSOR}" if annotate else name for name, _ in plan.arguments]
    code = Code()
    code.write(format_def(1, "forward", params, return_annotation(len(plan.returns)) if annotate else None),
               *(node_id for _, node_id in plan.arguments))
    for statement in plan.statements:
        code.write(statement_lines(statement), statement.node_id)
    code.write(format_return(2, plan.returns), *plan.outputs)
    return code


def statement_lines(statement: Statement) -> list[str]:
    """A forward statement's lines; a repeated block is a loop over its copies."""
    if not statement.loop:
        return fit_assignment(INDENT * 2, statement.target, statement.callee, list(statement.args))
    target, first, *others = statement.target, *statement.args
    header = [f"{INDENT * 2}for block in {statement.callee}:"]
    if len(header[0]) > LINE_LENGTH:  # as ruff format writes a loop over a long attribute
        header = [f"{INDENT * 2}for (", f"{INDENT * 3}block", f"{INDENT * 2}) in {statement.callee}:"]
    return [*fit_assignment(INDENT * 2, target, None, [first]), *header,
            *fit_assignment(INDENT * 3, target, "block", [target, *others])]


def forward_source(plan: ModulePlan, annotate: bool = True) -> str:
    """The ``forward`` method's source, indented for a class body."""
    return forward_code(plan, annotate).text


def return_annotation(count: int) -> str:
    """``torch.Tensor`` for one output, a tuple of them for several (``...`` past four)."""
    if count == 1:
        return TENSOR
    return f"tuple[{', '.join([TENSOR] * count)}]" if count <= 4 else f"tuple[{TENSOR}, ...]"
