"""Parameter editors generated from a catalogue :class:`~dlstudio.core.spec.Param`.

One editor class per parameter kind, picked from :data:`EDITORS`; no per-layer code. An
editor shows a value (greyed when it is inferred or a default) and emits :attr:`committed`
with the value the user entered, ``None`` meaning "remove it" (back to default / inferred).
Text the user types that cannot be read emits :attr:`refused` with the reason. Where a value
may be a ``$`` expression (inside a block, or a block's own parameters) every kind is edited
as text by an :class:`ExpressionEditor`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QWheelEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from dlstudio.core.blocks import EXPRESSION_MARK
from dlstudio.core.params import HUGE
from dlstudio.core.spec import Param
from dlstudio.ui.panels import select_all_on_focus, set_text_colour
from dlstudio.ui.theme import colors

SPIN_MIN, SPIN_MAX = -(2**31), 2**31 - 1  # what a QSpinBox holds
_TOKEN = re.compile(r"-?\d+|[A-Za-z_][A-Za-z0-9_]*")


class _SpinBox(QSpinBox):
    """A spin box that lets the wheel scroll the panel unless it has focus."""

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class _ComboBox(QComboBox):
    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class ParamEditor(QWidget):
    """Base: a widget that edits one parameter."""

    committed = Signal(object)
    refused = Signal(str)

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = param
        self._updating = False
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def show_value(self, value: Any, explicit: bool) -> None:
        """Display ``value``; greyed and italic unless the user set it (``explicit``)."""
        self._updating = True
        try:
            self._show(value)
        finally:
            self._updating = False
        editor = self.focus_widget()
        font = QFont(editor.font())
        font.setItalic(not explicit)
        editor.setFont(font)
        if explicit:
            editor.setPalette(self.palette())
        else:
            set_text_colour(editor, colors().muted)

    def focus_widget(self) -> QWidget:
        raise NotImplementedError

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def _emit(self, value: Any) -> None:
        if not self._updating:
            self.committed.emit(value)


class IntEditor(ParamEditor):
    """A spin box within the declared range; a nullable parameter gets a "none" step below it."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.spin = _SpinBox(self)
        self.spin.setKeyboardTracking(False)
        self.spin.setAccelerated(True)
        floor = SPIN_MIN + 1 if param.nullable else SPIN_MIN  # room for the "none" step
        low = max(int(param.min) if param.min is not None else -HUGE, floor)
        high = min(int(param.max) if param.max is not None else HUGE, SPIN_MAX)
        if param.nullable:
            self.spin.setSpecialValueText("inferred" if param.inferred else "none")
            low -= 1
        self.spin.setRange(low, high)
        self.spin.valueChanged.connect(self._changed)
        self._layout.addWidget(self.spin)

    def focus_widget(self) -> QWidget:
        return self.spin

    def _show(self, value: Any) -> None:
        if value is None or isinstance(value, bool) or not isinstance(value, int):
            self.spin.setValue(self.spin.minimum())
        else:
            self.spin.setValue(value)

    def _changed(self, value: int) -> None:
        if self.param.nullable and value == self.spin.minimum():
            self._emit(None)
        else:
            self._emit(value)


class BoolEditor(ParamEditor):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.check = QCheckBox(self)
        self.check.toggled.connect(self._emit)
        self._layout.addWidget(self.check)
        self._layout.addStretch(1)

    def focus_widget(self) -> QWidget:
        return self.check

    def _show(self, value: Any) -> None:
        self.check.setChecked(bool(value))


class ChoiceEditor(ParamEditor):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.combo = _ComboBox(self)
        if param.nullable:
            self.combo.addItem("none", None)
        for choice in param.choices:
            self.combo.addItem(str(choice), choice)
        self.combo.activated.connect(lambda index: self._emit(self.combo.itemData(index)))
        self._layout.addWidget(self.combo)

    def focus_widget(self) -> QWidget:
        return self.combo

    def _show(self, value: Any) -> None:
        index = self.combo.findData(value)
        self.combo.setCurrentIndex(max(index, 0))


class TextLineEditor(ParamEditor):
    """A line edit that commits on Enter or focus-out; subclasses parse and format the text."""

    placeholder = ""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.line = QLineEdit(self)
        self.line.setPlaceholderText("inferred" if param.inferred else self.placeholder)
        self.line.editingFinished.connect(self._finished)
        self._layout.addWidget(self.line)
        self._shown = ""

    def focus_widget(self) -> QWidget:
        return self.line

    def _show(self, value: Any) -> None:
        self._shown = "" if value is None else self.format(value)
        if self.line.text() != self._shown:
            self.line.setText(self._shown)

    def _finished(self) -> None:
        text = self.line.text().strip()
        if text == self._shown:
            return
        if not text:
            self._emit(None)
            return
        try:
            value = self.parse(text)
        except ValueError as error:
            self.line.setText(self._shown)
            self.refused.emit(str(error))
            return
        self._emit(value)

    def parse(self, text: str) -> Any:
        return text

    def format(self, value: Any) -> str:
        return str(value)


class FloatEditor(TextLineEditor):
    """Free text so that 1e-5 and 0.1 both read naturally; range checks happen on commit."""

    placeholder = "a number"

    def parse(self, text: str) -> float:
        return parse_float(text)

    def format(self, value: Any) -> str:
        return repr(float(value)) if isinstance(value, int | float) else str(value)


class TupleEditor(TextLineEditor):
    """Sizes as ``3`` or ``3, 3`` (or a named option such as ``same``); shapes as ``3, 32, 32``."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        example = ", ".join(["3"] * (param.length or 2))
        options = [example] + (["3"] if param.scalar_ok and param.kind == "ints" else [])
        options += [str(c) for c in param.choices]
        if param.kind == "shape":
            options = ["3, 32, 32", "T, 64"]
        self.line.setPlaceholderText("e.g. " + " or ".join(options))

    def parse(self, text: str) -> Any:
        return parse_sizes(self.param, text)

    def format(self, value: Any) -> str:
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return str(value)


def parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{text[:40]}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError("the value must be a finite number")
    return value


def parse_sizes(param: Param, text: str) -> Any:
    """Sizes as ``3`` or ``3, 3`` (or one of the parameter's named options)."""
    if text in (str(c) for c in param.choices):
        return text
    body = text.strip().strip("[]()").replace(",", " ")
    tokens = body.split()
    if not tokens or any(_TOKEN.fullmatch(t) is None for t in tokens):
        raise ValueError(f"'{text[:40]}' is not a list of sizes: write them like 3, 3")
    values: list[Any] = [_item(t, param) for t in tokens]
    if param.kind == "ints" and any(isinstance(v, str) for v in values):
        allowed = "whole numbers or None" if param.none_items else "whole numbers"
        raise ValueError(f"'{text[:40]}': sizes here must be {allowed}")
    if param.kind == "ints" and param.scalar_ok and len(values) == 1 and not text.strip().startswith(("[", "(")):
        return values[0]
    return values


class ExpressionEditor(TextLineEditor):
    """A value as text, read as the parameter's kind, or a ``$`` expression kept as written
    (``$width * 4``: parameters of the block the node is in, and a repeat's ``index``)."""

    placeholder = "a value or a $expression"

    def parse(self, text: str) -> Any:
        if text.startswith(EXPRESSION_MARK):
            return text
        kind = self.param.kind
        if kind == "int":
            if not text.lstrip("-").isdigit():
                raise ValueError(f"'{text[:40]}' is not a whole number (or a $expression)")
            return int(text)
        if kind == "float":
            return parse_float(text)
        if kind == "bool":
            return _boolean(text)
        if kind == "choice":
            return _choice(self.param, text)
        if kind in ("ints", "shape"):
            return parse_sizes(self.param, text)
        return text

    def format(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return str(value)


def _boolean(text: str) -> bool:
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if text.lower() not in words:
        raise ValueError(f"'{text[:40]}' is not true or false (or a $expression)")
    return words[text.lower()]


def _choice(param: Param, text: str) -> Any:
    for choice in param.choices:
        if str(choice) == text:
            return choice
    raise ValueError(f"'{text[:40]}' is not one of {', '.join(str(c) for c in param.choices)}")


def _item(token: str, param: Param) -> Any:
    if token.lstrip("-").isdigit():
        return int(token)
    if param.none_items and token in ("None", "none", "null"):
        return None
    return token


EDITORS: dict[str, type[ParamEditor]] = {
    "int": IntEditor,
    "float": FloatEditor,
    "bool": BoolEditor,
    "choice": ChoiceEditor,
    "ints": TupleEditor,
    "shape": TupleEditor,
    "str": TextLineEditor,
}


def editor_for(param: Param, parent: QWidget | None = None, expressions: bool = False) -> ParamEditor:
    """The editor widget for ``param``'s kind; with ``expressions`` one that also takes a
    ``$`` expression."""
    editor = (ExpressionEditor if expressions else EDITORS[param.kind])(param, parent)
    editor.setObjectName(f"param_{param.name}")
    field = editor.focus_widget()
    field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    if isinstance(field, QLineEdit | QSpinBox):
        select_all_on_focus(field)
    return editor
