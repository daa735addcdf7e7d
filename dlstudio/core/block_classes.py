"""Export of blocks: one readable class per block, constructed with the block's parameters.

Every copy of a block anywhere in the model was planned with concrete values. Here the copies
of one block are merged into one class: a constructor argument that is the same in every copy
is written as a number, one that follows a block parameter (or the expression an inner node
gives) is written as that parameter or expression, and anything else becomes a keyword-only
argument of its own. A repeat is an ``nn.ModuleList`` built by a comprehension where a
comprehension says it (``for index in range(...)``), a list of copies otherwise. Copies
that differ in structure (another forward) get a class each (``Block``, ``Block_2``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.blocks import (
    INDEX,
    REPEAT,
    BlockSpec,
    ExpressionError,
    canonical_text,
    evaluate,
    is_expression,
    value_kind,
)
from dlstudio.core.catalogue import Catalogue
from dlstudio.core.codegen import (
    INDENT,
    BlockUse,
    Code,
    ModulePlan,
    Submodule,
    fit_assignment,
    forward_code,
)
from dlstudio.core.naming import RESERVED, literal
from dlstudio.core.pyformat import format_assignment, format_call, format_def

Env = dict[str, Any]


@dataclass
class BlockClass:
    """A class written for the copies ``plans`` of block ``block``."""

    name: str
    block: str
    plans: list[ModulePlan]
    envs: list[Env]
    #: Keyword-only arguments that no block parameter explains: name -> value per copy.
    extras: dict[str, list[Any]] = field(default_factory=dict)


class BlockClasses:
    """The classes of a model's blocks, and how each copy's constructor call reads."""

    def __init__(self, top: ModulePlan, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        #: Names a block class must not take: Python's, the module's, the helper classes'.
        self.taken = set(RESERVED) | {name for spec in catalogue.values() for name in spec.support} | {"Transposed"}
        self.classes: list[BlockClass] = []
        self.by_plan: dict[int, tuple[BlockClass, int]] = {}
        for block, instances in _instances(top).items():
            self._make(block, instances)

    def code(self) -> Code:
        """Every block class, inner blocks first. Their lines belong to no node of the model
        (a block's nodes are not the graph's: ids may repeat), so they carry no spans."""
        code = Code()
        for cls in self.classes:
            code.write(["", "", *self._class_code(cls).lines])
        return code

    def use_lines(self, sub: Submodule, raw: Mapping[str, Any], envs: list[Env] | None = None,
                  uses: list[BlockUse] | None = None, owner: BlockClass | None = None) -> str | None:
        """The constructor text of block node ``sub`` (``raw``: its parameters as written).

        ``uses``/``envs``: the node's use in each copy of the enclosing block ``owner``, whose
        parameters are in scope (a value nothing explains becomes an argument of ``owner``);
        None for a node of the model itself. None when no one text fits every copy.
        """
        uses = uses or [sub.block]  # type: ignore[list-item]
        envs = envs or [{}]
        names = {self.by_plan[id(plan)][0].name for use in uses for plan in use.plans}
        if len(names) != 1:
            return None
        cls = self.by_plan[id(uses[0].plans[0])][0]
        spec = self.catalogue[cls.block]
        assert isinstance(spec, BlockSpec)
        keys = [p.name for p in spec.params if p.name != REPEAT] + list(cls.extras)
        if not uses[0].repeated:
            columns = {key: [self._value(use, 0, key) for use in uses] for key in keys}
            return self._call(cls.name, spec, raw, envs, columns, list(range(len(uses))), owner, sub.attr)
        count = _value_text([len(use.plans) for use in uses], raw.get(REPEAT), envs)
        if count is None:
            return None
        entries = [(i, k) for i, use in enumerate(uses) for k in range(len(use.plans))]
        columns = {key: [self._value(uses[i], k, key) for i, k in entries] for key in keys}
        copy_envs = [{**envs[i], INDEX: k} for i, k in entries]
        call = self._call(cls.name, spec, raw, copy_envs, columns, [i for i, _ in entries], owner, sub.attr)
        if call is None:
            return None
        variable = INDEX if INDEX in _words(call) else "_"
        return f"nn.ModuleList([{call} for {variable} in range({count})])"

    def _value(self, use: BlockUse, copy: int, key: str) -> Any:
        cls, place = self.by_plan[id(use.plans[copy])]
        return cls.extras[key][place] if key in cls.extras else use.envs[copy].get(key)

    @staticmethod
    def _call(name: str, spec: BlockSpec, raw: Mapping[str, Any], envs: list[Env], columns: dict[str, list[Any]],
              owners: list[int], owner: BlockClass | None, attr: str) -> str | None:
        """``Name(key=value, ...)``: what the file writes, what is not the default, and what
        only the enclosing class's own arguments can give (added to them)."""
        args = []
        defaults = spec.defaults
        for key, column in columns.items():
            given = raw.get(key)
            if given is None and key in defaults and all(
                    literal(_plain(v)) == literal(_plain(defaults[key])) for v in column):
                continue
            text = _value_text(column, given, envs)
            if text is None:
                text = _owner_argument(owner, f"{attr}_{key}", column, owners)
            if text is None:
                return None
            args.append(f"{key}={text}")
        return f"{name}({', '.join(args)})"

    # --- making the classes ----------------------------------------------------------------

    def _make(self, block: str, instances: list[tuple[ModulePlan, Env]]) -> None:
        groups: dict[str, list[tuple[ModulePlan, Env]]] = {}
        for plan, env in instances:
            groups.setdefault(self._structure(plan), []).append((plan, env))
        for number, members in enumerate(groups.values()):
            name = block if number == 0 else f"{block}_{number + 1}"
            cls = BlockClass(name, block, [p for p, _ in members], [e for _, e in members])
            if not self._explain(cls):
                self._split(cls)
                continue
            self._add(cls)

    def _split(self, cls: BlockClass) -> None:
        for number, (plan, env) in enumerate(zip(cls.plans, cls.envs, strict=True)):
            single = BlockClass(cls.name if number == 0 else f"{cls.name}_{number + 1}", cls.block, [plan], [env])
            self._explain(single)
            self._add(single)

    def _add(self, cls: BlockClass) -> None:
        cls.name = _unique(cls.name, {c.name for c in self.classes} | self.taken)
        self.classes.append(cls)
        for place, plan in enumerate(cls.plans):
            self.by_plan[id(plan)] = (cls, place)

    def _structure(self, plan: ModulePlan) -> str:
        subs = [(s.attr, s.construct.cls, s.block and (s.block.repeated, sorted(
                 {self.by_plan[id(p)][0].name for p in s.block.plans}))) for s in plan.submodules]
        return repr((forward_code(plan).text, subs, plan.ties))

    def _explain(self, cls: BlockClass) -> bool:
        """Find each constructor argument's text; False when a nested block cannot be written
        for all copies at once (the copies then get a class each)."""
        cls.extras.clear()
        spec = self.catalogue[cls.block]
        assert isinstance(spec, BlockSpec)
        for index, sub in enumerate(cls.plans[0].submodules):
            if sub.block is not None:
                uses = [plan.submodules[index].block for plan in cls.plans]
                if len(cls.plans) > 1 and self.use_lines(sub, _raw(spec, sub.node_id), cls.envs, uses,  # type: ignore[arg-type]
                                                         cls) is None:
                    return False
                continue
            subs = [plan.submodules[index] for plan in cls.plans]
            columns = _construct_columns(subs, self._defaults(sub))
            if columns is None:
                return False
            for key, column in columns.items():
                name = _param_name(key, column, subs)
                if self._column_text(spec, sub.node_id, name, column, cls.envs) is None:
                    cls.extras[f"{sub.attr}_{name}"] = column
        return True

    @staticmethod
    def _column_text(spec: BlockSpec, node_id: str, name: str, column: list[Any], envs: list[Env]) -> str | None:
        """How a block class writes one constructor argument of inner node ``node_id``: as the
        file gives it (a number, or an expression of the block's parameters); else a block
        parameter or another node's expression that gives the same values in every copy
        (an inferred size); else the number all copies share."""
        raw = _raw_param(spec, node_id, name)
        constant = _symbolic(column, [])
        if raw is not None and not is_expression(raw) and constant is not None:
            return constant
        others = [value for node in spec.block.nodes for value in node.params.values()
                  if is_expression(value) and value != raw and INDEX not in _words(value)]
        candidates = _candidates(raw, envs, []) + _candidates(None, envs, spec_names(envs))
        for value in dict.fromkeys(others):
            candidates += _candidates(value, envs, [])
        found = _symbolic(column, candidates, prefer_candidates=True)
        return found if found is not None else constant

    def _defaults(self, sub: Submodule) -> dict[str, Any]:
        """The layer's parameter defaults (what a keyword left out of a construct means)."""
        return {name: _plain(value) for name, value in self.catalogue[sub.node_type].defaults.items()}

    def _class_code(self, cls: BlockClass) -> Code:
        spec = self.catalogue[cls.block]
        assert isinstance(spec, BlockSpec)
        plan = cls.plans[0]
        params = ["self"] + [f"{p.name}: {_annotation(p.default)} = {literal(_plain(p.default))}"
                             for p in spec.params if p.name != REPEAT]
        if cls.extras:
            params += ["*"] + [f"{name}: {_annotation(values[0])}" for name, values in cls.extras.items()]
        code = Code()
        code.write([f"class {cls.name}(nn.Module):"])
        if spec.block.description:
            lines = textwrap.wrap(spec.block.description.splitlines()[0], 88 - len(INDENT) - 6)
            if len(lines) == 1:
                code.write([f'{INDENT}"""{lines[0]}"""', ""])
            else:
                code.write([f'{INDENT}"""{lines[0]}', *[INDENT + line for line in lines[1:]], f'{INDENT}"""', ""])
        code.write([*format_def(1, "__init__", params, "None"), f"{INDENT * 2}super().__init__()"])
        for index, sub in enumerate(plan.submodules):
            if sub.comment:
                code.write([f"{INDENT * 2}# {sub.comment}"], sub.node_id)
            code.write(fit_assignment(INDENT * 2, f"self.{sub.attr}", None, [self._member(cls, spec, index, sub)]),
                       sub.node_id)
        frozen_and_ties(code, plan)
        code.write([""])
        code.append(forward_code(plan))
        return code

    def _member(self, cls: BlockClass, spec: BlockSpec, index: int, sub: Submodule) -> str:
        if sub.block is not None:
            uses = [plan.submodules[index].block for plan in cls.plans]
            text = self.use_lines(sub, _raw(spec, sub.node_id), cls.envs, uses, cls)  # type: ignore[arg-type]
            return text if text is not None else _copies_text(self, sub)
        subs = [plan.submodules[index] for plan in cls.plans]
        args = []
        for key, column in (_construct_columns(subs, self._defaults(sub)) or {}).items():
            name = _param_name(key, column, subs)
            extra = f"{sub.attr}_{name}"
            text = extra if extra in cls.extras else self._column_text(spec, sub.node_id, name, column, cls.envs)
            args.append(f"{text}" if key.startswith("#") else f"{key}={text}")
        return f"{sub.construct.cls}({', '.join(args)})"


def _value_text(column: list[Any], given: Any, envs: list[Env]) -> str | None:
    """An expression the file gives (if it fits every copy), else the value all copies share,
    else a parameter of the enclosing block that fits."""
    if is_expression(given):
        found = _symbolic(column, _candidates(given, envs, []), prefer_candidates=True)
        if found is not None:
            return found
    return _symbolic(column, _candidates(None, envs, spec_names(envs)))


def _owner_argument(owner: BlockClass | None, name: str, column: list[Any], owners: list[int]) -> str | None:
    """Make ``name`` an argument of the enclosing class, when each of its copies passes one
    value (not one per repeat copy)."""
    if owner is None:
        return None
    values: dict[int, Any] = {}
    for place, value in zip(owners, column, strict=True):
        if literal(_plain(values.setdefault(place, value))) != literal(_plain(value)):
            return None
    owner.extras[name] = [values[place] for place in range(len(owner.plans))]
    return name


def model_member(classes: BlockClasses, sub: Submodule, raw: Mapping[str, Any]) -> str:
    """The constructor text of a block node of the model itself."""
    text = classes.use_lines(sub, raw)
    return text if text is not None else _copies_text(classes, sub)


def _copies_text(classes: BlockClasses, sub: Submodule) -> str:
    """A list of each copy's own call (copies no comprehension describes)."""
    assert sub.block is not None
    calls = []
    for plan, env in zip(sub.block.plans, sub.block.envs, strict=True):
        cls, place = classes.by_plan[id(plan)]
        spec = classes.catalogue[cls.block]
        args = [f"{key}={literal(_plain(value))}" for key, value in env.items()
                if literal(_plain(value)) != literal(_plain(spec.defaults.get(key)))]
        args += [f"{name}={literal(values[place])}" for name, values in cls.extras.items()]
        calls.append(f"{cls.name}({', '.join(args)})")
    return f"nn.ModuleList([{', '.join(calls)}])" if sub.block.repeated else calls[0]


def frozen_and_ties(code: Code, plan: ModulePlan) -> None:
    frozen = [sub for sub in plan.submodules if sub.frozen]
    if frozen or plan.ties:
        code.write([""])
    for sub in frozen:
        code.write(format_call(2, f"self.{sub.attr}.requires_grad_(False)"), sub.node_id)
    owners = {sub.attr: sub.node_id for sub in plan.submodules}
    for tie in plan.ties:  # the lines of the node that declares the tie
        for line in tie.lines():
            target, _, value = line.partition(" = ")
            code.write(format_call(2, line) if line.startswith("nn.") else format_assignment(2, target, value),
                       owners[tie.attr])


_ABSENT = object()  # a block parameter a copy does not have


def _construct_columns(subs: list[Submodule], defaults: Mapping[str, Any]) -> dict[str, list[Any]] | None:
    """Each constructor argument's value in every copy: ``#0``, ``#1`` for positional ones,
    the keyword for others (left out: the layer's default). None when the copies call
    different classes or leave out a keyword that has no default."""
    if len({sub.construct.cls for sub in subs}) != 1 or len({len(sub.construct.args) for sub in subs}) != 1:
        return None
    columns: dict[str, list[Any]] = {}
    for j in range(len(subs[0].construct.args)):
        columns[f"#{j}"] = [sub.construct.args[j] for sub in subs]
    keys: list[str] = []
    for sub in subs:
        keys += [key for key in sub.construct.kwargs if key not in keys]
    order = {name: place for place, name in enumerate(defaults)}
    keys.sort(key=lambda key: order.get(key, len(order)))  # in the layer's own order, as one copy writes them
    for key in keys:
        if any(key not in sub.construct.kwargs for sub in subs) and key not in defaults:
            return None
        columns[key] = [sub.construct.kwargs.get(key, defaults.get(key)) for sub in subs]
    return columns


def _param_name(key: str, column: list[Any], subs: list[Submodule]) -> str:
    """The parameter a constructor argument passes: its keyword, or for a positional one the
    parameter whose value it has in every copy."""
    if not key.startswith("#"):
        return key
    texts = [literal(_plain(v)) for v in column]
    for name in subs[0].params:
        if all(literal(_plain(sub.params.get(name))) == text for sub, text in zip(subs, texts, strict=True)):
            return name
    return f"arg{key[1:]}"


def _instances(top: ModulePlan) -> dict[str, list[tuple[ModulePlan, Env]]]:
    """Each block's distinct copies (plan and parameter values), inner blocks first."""
    found: dict[int, tuple[str, ModulePlan, Env]] = {}
    order: list[int] = []

    def visit(plan: ModulePlan) -> None:
        for sub in plan.submodules:
            if sub.block is None:
                continue
            for copy, env in zip(sub.block.plans, sub.block.envs, strict=True):
                if id(copy) not in found:
                    found[id(copy)] = (sub.block.block, copy, env)
                    visit(copy)
                    order.append(id(copy))

    visit(top)
    grouped: dict[str, list[tuple[ModulePlan, Env]]] = {}
    for key in order:
        block, plan, env = found[key]
        grouped.setdefault(block, []).append((plan, env))
    return grouped


def _symbolic(values: list[Any], candidates: list[tuple[str, list[Any]]],
              prefer_candidates: bool = False) -> str | None:
    """The text that gives ``values`` in every copy: a literal when all copies agree (unless
    ``prefer_candidates``), else the first candidate expression that gives them all."""
    if any(v is _ABSENT for v in values):
        return None
    texts = [literal(_plain(v)) for v in values]
    if all(text == texts[0] for text in texts) and not prefer_candidates:
        return texts[0]
    for text, column in candidates:
        if len(column) == len(values) and all(
                c is not _ABSENT and literal(_plain(c)) == t for c, t in zip(column, texts, strict=True)):
            return text
    return None


def _candidates(raw: Any, envs: list[Env], names: list[str]) -> list[tuple[str, list[Any]]]:
    """Texts that may explain a value: the expression the file gives, then block parameters."""
    found = []
    if is_expression(raw):
        try:
            found.append((canonical_text(raw), [evaluate(raw, env) for env in envs]))
        except ExpressionError:
            pass
    found += [(name, [env.get(name, _ABSENT) for env in envs]) for name in names]
    return found


def spec_names(envs: list[Env]) -> list[str]:
    return [name for name in (envs[0] if envs else {}) if name != INDEX]


def _raw(spec: BlockSpec, node_id: str) -> dict[str, Any]:
    try:
        return dict(spec.block.node(node_id).params)
    except KeyError:
        return {}


def _raw_param(spec: BlockSpec, node_id: str, key: str) -> Any:
    return _raw(spec, node_id).get(key)


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


_ANNOTATIONS = {"bool": "bool", "int": "int", "float": "float", "ints": "tuple[int, ...]", "str": "str"}


def _annotation(value: Any) -> str:
    return _ANNOTATIONS[value_kind(value)]


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate = f"{name}_{number}"
        number += 1
    return candidate


def _words(text: str) -> set[str]:
    import re

    return set(re.findall(r"\w+", text))
