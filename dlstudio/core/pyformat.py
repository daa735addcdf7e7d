"""Lay out generated statements exactly as ``ruff format`` does (line length 88).

The exporter must write a file that ``ruff format --check`` accepts, without running ruff.
Statements are built as a small document of groups, soft line breaks and indents (the model
ruff's printer uses): a group prints on one line when it fits, otherwise its line breaks
become newlines. Assignments choose between ruff's layouts with :class:`BestFit`. Only the
expression kinds that code generation emits are modelled; tests compare the output with
ruff itself on random statements, the ruff version pinned in pyproject.toml's dev extra.
"""

from __future__ import annotations

import ast
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

LINE_LENGTH = 88
INDENT = "    "

Mode = Literal["flat", "break"]
Doc = Any  # str | Line | Group | Indent | IfBreaks | BestFit | list[Doc]


@dataclass(frozen=True)
class Line:
    """A possible line break: ``soft`` prints nothing when flat, ``space`` a space, ``hard`` always breaks."""

    kind: Literal["soft", "space", "hard"]


SOFT, SPACE, HARD = Line("soft"), Line("space"), Line("hard")


@dataclass
class Group:
    """Content printed flat if it fits on the rest of the line, else with its breaks expanded."""

    contents: Doc
    expand: bool = False


@dataclass
class Indent:
    contents: Doc


@dataclass
class IfBreaks:
    """Content printed only when the enclosing group is expanded (a trailing comma, a paren)."""

    contents: Doc


@dataclass
class BestFit:
    """The first variant that fits; ``measures`` says how: its ``first`` line or ``all`` lines
    with every group flat, or every line as ``printed`` (groups breaking where they must)."""

    variants: list[Doc]
    measures: list[str] = field(default_factory=list)


def text_width(text: str) -> int:
    """Columns ``text`` takes: wide East Asian characters count 2, combining marks 0."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return width


class _Printer:
    """Ruff's printing algorithm: groups measured against the rest of the line, left to right."""

    def __init__(self, width: int, column: int) -> None:
        self.width = width
        self.column = column
        self.parts: list[str] = []
        self.measured_fits = False

    def print(self, doc: Doc, indent: int) -> str:
        return self.print_as(doc, indent, "break")

    def print_as(self, doc: Doc, indent: int, mode: Mode) -> str:
        commands: list[tuple[int, Mode, Doc]] = [(indent, mode, doc)]
        while commands:
            level, mode, item = commands.pop()
            self._print_one(level, mode, item, commands)
        return "".join(self.parts)

    def _print_one(self, level: int, mode: Mode, item: Doc, commands: list) -> None:
        if isinstance(item, str):
            self.parts.append(item)
            self.column += text_width(item)
        elif isinstance(item, list):
            commands.extend((level, mode, part) for part in reversed(item))
        elif isinstance(item, Indent):
            commands.append((level + 1, mode, item.contents))
        elif isinstance(item, IfBreaks):
            if mode == "break":
                commands.append((level, mode, item.contents))
        elif isinstance(item, Line):
            self._line(level, mode, item)
        elif isinstance(item, Group):
            commands.append((level, self._group_mode(level, mode, item, commands), item.contents))
        elif isinstance(item, BestFit):
            commands.append(self._best_fit(level, mode, item, commands))
        else:
            raise TypeError(f"not a document element: {item!r}")

    def _line(self, level: int, mode: Mode, line: Line) -> None:
        if mode == "flat" and line.kind != "hard":
            if line.kind == "space":
                self.parts.append(" ")
                self.column += 1
            return
        self.parts.append("\n" + INDENT * level)
        self.column = len(INDENT) * level
        self.measured_fits = False

    def _group_mode(self, level: int, mode: Mode, group: Group, commands: list) -> Mode:
        if group.expand:
            return "break"
        if mode == "flat" and self.measured_fits:
            return "flat"
        self.measured_fits = True
        fits = self._fits([(level, "flat", group.contents)], commands, all_lines=False)
        return "flat" if fits else "break"

    def _best_fit(self, level: int, mode: Mode, best: BestFit, commands: list) -> tuple:
        if mode == "flat" and self.measured_fits:
            return (level, "flat", best.variants[0])
        self.measured_fits = True
        for variant, measure in zip(best.variants[:-1], best.measures, strict=False):
            if measure == "printed":
                fits = self._fits_printed(variant, level)
            else:
                fits = self._fits([(level, "flat", variant)], commands, all_lines=measure == "all")
            if fits:
                return (level, "flat", variant)
        return (level, "break", best.variants[-1])

    def _fits_printed(self, variant: Doc, level: int) -> bool:
        """Whether every line of ``variant``, printed as it would be, fits (the variant must end
        its statement)."""
        printer = _Printer(self.width, self.column)
        printer.measured_fits = True
        text = printer.print_as(variant, level, "flat")
        first, *rest = text.split("\n")
        return self.column + text_width(first) <= self.width and all(
            text_width(line) <= self.width for line in rest)

    def _fits(self, pending: list, rest: list, all_lines: bool) -> bool:
        """Whether ``pending`` (then ``rest``) fits up to the next line break (or all lines)."""
        stack = list(pending)
        rest_index = len(rest)
        remaining = self.width - self.column
        while True:
            if not stack:
                if rest_index == 0:
                    return True
                rest_index -= 1
                stack.append(rest[rest_index])
                continue
            level, mode, item = stack.pop()
            if isinstance(item, str):
                remaining -= text_width(item)
                if remaining < 0:
                    return False
            elif isinstance(item, list):
                stack.extend((level, mode, part) for part in reversed(item))
            elif isinstance(item, Indent):
                stack.append((level + 1, mode, item.contents))
            elif isinstance(item, IfBreaks):
                if mode == "break":
                    stack.append((level, mode, item.contents))
            elif isinstance(item, Group):
                stack.append((level, "break" if item.expand else mode, item.contents))
            elif isinstance(item, BestFit):
                stack.append((level, mode, item.variants[0 if mode == "flat" else -1]))
            elif isinstance(item, Line):
                if mode == "flat" and item.kind != "hard":
                    remaining -= item.kind == "space"
                    continue
                if not all_lines:
                    return True
                remaining = self.width - len(INDENT) * level


def render(doc: Doc, level: int, width: int = LINE_LENGTH) -> list[str]:
    """Print ``doc`` as a statement at indentation ``level``; returns its lines."""
    text = _Printer(width, len(INDENT) * level).print(doc, level)
    return [line.rstrip() for line in (INDENT * level + text).split("\n")]


# -- expressions ------------------------------------------------------------------------

_PRECEDENCE = {
    ast.BitOr: 4, ast.BitXor: 5, ast.BitAnd: 6, ast.LShift: 7, ast.RShift: 7,
    ast.Add: 8, ast.Sub: 8, ast.Mult: 9, ast.Div: 9, ast.FloorDiv: 9, ast.Mod: 9,
    ast.MatMult: 9, ast.Pow: 11,
}
_OPERATORS = {
    ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.LShift: "<<", ast.RShift: ">>",
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.MatMult: "@", ast.Pow: "**",
}
_UNARY = {ast.USub: "-", ast.UAdd: "+", ast.Invert: "~", ast.Not: "not "}


def string_literal(value: str) -> str:
    """A str literal the way ruff writes it: double quotes unless that needs more escapes."""
    quote = "'" if value.count('"') > value.count("'") else '"'
    body = []
    for ch in value:
        if ch == "\\":
            body.append("\\\\")
        elif ch == quote:
            body.append("\\" + quote)
        elif ch in "'\"":
            body.append(ch)
        else:
            body.append(repr(ch)[1:-1])
    return quote + "".join(body) + quote


def constant_text(value: object) -> str:
    """Source text of a constant as ruff formats it."""
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, float):
        return repr(value).replace("e+", "e")
    if value is Ellipsis:
        return "..."
    return repr(value)


def expression(source: str) -> ast.expr:
    """Parse one expression (or an assignment target list such as ``a, (b, c)``)."""
    return ast.parse(source.strip(), mode="eval").body


def expr_doc(node: ast.expr) -> Doc:
    """The document of an expression, with the groups ruff would use."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return constant_text(node.value)
    if isinstance(node, ast.Attribute):
        return [expr_doc(node.value), "." + node.attr]
    if isinstance(node, ast.Call):
        items = [expr_doc(a) for a in node.args] + [_keyword_doc(k) for k in node.keywords]
        return [expr_doc(node.func), arguments_doc(items)]
    if isinstance(node, ast.Subscript):
        inner = _flat(node.slice, in_subscript=True)
        return [expr_doc(node.value), Group(["[", Indent([SOFT, inner]), SOFT, "]"])]
    if isinstance(node, ast.Tuple | ast.List):
        return collection_doc([expr_doc(e) for e in node.elts], isinstance(node, ast.Tuple))
    if isinstance(node, ast.Starred):
        return ["*", expr_doc(node.value)]
    if isinstance(node, ast.UnaryOp):
        return [_UNARY[type(node.op)], _operand_doc(node.operand, node)]
    if isinstance(node, ast.BinOp):
        return Group(_binary_parts(node))
    if isinstance(node, ast.Slice):
        return _slice_text(node)
    return ast.unparse(node)  # kinds code generation does not emit: kept on one line


def _keyword_doc(keyword: ast.keyword) -> Doc:
    prefix = "**" if keyword.arg is None else f"{keyword.arg}="
    return [prefix, expr_doc(keyword.value)]


def arguments_doc(items: list[Doc]) -> Doc:
    """``(a, b)`` for a call: breaks after ``(``, then hugs the arguments or puts one per line."""
    if not items:
        return "()"
    joined = _join(items) + [IfBreaks(",")]
    return Group(["(", Indent([SOFT, Group(joined)]), SOFT, ")"])


def collection_doc(items: list[Doc], is_tuple: bool) -> Doc:
    """A tuple or list literal: one line, or one item per line with a trailing comma."""
    open_, close = ("(", ")") if is_tuple else ("[", "]")
    if not items:
        return open_ + close
    trailing: Doc = "," if is_tuple and len(items) == 1 else IfBreaks(",")
    return Group([open_, Indent([SOFT, *_join(items), trailing]), SOFT, close])


def bare_tuple_doc(items: list[Doc]) -> Doc:
    """An unparenthesized tuple (a target list or ``return a, b``): parenthesized if it breaks."""
    trailing: Doc = "," if len(items) == 1 else IfBreaks(",")
    return Group([IfBreaks("("), Indent([SOFT, *_join(items), trailing]), SOFT, IfBreaks(")")])


def _join(items: list[Doc]) -> list[Doc]:
    joined: list[Doc] = []
    for index, item in enumerate(items):
        if index:
            joined += [",", SPACE]
        joined.append(item)
    return joined


def _binary_parts(node: ast.BinOp) -> list[Doc]:
    op = _OPERATORS[type(node.op)]
    left = _operand_doc(node.left, node, right=False)
    right = _operand_doc(node.right, node, right=True)
    if isinstance(node.op, ast.Pow) and _simple_power(node.left) and _simple_power(node.right):
        return [left, op, right]
    if isinstance(left, Group) and _same_level(node.left, node):
        return [*left.contents, SPACE, op + " ", right]
    return [left, SPACE, op + " ", right]


def _same_level(child: ast.expr, parent: ast.BinOp) -> bool:
    return isinstance(child, ast.BinOp) and _PRECEDENCE[type(child.op)] == _PRECEDENCE[type(parent.op)]


def _operand_doc(child: ast.expr, parent: ast.expr, right: bool = False) -> Doc:
    doc = expr_doc(child)
    if _needs_parens(child, parent, right):
        return Group(["(", Indent([SOFT, doc]), SOFT, ")"])
    return doc


def _needs_parens(child: ast.expr, parent: ast.expr, right: bool) -> bool:
    if isinstance(parent, ast.UnaryOp):
        return isinstance(child, ast.BinOp)  # ruff writes -(x**2) for -x**2
    if not isinstance(parent, ast.BinOp):
        return False
    mine = _PRECEDENCE[type(parent.op)]
    if isinstance(child, ast.UnaryOp):
        return isinstance(parent.op, ast.Pow) and not right
    if not isinstance(child, ast.BinOp):
        return False
    theirs = _PRECEDENCE[type(child.op)]
    if isinstance(parent.op, ast.Pow):
        return theirs < mine or (theirs == mine and not right)
    return theirs < mine or (theirs == mine and right)


def _simple_power(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        return not isinstance(node.op, ast.Not) and _simple_power(node.operand)
    if isinstance(node, ast.Attribute):
        return _simple_power(node.value)
    return isinstance(node, ast.Name) or (
        isinstance(node, ast.Constant) and isinstance(node.value, int | float | complex | bool | None)
    )


def _flat(node: ast.expr, in_subscript: bool = False) -> str:
    """One-line text of an expression that is never split (slices, comparisons, ...)."""
    if isinstance(node, ast.Tuple) and in_subscript and node.elts:
        return ", ".join(_flat(e, True) for e in node.elts) + ("," if len(node.elts) == 1 else "")
    if isinstance(node, ast.Slice):
        return _slice_text(node)
    return render_flat(expr_doc(node))


def _slice_text(node: ast.Slice) -> str:
    parts = [node.lower, node.upper] + ([node.step] if node.step is not None else [])
    complex_ = any(p is not None and not _simple_slice_part(p) for p in parts)
    texts = ["" if p is None else _flat(p) for p in parts]
    if not complex_:
        return ":".join(texts)
    out = texts[0]
    for text in texts[1:]:
        out += (" :" if out else ":") + (f" {text}" if text else "")
    return out


def _simple_slice_part(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        return _simple_slice_part(node.operand)
    return isinstance(node, ast.Name | ast.Constant)


def render_flat(doc: Doc) -> str:
    """A document printed on one line."""
    return _Printer(10**9, 0).print(Group(doc), 0)


# -- statements -------------------------------------------------------------------------


def _splittable(node: ast.expr) -> bool:
    """Values ruff lays out with its best-fit assignment variants (calls, subscripts, attributes)."""
    return isinstance(node, ast.Call | ast.Subscript | ast.Attribute)


def _target_doc(node: ast.expr) -> Doc:
    if isinstance(node, ast.Tuple):
        return bare_tuple_doc([expr_doc(e) for e in node.elts])
    return expr_doc(node)


def assignment_doc(target: str, value: str) -> Doc:
    """``target = value`` with the layouts ruff chooses between, in its order of preference."""
    target_node, value_node = expression(target), expression(value)
    left, right = _target_doc(target_node), expr_doc(value_node)
    head = [left, " = "]
    if _splittable(value_node):
        last = [left, " = ", right]
        return BestFit(
            [
                [*head, right],
                [*head, Group(right, expand=True)],
                [*head, "(", Indent([HARD, right]), HARD, ")"],
                [*head, "(", Indent([HARD, Group(right, expand=True)]), HARD, ")"],
                last,
            ],
            ["first", "first", "all", "printed"],
        )
    if isinstance(value_node, ast.Name | ast.Constant):
        return BestFit(
            [[*head, right], [*head, "(", Indent([HARD, right]), HARD, ")"], [*head, right]],
            ["first", "all"],
        )
    return [*head, Group([IfBreaks("("), Indent([SOFT, right]), SOFT, IfBreaks(")")])]


def format_assignment(level: int, target: str, value: str, width: int = LINE_LENGTH) -> list[str]:
    """The lines of ``target = value`` at indentation ``level``, as ruff formats them."""
    return render(assignment_doc(target, value), level, width)


def format_call(level: int, call: str, width: int = LINE_LENGTH) -> list[str]:
    """A call as a statement (``self.fc.requires_grad_(False)``), as ruff formats it."""
    return render(expr_doc(expression(call)), level, width)


def format_return(level: int, names: list[str], width: int = LINE_LENGTH) -> list[str]:
    """``return a`` or ``return a, b``, as ruff formats it."""
    if len(names) == 1:
        value = names[0]
        doc = BestFit(
            [["return ", value], ["return (", Indent([HARD, value]), HARD, ")"], ["return ", value]],
            ["first", "all"],
        )
    else:
        doc = ["return ", bare_tuple_doc(list(names))]
    return render(doc, level, width)


def format_def(level: int, name: str, params: list[str], returns: str | None,
               width: int = LINE_LENGTH) -> list[str]:
    """``def name(params) -> returns:`` with the parameters hugged or one per line."""
    arrow = f" -> {returns}" if returns else ""
    return render([f"def {name}", arguments_doc(list(params)), arrow + ":"], level, width)
