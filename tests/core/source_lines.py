"""Which lines of an exported file belong to which node, read back from its syntax tree.

An oracle for the line map that code generation records as it writes: it knows nothing of
how the lines were written, only what Python makes of the file.
"""

from __future__ import annotations

import ast
from collections import defaultdict

from dlstudio.core.codegen import ModulePlan


def lines_by_node(source: str, plan: ModulePlan) -> dict[str, set[int]]:
    """0-based lines constructing (with the label comment above), freezing and calling each
    node; the forward's signature belongs to the Input nodes, its return to the Output nodes."""
    lines = source.splitlines()
    model = next(n for n in ast.parse(source).body
                 if isinstance(n, ast.ClassDef) and n.name == plan.class_name)
    init, forward = (next(f for f in model.body if isinstance(f, ast.FunctionDef) and f.name == name)
                     for name in ("__init__", "forward"))
    owners = {sub.attr: sub.node_id for sub in plan.submodules}
    found: dict[str, set[int]] = defaultdict(set)
    for statement in init.body[1:]:  # after super().__init__()
        target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.value.func.value
        if isinstance(statement, ast.Expr) and target.attr == "parametrize":  # a transposed tie
            target = statement.value.args[0]
        while isinstance(target.value, ast.Attribute):  # a tie: self.head.weight = ...
            target = target.value
        first = statement.lineno - 1
        if isinstance(statement, ast.Assign) and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        found[owners[target.attr]] |= set(range(first, statement.end_lineno))
    for _name, node_id in plan.arguments:
        found[node_id] |= set(range(forward.lineno - 1, forward.body[0].lineno - 1))
    steps = iter(s for s in forward.body if not isinstance(s, ast.Return))
    for planned in plan.statements:  # a repeated block's loop: its first assignment, then the for
        statements = [next(steps), next(steps)] if planned.loop else [next(steps)]
        found[planned.node_id] |= set(range(statements[0].lineno - 1, statements[-1].end_lineno))
    assert next(steps, None) is None
    returned = forward.body[-1]
    assert isinstance(returned, ast.Return)
    for node_id in plan.outputs:
        found[node_id] |= set(range(returned.lineno - 1, returned.end_lineno))
    return dict(found)
