"""The inspector: edits the selected node (id, label, parameters) or, with none, the graph.

Editors come from the catalogue declaration (:mod:`.param_editors`). A value is checked
against its :class:`~dlstudio.core.spec.Param` before it reaches the document; a refused
value shows the reason under its editor. Inferred values show greyed with an "inferred"
tag, and the ↺ button removes an explicit value. A node of an unknown type shows as a
"missing layer" whose parameters are listed read-only and kept. Inside a block, and for a
block's own parameters, a value may be a ``$`` expression (edited as text); nodes there show
the shapes of the block's first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dlstudio.core.analysis import Analysis, Diagnostic
from dlstudio.core.block_edits import block_uses
from dlstudio.core.blocks import INDEX, BlockSpec, ExpressionError, is_expression, names_in
from dlstudio.core.params import ParamProblem, resolve_params
from dlstudio.core.spec import LayerSpec, Param
from dlstudio.core.summary import frozen_note, unreached_note
from dlstudio.core.tensor import format_shape
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.panels import human_count, plain_label, select_all_on_focus, set_text_colour
from dlstudio.ui.panels.param_editors import ParamEditor, editor_for
from dlstudio.ui.theme import colors, plain_tooltip

#: A line about a node from outside the document (the canvas overlay's), and its colour.
NodeNote = Callable[[str], tuple[str, QColor]]
#: Kinds picked from a list or a box, kept so inside blocks unless a value is an expression.
PICKED_KINDS = ("bool", "choice")


def param_problem(spec: LayerSpec, name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name`` of ``spec`` (None when it is)."""
    if value is None:
        return None
    try:
        resolve_params(spec, {name: value})
    except ParamProblem as problem:
        return problem.message
    return None


def _heading(text: str, size: float = 1.15) -> QLabel:
    label = plain_label(text, wrap=True)
    font = QFont(label.font())
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * size)
    label.setFont(font)
    return label


def _rule() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


def diagnostic_label(diagnostic: Diagnostic) -> QLabel:
    fix = f"\nFix: {diagnostic.fix}" if diagnostic.fix else ""
    label = plain_label(f"{diagnostic.severity.capitalize()}: {diagnostic.message}{fix}", wrap=True)
    set_text_colour(label, colors().error if diagnostic.severity == "error" else colors().warning)
    return label


class ParamRow:
    """Name, editor, reset button, help text and error line of one parameter in a grid."""

    def __init__(self, grid: QGridLayout, row: int, param: Param, expressions: bool = False) -> None:
        self.param = param
        self.refusal: str | None = None
        self.name = plain_label(param.name)
        self.name.setToolTip(plain_tooltip(param.help))
        self.editor: ParamEditor = editor_for(param, expressions=expressions)
        self.tag = plain_label("inferred" if param.inferred else "", muted=True, small=True)
        self.reset = QToolButton()
        self.reset.setText("↺")
        self.reset.setAutoRaise(True)
        self.reset.setToolTip(plain_tooltip(
            f"Remove {param.name}: {'infer it' if param.inferred else 'use the default'}"))
        self.help = plain_label(param.help, wrap=True, muted=True, small=True)
        self.error = plain_label("", wrap=True, small=True)
        set_text_colour(self.error, colors().error)
        self.error.hide()
        grid.addWidget(self.name, row, 0, Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(self.editor, row, 1)
        grid.addWidget(self.tag, row, 2)
        grid.addWidget(self.reset, row, 2)
        grid.addWidget(self.help, row + 1, 1, 1, 2)
        grid.addWidget(self.error, row + 2, 1, 1, 2)
        self.help.setVisible(bool(param.help))

    def show(self, value: Any, explicit: bool) -> None:
        self.editor.show_value(value, explicit)
        self.reset.setVisible(explicit)
        self.tag.setVisible(not explicit and self.param.inferred)

    def refuse(self, message: str | None) -> None:
        """Keep showing why the last entry was refused (until the next accepted edit)."""
        self.refusal = message
        self.show_error(message)

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))


class NodePage(QWidget):
    """Everything about one node: header, id and label, problems, shapes, parameters."""

    def __init__(self, document: GraphDocument, node_id: str, parent: QWidget | None = None,
                 note: NodeNote | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.node_id = node_id
        self.note_for = note
        node = document.node(node_id)
        self.node_type = node.type
        self.spec = document.catalogue.get(node.type)
        self.rows: dict[str, ParamRow] = {}
        layout = QVBoxLayout(self)
        layout.setSpacing(6)
        summary = self.spec.summary if self.spec else (
            "This file uses a layer type this version of DL Studio does not know. The node and "
            "its parameters are kept and saved unchanged; replace it with a layer from the palette.")
        layout.addWidget(_heading(node.type if self.spec else f"Missing layer: {node.type}"))
        layout.addWidget(plain_label(summary, wrap=True, muted=True))
        if isinstance(self.spec, BlockSpec):
            layout.addWidget(self._block_line())
        layout.addLayout(self._identity())
        self.problems = QVBoxLayout()
        layout.addLayout(self.problems)
        self.info = plain_label("", wrap=True)
        layout.addWidget(self.info)
        self.note = plain_label("", wrap=True)
        self.note.setObjectName("node_note")
        layout.addWidget(self.note)
        layout.addWidget(_rule())
        layout.addWidget(self._params_grid() if self.spec else self._raw_params())
        layout.addStretch(1)
        self.refresh(document.scope_analysis)

    def _block_line(self) -> QWidget:
        """Where the block is used, and a button that opens it for editing."""
        uses = len(block_uses(self.document.graph, self.node_type))
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(plain_label(f"A block of this file, used {uses} time{'s' * (uses != 1)}.", wrap=True))
        button = QPushButton("Open block")
        button.setObjectName("open_block")
        button.setToolTip(plain_tooltip("Edit the block's nodes (or double-click the node): every use changes"))
        button.clicked.connect(lambda: self.document.open_block(self.node_id))
        row.addWidget(button)
        return box

    def _identity(self) -> QGridLayout:
        grid = QGridLayout()
        self.id_edit = QLineEdit()
        self.id_edit.setObjectName("node_id")
        select_all_on_focus(self.id_edit)
        self.id_edit.editingFinished.connect(self._rename)
        self.id_error = plain_label("", wrap=True, small=True)
        set_text_colour(self.id_error, colors().error)
        self.id_error.hide()
        self.label_edit = QLineEdit()
        self.label_edit.setObjectName("node_label")
        select_all_on_focus(self.label_edit)
        self.label_edit.setPlaceholderText("optional description")
        self.label_edit.editingFinished.connect(self._relabel)
        grid.addWidget(plain_label("id"), 0, 0)
        grid.addWidget(self.id_edit, 0, 1)
        grid.addWidget(self.id_error, 1, 1)
        grid.addWidget(plain_label("label"), 2, 0)
        grid.addWidget(self.label_edit, 2, 1)
        self.frozen_box = QCheckBox("frozen: keep its weights while training")
        self.frozen_box.setObjectName("node_frozen")
        self.frozen_box.setToolTip("Transfer learning: the optimizer leaves this layer's parameters "
                                   "as they are (loaded or initial).")
        self.frozen_box.toggled.connect(lambda on: self.document.set_frozen(self.node_id, on))
        grid.addWidget(self.frozen_box, 3, 1)
        return grid

    def _params_grid(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        if not self.spec.params:
            grid.addWidget(plain_label("No parameters.", muted=True), 0, 0, 1, 3)
        value_of = self.document.node(self.node_id).params.get
        for index, param in enumerate(self.spec.params):
            in_block = bool(self.document.scope_path) and param.kind not in PICKED_KINDS
            expressions = param.expression_ok or in_block or is_expression(value_of(param.name))
            row = ParamRow(grid, index * 3, param, expressions)
            row.editor.committed.connect(lambda value, name=param.name: self._commit(name, value))
            row.editor.refused.connect(row.refuse)
            row.reset.clicked.connect(lambda _=False, name=param.name: self._commit(name, None))
            self.rows[param.name] = row
        return box

    def _raw_params(self) -> QWidget:
        params = self.document.node(self.node_id).params
        text = "\n".join(f"{key} = {json.dumps(value)}" for key, value in sorted(params.items()))
        return plain_label(f"Parameters (kept as they are):\n{text or 'none'}", wrap=True)

    # ----- showing -----------------------------------------------------------------------------

    def refresh(self, analysis: Analysis) -> None:
        """Show the node's current values, problems and shapes."""
        if not self.document.has_node(self.node_id):
            return
        node = self.document.node(self.node_id)
        if not self.id_edit.hasFocus():
            self.id_edit.setText(node.id)
        if not self.label_edit.hasFocus():
            self.label_edit.setText(node.label or "")
        with QSignalBlocker(self.frozen_box):
            self.frozen_box.setChecked(node.frozen)
        self.frozen_box.setVisible(node.frozen or bool(analysis.param_counts.get(self.node_id)))
        diagnostics = analysis.node_diagnostics(self.node_id)
        self._show_problems(diagnostics)
        self.info.setText(self._info_text(analysis))
        self._show_note()
        resolved = analysis.params.get(self.node_id, {})
        for name, row in self.rows.items():
            explicit = name in node.params
            value = node.params[name] if explicit else resolved.get(name, row.param.default)
            row.show(value, explicit)
            found = [d.message for d in diagnostics if d.param == name]
            row.show_error(found[0] if found else row.refusal)

    def _show_problems(self, diagnostics: list[Diagnostic]) -> None:
        while self.problems.count():
            widget = self.problems.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for diagnostic in diagnostics:
            self.problems.addWidget(diagnostic_label(diagnostic))

    def _show_note(self) -> None:
        text, colour = self.note_for(self.node_id) if self.note_for is not None else ("", QColor())
        self.note.setText(text)
        self.note.setVisible(bool(text))
        if text:
            set_text_colour(self.note, colour)

    def _info_text(self, analysis: Analysis) -> str:
        if self.spec is None:
            return ""
        lines = []
        ports = self.spec.output_ports(analysis.params.get(self.node_id))
        for port in ports:
            tensor = analysis.ports.get((self.node_id, port))
            shape = f"{format_shape(tensor.shape)}  {tensor.dtype}" if tensor else "unknown"
            lines.append(f"{port}: {shape}" if len(ports) > 1 else f"Output: {shape}")
        count = analysis.param_counts.get(self.node_id)
        flops = analysis.flops.get(self.node_id)
        if count is not None:
            lines.append(f"Parameters: {count:,}    FLOPs: {human_count(flops)}")
        return "\n".join(lines)

    # ----- editing -----------------------------------------------------------------------------

    def _commit(self, name: str, value: Any) -> None:
        row = self.rows[name]
        problem = self._expression_problem(value) if is_expression(value) else None
        if problem is None and not (is_expression(value) and self.document.scope_path):
            problem = param_problem(self.spec, name, value)
        row.refusal = problem
        if problem is not None:
            self.refresh(self.document.scope_analysis)
            return
        row.show_error(None)
        params = self.document.node(self.node_id).params
        if value is None and name not in params:
            return
        if name in params and params[name] == value and type(params[name]) is type(value):
            return
        self.document.set_param(self.node_id, name, value)

    def _expression_problem(self, value: str) -> str | None:
        """Why expression ``value`` cannot be this node's: bad syntax, or a name that is not
        a parameter of the block the node is in (or, for a block node, ``index``)."""
        try:
            names = names_in(value)
        except ExpressionError as error:
            return str(error)
        blocks = self.document.graph.blocks or {}
        scope = self.document.scope_path
        known = set(blocks[scope[-1]].params) if scope else set()
        known |= {INDEX} if isinstance(self.spec, BlockSpec) else set()
        unknown = sorted(names - known)
        if not unknown:
            return None
        offer = ", ".join(sorted(known)) or "none here"
        return f"'{unknown[0]}' is not a parameter an expression here may use ({offer})"

    def _rename(self) -> None:
        new = self.id_edit.text().strip()
        if new == self.node_id:
            self.id_error.hide()
            return
        problem = self.document.rename_problem(self.node_id, new)
        if problem is None:
            try:
                self.document.rename_node(self.node_id, new)
            except ValueError as error:
                problem = str(error)
        if problem is not None:
            self.id_error.setText(problem)
            self.id_error.show()
            self.id_edit.setText(self.node_id)
            return
        self.id_error.hide()

    def _relabel(self) -> None:
        text = self.label_edit.text().strip() or None
        if text != self.document.node(self.node_id).label:
            self.document.set_label(self.node_id, text)


class GraphPage(QWidget):
    """Shown when nothing is selected: the graph's name, description and totals."""

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        layout = QVBoxLayout(self)
        layout.addWidget(_heading("Graph"))
        layout.addWidget(plain_label("Select a node to edit it. Double-click a layer in the "
                                     "palette, or press Tab on the canvas, to add one.",
                                     wrap=True, muted=True))
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("graph_name")
        select_all_on_focus(self.name_edit)
        self.name_edit.editingFinished.connect(self._rename)
        self.description = QPlainTextEdit()
        self.description.setObjectName("graph_description")
        self.description.setPlaceholderText("What this network is for")
        self.description.setMaximumHeight(120)
        self.description.installEventFilter(self)
        self.totals = plain_label("", wrap=True)
        layout.addWidget(plain_label("name"))
        layout.addWidget(self.name_edit)
        layout.addWidget(plain_label("description"))
        layout.addWidget(self.description)
        layout.addWidget(_rule())
        layout.addWidget(self.totals)
        layout.addStretch(1)
        self.refresh(document.analysis)

    def refresh(self, analysis: Analysis) -> None:
        graph = self.document.graph
        if not self.name_edit.hasFocus():
            self.name_edit.setText(graph.name)
        if not self.description.hasFocus() and self.description.toPlainText() != graph.description:
            self.description.setPlainText(graph.description)
        errors = len(analysis.errors)
        frozen = frozen_note(analysis.total_params, analysis.trainable_params)
        self.totals.setText(
            f"{len(graph.nodes)} nodes, {len(graph.edges)} edges\n"
            f"Parameters: {analysis.total_params:,}{frozen}{unreached_note(analysis)}\n"
            f"FLOPs: {human_count(analysis.total_flops)}\n"
            + (f"{errors} error{'s' if errors != 1 else ''}" if errors else "No errors"))

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if watched is self.description and event.type() == event.Type.FocusOut:
            text = self.description.toPlainText()
            if text != self.document.graph.description:
                self.document.set_graph_field("description", text)
        return False

    def _rename(self) -> None:
        text = self.name_edit.text().strip()
        if text and text != self.document.graph.name:
            self.document.set_graph_field("name", text[:200])
        elif not text:
            self.name_edit.setText(self.document.graph.name)


class BlockPage(QWidget):
    """Shown when nothing is selected inside an opened block: what the block is, its
    parameters and where it is used."""

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.name = document.scope_path[-1]
        block = (document.graph.blocks or {})[self.name]
        uses = block_uses(document.graph, self.name)
        layout = QVBoxLayout(self)
        layout.addWidget(_heading(f"Block {self.name}"))
        layout.addWidget(plain_label(
            "Edits here change the block's definition, so every use of it. Its Input and Output "
            "nodes are its ports; shapes are those of its first use. The bar above the canvas "
            "leads back.", wrap=True, muted=True))
        if block.description:
            layout.addWidget(plain_label(block.description, wrap=True))
        params = ", ".join(f"{key} = {json.dumps(value)}" for key, value in block.params.items())
        layout.addWidget(plain_label(f"Parameters: {params or 'none'}", wrap=True))
        where = ", ".join(node if owner is None else f"{owner}.{node}" for owner, node in uses)
        layout.addWidget(plain_label(f"Used by: {where or 'no node yet'}", wrap=True))
        layout.addWidget(_rule())
        self.totals = plain_label("", wrap=True)
        layout.addWidget(self.totals)
        layout.addStretch(1)
        self.refresh(document.scope_analysis)

    def refresh(self, analysis: Analysis) -> None:
        scope = self.document.scope
        self.totals.setText(f"{len(scope.nodes)} nodes, {len(scope.edges)} edges\n"
                            f"Parameters of one copy: {analysis.total_params:,}\n"
                            f"FLOPs of one copy: {human_count(analysis.total_flops)}")


class SelectionPage(QWidget):
    """Shown for a multiple selection: how many nodes, and their parameter total."""

    def __init__(self, document: GraphDocument, node_ids: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.node_ids = node_ids
        layout = QVBoxLayout(self)
        layout.addWidget(_heading(f"{len(node_ids)} nodes selected"))
        self.info = plain_label("", wrap=True)
        layout.addWidget(self.info)
        layout.addStretch(1)
        self.refresh(document.scope_analysis)

    def refresh(self, analysis: Analysis) -> None:
        ids = [n for n in self.node_ids if self.document.has_node(n)]
        total = sum(analysis.param_counts.get(n, 0) for n in ids)
        self.info.setText(f"Parameters: {total:,}\n" + ", ".join(ids[:30]) + (" ..." if len(ids) > 30 else ""))


class InspectorPanel(QScrollArea):
    """Hosts the page for the current selection and keeps it in step with the document."""

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.node_ids: list[str] = []
        self.page: QWidget | None = None
        self.node_note: NodeNote | None = None
        document.analysed.connect(self._analysed)
        document.node_changed.connect(self._node_changed)
        document.node_removed.connect(self._node_removed)
        document.node_renamed.connect(self._node_renamed)
        document.reset.connect(lambda: self.show_nodes([]))
        document.scope_changed.connect(self._scope_changed)
        self.show_nodes([])

    def show_nodes(self, node_ids: list[str]) -> None:
        """Show the page for this selection (rebuilt only when the selection changes)."""
        node_ids = [n for n in node_ids if self.document.has_node(n)]
        if self.page is not None and node_ids == self.node_ids and not self._type_changed():
            return
        self.node_ids = list(node_ids)
        if len(node_ids) == 1:
            page: QWidget = NodePage(self.document, node_ids[0], note=self.node_note)
        elif node_ids:
            page = SelectionPage(self.document, node_ids)
        elif self.document.scope_path:
            page = BlockPage(self.document)
        else:
            page = GraphPage(self.document)
        old = self.takeWidget()
        if old is not None:
            old.deleteLater()
        self.page = page
        self.setWidget(page)

    def restyle(self) -> None:
        """Rebuild the page in the new theme's colours."""
        self.page = None
        self.show_nodes(self.node_ids)

    def refresh(self) -> None:
        """Show the page again (what :attr:`node_note` says has changed)."""
        if self.page is not None:
            self.page.refresh(self._shown_analysis())

    def _type_changed(self) -> bool:
        page = self.page
        return isinstance(page, NodePage) and self.document.node(page.node_id).type != page.node_type

    def _scope_changed(self) -> None:
        self.page = None
        self.show_nodes([])

    def _shown_analysis(self) -> Analysis:
        """The graph's analysis for the graph page, else that of the graph the canvas shows."""
        return self.document.analysis if isinstance(self.page, GraphPage) else self.document.scope_analysis

    def _analysed(self, _analysis: Analysis) -> None:
        if self._type_changed():
            self.show_nodes(self.node_ids)
        elif self.page is not None:
            self.page.refresh(self._shown_analysis())

    def _node_changed(self, node_id: str) -> None:
        if node_id in self.node_ids and self.page is not None:
            if self._type_changed():
                self.show_nodes(self.node_ids)
            else:
                self.page.refresh(self._shown_analysis())

    def _node_removed(self, node_id: str) -> None:
        if node_id in self.node_ids:
            self.show_nodes([n for n in self.node_ids if n != node_id])

    def _node_renamed(self, old: str, new: str) -> None:
        if old in self.node_ids:
            self.node_ids = [new if n == old else n for n in self.node_ids]
            if isinstance(self.page, NodePage) and self.page.node_id == old:
                self.page.node_id = new
            elif isinstance(self.page, SelectionPage):
                self.page.node_ids = self.node_ids
            self.page.refresh(self._shown_analysis())
