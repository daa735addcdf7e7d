"""Blocks: a file's named subgraphs, each turned into a layer type of that file's catalogue.

A :class:`BlockSpec` is a :class:`LayerSpec` whose ports are the block's Input and Output
nodes and whose parameters are the block's own (plus ``repeat``). Analysis recognises it and
analyses the block's graph once per parameter set and input types (see
:mod:`dlstudio.core.analysis`); here are the parts that need no analysis: the expressions
inner parameters may hold (``"$channels * 4"``), the substitution of a parameter set into a
block's graph, and the check that no block uses itself.

Expressions are parsed with :mod:`ast` and evaluated by walking a small whitelist (numbers,
names, arithmetic, comparisons, ``and``/``or``/``not``, ``a if c else b``, lists): nothing
from a file is ever executed.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.graph import Block, Graph, Node, is_valid_id
from dlstudio.core.naming import RESERVED
from dlstudio.core.spec import InferContext, LayerSpec, Param
from dlstudio.core.tensor import TensorType

#: A parameter value that starts with this is an expression over the block's parameters.
EXPRESSION_MARK = "$"
#: Longest expression text, and deepest nesting of blocks in blocks.
MAX_EXPRESSION_CHARS = 200
MAX_BLOCK_DEPTH = 16
#: Most copies one ``repeat`` makes.
MAX_REPEAT = 1000
#: The copy number (from 0) a ``repeat``'s parameters may refer to.
INDEX = "index"
#: The parameter every block node has: how many copies to chain.
REPEAT = "repeat"
RESERVED_PARAMS = frozenset({REPEAT, INDEX})
#: The palette family of a file's blocks.
FAMILY = "Blocks"


class ExpressionError(ValueError):
    """An expression that cannot be evaluated: bad syntax, an unknown name, an unsafe size."""


def is_expression(value: Any) -> bool:
    """True for a ``"$..."`` parameter value."""
    return isinstance(value, str) and value.startswith(EXPRESSION_MARK)


def expression_text(value: str) -> str:
    """The Python text of an expression value (the mark removed)."""
    return value[len(EXPRESSION_MARK):].strip()


def canonical_text(value: str) -> str:
    """An expression value as the exporter writes it: re-printed from its checked syntax tree,
    so no comment, line break or spacing of the file's text reaches generated code."""
    return ast.unparse(_parse(value).body)


def names_in(value: str) -> set[str]:
    """The names an expression value refers to."""
    return {node.id for node in ast.walk(_parse(value)) if isinstance(node, ast.Name)}


def evaluate(value: str, env: Mapping[str, Any]) -> Any:
    """The value of expression ``value`` with names from ``env``; ExpressionError if it fails."""
    return _Evaluator(env).run(_parse(value).body)


def bind(value: str, env: Mapping[str, Any]) -> str:
    """``value`` with the names ``env`` knows replaced by their values (the rest kept), so an
    expression can wait for a name only a later step knows (a repeat's ``index``)."""
    tree = _parse(value)
    bound = _Binder(env).visit(tree)
    return EXPRESSION_MARK + ast.unparse(ast.fix_missing_locations(bound))


def _parse(value: str) -> ast.Expression:
    text = expression_text(value)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"the expression is over {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        raise ExpressionError(f"'{text[:60]}' is not an expression") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"'{text[:60]}' uses {type(node).__name__.lower()}, which expressions "
                                  "do not allow (numbers, names, + - * / // % **, comparisons, and/or/not, "
                                  "'a if c else b' and lists only)")
    return tree


_ALLOWED = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp,
    ast.IfExp, ast.List, ast.Tuple, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.USub, ast.UAdd, ast.Not, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.And, ast.Or,
)
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
#: Largest magnitude a number in an expression may reach.
_LIMIT = 2**62


class _Evaluator:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env

    def run(self, node: ast.AST) -> Any:
        value = self._value(node)
        if isinstance(value, list):
            return [self._number(item) for item in value]
        return self._number(value) if not isinstance(value, str) else value

    def _value(self, node: ast.AST) -> Any:  # noqa: PLR0911  (one case per allowed node)
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float, bool, str):
                raise ExpressionError(f"{node.value!r} is not a number")
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.env:
                raise ExpressionError(f"unknown name '{node.id}'")
            return self.env[node.id]
        if isinstance(node, ast.List | ast.Tuple):
            return [self._value(item) for item in node.elts]
        if isinstance(node, ast.UnaryOp):
            operand = self._value(node.operand)
            return (not operand) if isinstance(node.op, ast.Not) else self._arith(node.op, 0, operand)
        if isinstance(node, ast.BinOp):
            return self._arith(node.op, self._value(node.left), self._value(node.right))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BoolOp):
            values = [self._value(item) for item in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        assert isinstance(node, ast.IfExp)
        return self._value(node.body) if self._value(node.test) else self._value(node.orelse)

    def _compare(self, node: ast.Compare) -> bool:
        left = self._value(node.left)
        for op, item in zip(node.ops, node.comparators, strict=True):
            right = self._value(item)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _arith(self, op: ast.AST, left: Any, right: Any) -> Any:
        if isinstance(op, ast.USub | ast.UAdd):
            left, right = (0, right) if isinstance(op, ast.USub) else (0, right)
            op = ast.Sub() if isinstance(op, ast.USub) else ast.Add()
        for value in (left, right):
            self._number(value)
        if isinstance(op, ast.Pow) and (abs(right) > 64 or abs(left) > 2**31):
            raise ExpressionError("a power in an expression is too large")
        try:
            return self._number(_BINARY[type(op)](left, right))
        except ZeroDivisionError:
            raise ExpressionError("division by zero") from None

    @staticmethod
    def _number(value: Any) -> Any:
        if type(value) not in (int, float, bool):
            raise ExpressionError(f"{value!r} is not a number")
        if isinstance(value, float) and not math.isfinite(value) or abs(value) > _LIMIT:
            raise ExpressionError("a number in the expression is out of range")
        return value


class _Binder(ast.NodeTransformer):
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env

    def visit_Name(self, node: ast.Name) -> ast.AST:  # noqa: N802  (ast's visitor naming)
        return ast.Constant(self.env[node.id]) if node.id in self.env else node


# --- the block as a layer type -------------------------------------------------------------

@dataclass(frozen=True, eq=False)  # hashed and compared as a LayerSpec (the Block is a model)
class BlockSpec(LayerSpec):
    """A block's layer type: its ports, parameters and definition (analysed by analysis)."""

    block: Block = field(default_factory=Block)
    #: Why the block cannot be used (it uses itself, or its definition is malformed).
    problem: str = ""


def _refuse_direct_inference(context: InferContext) -> TensorType:
    raise AssertionError(f"block '{context.spec.type}' is analysed by dlstudio.core.analysis")


def block_specs(graph: Graph) -> list[BlockSpec]:
    """One layer type per block of ``graph``; a block in a cycle of uses carries the cycle as
    its ``problem``."""
    blocks = graph.blocks or {}
    cycles = _cycles(blocks)
    return [_spec(name, block, cycles.get(name, "")) for name, block in blocks.items()]


def _spec(name: str, block: Block, problem: str) -> BlockSpec:
    inputs = tuple(node.id for node in block.nodes if node.type == "Input")
    outputs = tuple(node.id for node in block.nodes if node.type == "Output")
    problem = problem or _definition_problem(name, block, inputs, outputs)
    params = [Param(REPEAT, "int", default=1, min=1, max=MAX_REPEAT, ctor=False,
                    help="How many copies of the block to chain, each with its own weights.")]
    params += [Param(key, value_kind(value), default=value, help=f"A parameter of block {name}.", expression_ok=True)
               for key, value in block.params.items() if key not in RESERVED_PARAMS]
    summary = block.description.split("\n", 1)[0] if block.description else f"The file's block {name}."
    return BlockSpec(type=name, family=FAMILY, summary=summary, infer=_refuse_direct_inference,
                     params=tuple(params), inputs=inputs or ("input",), outputs=outputs or ("output",),
                     block=block, problem=problem)


def value_kind(value: Any) -> Any:
    """The parameter kind of a plain value: a block parameter's, from its default."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list | tuple):
        return "ints"
    return "str"


def _definition_problem(name: str, block: Block, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> str:
    if not inputs or not outputs:
        return f"block '{name}' needs at least one Input and one Output node"
    if name in RESERVED:
        return f"block '{name}' has a name Python or the generated code uses: rename the block"
    for key, value in block.params.items():
        if key in RESERVED_PARAMS:
            return f"block '{name}' declares a parameter '{key}', a name every block reserves"
        if not is_valid_id(key) or key in RESERVED:
            return (f"block '{name}' declares a parameter '{key[:40]}', which is not a plain name "
                    "(letters, digits and _, and not a Python keyword or builtin)")
        if value is None or isinstance(value, dict) or is_expression(value):
            return f"block '{name}' declares '{key}' without a plain default value"
        if isinstance(value, list) and not all(type(item) is int for item in value):
            return f"block '{name}' declares '{key}' as a list that is not whole numbers"
    return ""


def _cycles(blocks: Mapping[str, Block]) -> dict[str, str]:
    """Each block that uses itself, directly or through others, with the cycle in words;
    also each block nested deeper than :data:`MAX_BLOCK_DEPTH`."""
    uses = {name: [n.type for n in block.nodes if n.type in blocks] for name, block in blocks.items()}
    problems: dict[str, str] = {}
    for start in blocks:
        path = _cycle_from(start, uses)
        if path:
            problems[start] = f"block '{start}' uses itself: {' -> '.join(path)}"
    depth: dict[str, int] = {}
    for name in blocks:
        if name not in problems and _depth(name, uses, depth, problems) > MAX_BLOCK_DEPTH:
            problems[name] = (f"block '{name}' nests blocks more than {MAX_BLOCK_DEPTH} deep "
                              "(MAX_BLOCK_DEPTH)")
    return problems


def _cycle_from(start: str, uses: Mapping[str, list[str]]) -> list[str]:
    """A path of uses from ``start`` back to itself, if there is one (iterative search)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for used in uses.get(name, []):
            if used == start:
                return [*path, start]
            if used not in seen:
                seen.add(used)
                stack.append((used, [*path, used]))
    return []


def _depth(name: str, uses: Mapping[str, list[str]], memo: dict[str, int], cyclic: Mapping[str, str]) -> int:
    """How deep blocks nest below ``name`` (1: uses none); cycles were found before."""
    order, stack = [], [name]
    while stack:
        current = stack.pop()
        if current in memo or current in cyclic or current in order:
            continue
        order.append(current)
        stack.extend(uses.get(current, []))
    for current in reversed(order):
        memo[current] = 1 + max((memo.get(used, 0) for used in uses.get(current, [])
                                 if used not in cyclic), default=0)
    return memo.get(name, 0)


# --- one copy of a block with its parameters ---------------------------------------------------

def copy_environment(spec: BlockSpec, params: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The block's parameter values for copy ``index`` of a use with resolved ``params``
    (expressions there may use ``index``); ExpressionError names the parameter that fails."""
    env: dict[str, Any] = {}
    for param in spec.params:
        if param.name == REPEAT:
            continue
        value = params.get(param.name, param.default)
        if is_expression(value):
            try:
                value = evaluate(value, {INDEX: index})
            except ExpressionError as error:
                raise ExpressionError(f"{param.name}: {error}") from None
        env[param.name] = _check_kind(param, value)
    return env


def _check_kind(param: Param, value: Any) -> Any:
    expected = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,), "ints": (list, tuple)}
    kinds = expected.get(param.kind, (object,))
    if type(value) is bool and param.kind != "bool" or not isinstance(value, kinds):
        raise ExpressionError(f"{param.name}={value!r} is not a {param.kind} like its default {param.default!r}")
    return tuple(value) if isinstance(value, list) else value


def instance_graph(spec: BlockSpec, env: Mapping[str, Any], name: str) -> Graph:
    """The block's graph with ``env`` substituted into its nodes' parameters.

    An expression of an inner block node that names ``index`` keeps that name for the inner
    repeat (the rest is bound now). ExpressionError says which node and parameter failed.
    """
    nodes = []
    for node in spec.block.nodes:
        params = {}
        for key, value in node.params.items():
            try:
                params[key] = _substitute(value, env)
            except ExpressionError as error:
                raise ExpressionError(f"{node.id}.{key}: {error}") from None
        nodes.append(node.model_copy(update={"params": params}))
    return Graph(name=name, nodes=nodes, edges=list(spec.block.edges))


def _substitute(value: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(value, list):
        return [_substitute(item, env) for item in value]
    if not is_expression(value):
        return value
    if names_in(value) - set(env) == {INDEX}:
        return bind(value, env)
    result = evaluate(value, env)
    return list(result) if isinstance(result, tuple) else result


def environment_key(env: Mapping[str, Any]) -> str:
    """A stable text key of a parameter set (tells 1, 1.0 and True apart)."""
    return json.dumps([[key, type(value).__name__, value] for key, value in sorted(env.items())])


def copy_path(prefix: str, node_id: str, index: int, repeated: bool) -> str:
    """The path prefix of copy ``index`` of block node ``node_id``: ``h.0.`` in a repeat (a
    ModuleList), ``h.`` otherwise; what state_dict keys, summary rows and probes use."""
    return f"{prefix}{node_id}.{index}." if repeated else f"{prefix}{node_id}."


def is_repeated(node: Node) -> bool:
    """A node that sets ``repeat`` holds a list of copies (even of one), so that its
    state_dict keys (``layer.0.conv.weight``) do not change form with the count."""
    return REPEAT in node.params


def is_block(node: Node, specs: Mapping[str, LayerSpec | None]) -> bool:
    return isinstance(specs.get(node.type), BlockSpec)


def valid_block_name(name: str) -> bool:
    return is_valid_id(name)
