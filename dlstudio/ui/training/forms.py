"""A form generated from an argument model (a dataset's, optimizer's, scheduler's or loss's).

The argument models in :mod:`dlstudio.core.training` are the single declaration of what each
named thing accepts; this form reads their fields: a check box for a flag, a choice for a
``Literal``, a choice of the graph's nodes for a field that names one (its ``json_schema_extra``
says ``{"node": "Output"}``), a text field (placeholder: the default, or what its ``unset``
extra says leaving it empty means) for numbers, lists and text. An empty field means "the default" and removes the key. Values are not judged here: whatever the user
types goes to the document, and the training checks report a bad value as a diagnostic.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLineEdit, QWidget

from dlstudio.ui.panels import select_all_on_focus
from dlstudio.ui.theme import plain_tooltip


def _base(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``Optional``, and whether None is allowed."""
    args = typing.get_args(annotation)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else Any), True
    return annotation, False


def _extra(info: Any) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def node_kind(info: Any) -> str | None:
    """The node type a field names (``Input``, ``Output``), when it names one."""
    return _extra(info).get("node")


def parse(text: str, annotation: Any) -> Any:
    """The value typed into a field: a number, a list of numbers, or the text itself."""
    text = text.strip()
    if not text:
        return None
    base, _ = _base(annotation)
    origin = typing.get_origin(base)
    try:
        if base is int:
            return int(text)
        if base is float:
            return float(text)
        if origin in (tuple, list):
            return [json.loads(part) for part in text.strip("[]()").split(",") if part.strip()]
    except ValueError:
        return text
    return text


def show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(show(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


class ArgsForm(QWidget):
    """Editors for one argument model; ``changed(name, value)`` with None meaning the default."""

    changed = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: type[BaseModel] | None = None
        self.editors: dict[str, QWidget] = {}
        self.nodes: dict[str, list[str]] = {}  # node ids by type, for the fields that name a node
        self.skip: tuple[str, ...] = ()
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setVerticalSpacing(4)

    def set_model(self, model: type[BaseModel] | None, values: dict[str, Any], skip: tuple[str, ...] = (),
                  nodes: dict[str, list[str]] | None = None) -> None:
        """Show ``values`` in editors for ``model`` (rebuilt only when the model or ``skip``
        changes); ``nodes`` lists the graph's node ids by type for the fields naming a node."""
        self.nodes = nodes or {}
        if model is not self.model or skip != self.skip:
            self._rebuild(model, skip)
        for name, editor in self.editors.items():
            self._show(name, editor, values.get(name))
        self.setVisible(bool(self.editors))

    def _rebuild(self, model: type[BaseModel] | None, skip: tuple[str, ...]) -> None:
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.model = model
        self.skip = skip
        self.editors = {}
        for name, info in (model.model_fields.items() if model is not None else ()):
            if name in skip:
                continue
            editor = self._editor(name, info)
            help_text = info.description or ""
            default = "" if info.default is PydanticUndefined else f"default: {show(info.default)}"
            editor.setToolTip(plain_tooltip("\n".join(t for t in (help_text, default) if t)))
            self.editors[name] = editor
            self.layout_.addRow(name.replace("_", " "), editor)

    def _editor(self, name: str, info: Any) -> QWidget:
        base, _ = _base(info.annotation)
        if node_kind(info) is not None:
            nodes = QComboBox()
            nodes.activated.connect(lambda i, n=name, c=nodes: self.changed.emit(n, c.itemData(i) or None))
            return nodes
        if base is bool:
            box = QCheckBox()
            box.toggled.connect(lambda on, n=name, d=info.default: self.changed.emit(n, None if on == d else on))
            return box
        if typing.get_origin(base) is typing.Literal:
            combo = QComboBox()
            for option in typing.get_args(base):
                combo.addItem(str(option), option)
            combo.activated.connect(lambda i, n=name, c=combo, d=info.default: self.changed.emit(
                n, None if c.itemData(i) == d else c.itemData(i)))
            return combo
        edit = QLineEdit()
        select_all_on_focus(edit)
        if info.default is not PydanticUndefined and info.default is not None:
            edit.setPlaceholderText(show(info.default))
        elif info.default is None:  # what leaving it unset means, when the field says
            edit.setPlaceholderText(str(_extra(info).get("unset", "auto")))
        edit.editingFinished.connect(lambda n=name, e=edit, a=info.annotation: self._edited(n, e, a))
        return edit

    def _edited(self, name: str, edit: QLineEdit, annotation: Any) -> None:
        if edit.isModified():
            edit.setModified(False)
            self.changed.emit(name, parse(edit.text(), annotation))

    def _show(self, name: str, editor: QWidget, value: Any) -> None:
        info = self.model.model_fields[name] if self.model is not None else None
        default = info.default if info is not None and info.default is not PydanticUndefined else None
        shown = default if value is None else value
        editor.blockSignals(True)
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(shown))
        elif isinstance(editor, QComboBox) and info is not None and node_kind(info) is not None:
            self._show_nodes(editor, node_kind(info) or "", value)
        elif isinstance(editor, QComboBox):
            index = editor.findData(shown)
            editor.setCurrentIndex(max(index, 0))
        elif isinstance(editor, QLineEdit) and not editor.hasFocus():
            editor.setText(show(value))
            editor.setModified(False)
        editor.blockSignals(False)

    def _show_nodes(self, combo: QComboBox, kind: str, value: Any) -> None:
        """The graph's nodes of ``kind`` to choose from, ``value`` chosen (named even when missing)."""
        ids = self.nodes.get(kind, [])
        items = [("not set", ""), *((i, i) for i in ids)]
        if value and value not in ids:
            items.append((f"{value} (no such {kind})", value))
        if [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())] != items:
            combo.clear()
            for text, data in items:
                combo.addItem(text, data)
        combo.setCurrentIndex(max(combo.findData(value or ""), 0))
