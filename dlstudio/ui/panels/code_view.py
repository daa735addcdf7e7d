"""The Code panel: the exported Python of the current graph, live, with the selected node's lines lit.

Export runs on a worker thread from a JSON snapshot of the graph (taken on the UI thread, so
the worker never sees the document change under it), debounced, and only while the panel is
visible; a result older than the latest request is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRegularExpression, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from dlstudio.bugs import report_bug
from dlstudio.core.analysis import analyze
from dlstudio.core.catalogue import Catalogue
from dlstudio.core.codegen import Span, plan_module
from dlstudio.core.export import module_code
from dlstudio.core.graph import Graph
from dlstudio.core.io import graph_from_dict, parse_json, paused_gc
from dlstudio.core.naming import identifier
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.panels import plain_label
from dlstudio.ui.theme import colors

DEBOUNCE_MS = 120


@dataclass
class CodeResult:
    """What the worker produced: the source (or an explanation) and each node's line spans."""

    generation: int
    text: str
    ok: bool
    spans: dict[str, list[Span]] = field(default_factory=dict)


def generate(snapshot: str | dict[str, Any], generation: int = 0, catalogue: Catalogue | None = None) -> CodeResult:
    """Export the graph in ``snapshot`` (JSON text, or a graph's ``model_dump()``), its layer
    types looked up in ``catalogue`` (default: the graph's), with the lines each node wrote."""
    graph = Graph.model_validate(snapshot) if isinstance(snapshot, dict) else graph_from_dict(parse_json(snapshot))
    analysis = analyze(graph, catalogue)
    if not analysis.ok:
        errors = analysis.errors
        lines = [f"# The graph has {len(errors)} error{'s' if len(errors) != 1 else ''}; "
                 "fix them to see its PyTorch code.", "#"]
        lines += [f"# - {d.one_line()}" for d in errors[:50]]
        return CodeResult(generation, "\n".join(lines) + "\n", False)
    code = module_code(plan_module(analysis), graph)
    return CodeResult(generation, code.text, True, code.spans)


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, strings, numbers, comments and ``self`` / ``nn`` names, in theme colours."""

    KEYWORDS = ("class def return import from as if else for in not and or None True False "
                "super lambda with pass").split()

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        palette = colors()
        self.rules: list[tuple[QRegularExpression, QTextCharFormat]] = [
            (QRegularExpression(r"\b(" + "|".join(self.KEYWORDS) + r")\b"), _format(palette.code_keyword, bold=True)),
            (QRegularExpression(r"\b(self|nn|torch|F|math)\b"), _format(palette.code_name)),
            (QRegularExpression(r"\b-?\d+(\.\d+)?([eE][-+]?\d+)?\b"), _format(palette.code_number)),
            (QRegularExpression(r"'[^'\\]*(\\.[^'\\]*)*'|\"[^\"\\]*(\\.[^\"\\]*)*\""), _format(palette.code_string)),
            (QRegularExpression(r"#[^\n]*"), _format(palette.code_comment, italic=True)),
        ]
        self.docstring = _format(palette.code_string)

    def highlightBlock(self, text: str) -> None:
        for pattern, fmt in self.rules:
            matches = pattern.globalMatch(text)
            while matches.hasNext():
                match = matches.next()
                self.setFormat(match.capturedStart(), match.capturedLength(), fmt)
        self._docstrings(text)

    def _docstrings(self, text: str) -> None:
        inside = self.previousBlockState() == 1
        quotes = [m.start() for m in re.finditer('"""', text)]
        start = 0 if inside else None
        for position in quotes:
            if start is None:
                start = position
            else:
                self.setFormat(start, position + 3 - start, self.docstring)
                start = None
        if start is not None:
            self.setFormat(start, len(text) - start, self.docstring)
        self.setCurrentBlockState(1 if start is not None else 0)


def _format(colour: QColor, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(colour)
    if bold:
        fmt.setFontWeight(QFont.Weight.DemiBold)
    fmt.setFontItalic(italic)
    return fmt


class _Bridge(QObject):
    done = Signal(object)


class CodePanel(QWidget):
    """Read-only view of the generated module; :attr:`export_requested` asks to save it."""

    export_requested = Signal()
    updated = Signal()

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.generation = 0
        self.result = CodeResult(0, "", False)
        self.selected: list[str] = []
        self._pending = False
        self._dock_shown = True  # until a dock says otherwise (set_dock_shown)
        self._bridge = _Bridge(self)
        self._bridge.done.connect(self._show_result)
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.regenerate)
        self.status = plain_label("", muted=True)
        export = QPushButton("Export Python…")
        export.clicked.connect(self.export_requested)
        self.editor = self._make_editor()
        header = QHBoxLayout()
        header.setContentsMargins(6, 4, 6, 0)
        header.addWidget(self.status, 1)
        header.addWidget(export)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.editor)
        document.analysed.connect(lambda _analysis: self.schedule())
        document.reset.connect(self.schedule)

    def _make_editor(self) -> QPlainTextEdit:
        editor = QPlainTextEdit(self)
        editor.setReadOnly(True)
        editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        editor.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                       | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(max(font.pointSizeF() * 0.95, 8.0))
        editor.setFont(font)
        self.highlighter = PythonHighlighter(editor.document())
        self._style_editor(editor)
        return editor

    def _style_editor(self, editor: QPlainTextEdit) -> None:
        palette = QApplication.palette()
        palette.setColor(palette.ColorRole.Base, colors().code_background)
        editor.setPalette(palette)

    def restyle(self) -> None:
        """Follow a theme change: background, syntax colours and the highlight."""
        self._style_editor(self.editor)
        self.highlighter.setDocument(None)
        self.highlighter = PythonHighlighter(self.editor.document())
        self.highlight(self.selected, scroll_to=False)

    # ----- producing -----------------------------------------------------------------------------

    def schedule(self) -> None:
        """Regenerate soon (now-ish if on screen; when shown otherwise)."""
        self._pending = True
        if self.on_screen():
            self._timer.start()

    def on_screen(self) -> bool:
        """Whether the code can be seen: shown, and, in a dock, that dock's tab is the current
        one (Qt keeps a tabbed-away dock "visible", moved off the window)."""
        return self.isVisible() and self._dock_shown

    def set_dock_shown(self, shown: bool) -> None:
        """Follow the dock's ``visibilityChanged``: the code of a 16k-node graph is not exported
        after every edit while another tab is in front."""
        self._dock_shown = shown
        if shown and self._pending:
            self._timer.start()

    def showEvent(self, event: object) -> None:  # noqa: N802
        super().showEvent(event)
        if self._pending and self.on_screen():
            self._timer.start()

    def regenerate(self) -> None:
        """Snapshot the graph here and export it on a worker thread."""
        self._pending = False
        self.generation += 1
        # A copy in plain values, made in pydantic-core (the worker validates it). It holds no
        # cycle, so it is freed by reference counting once exported, whatever its generation.
        with paused_gc(long_lived=True):
            generation, snapshot = self.generation, self.document.graph.model_dump()
        catalogue = self.document.catalogue  # read-only: safe to share with the worker
        bridge = self._bridge

        def work() -> None:
            try:
                result = generate(snapshot, generation, catalogue)
            except Exception as error:  # noqa: BLE001  (shown in the panel, never lost silently)
                result = CodeResult(generation, f"# Export failed: {report_bug(error, 'code view')}\n", False)
            try:
                bridge.done.emit(result)
            except RuntimeError:  # the panel was closed while the worker ran
                pass

        QThreadPool.globalInstance().start(work)

    def _show_result(self, result: CodeResult) -> None:
        if result.generation != self.generation:
            return
        self.result = result
        scroll = self.editor.verticalScrollBar().value()
        if self.editor.toPlainText() != result.text:
            self.editor.setPlainText(result.text)
            self.editor.verticalScrollBar().setValue(scroll)
        lines = result.text.count("\n")
        self.status.setText(f"{identifier(self.document.graph.name)}.py — {lines} lines" if result.ok
                            else "No code while the graph has errors")
        self.highlight(self.selected, scroll_to=False)
        self.updated.emit()

    # ----- highlighting --------------------------------------------------------------------------

    def highlight(self, node_ids: list[str], scroll_to: bool = True) -> None:
        """Light up the lines the given nodes produced, and scroll to the first."""
        self.selected = list(node_ids)
        spans = [span for node in node_ids for span in self.result.spans.get(node, [])]
        selections = []
        for first, count in spans:
            for line in range(first, first + count):
                selection = QTextEdit.ExtraSelection()
                selection.format.setBackground(colors().code_highlight)
                selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
                selection.cursor = QTextCursor(self.editor.document().findBlockByNumber(line))
                selections.append(selection)
        self.editor.setExtraSelections(selections)
        if spans and scroll_to:
            cursor = QTextCursor(self.editor.document().findBlockByNumber(min(s[0] for s in spans)))
            self.editor.setTextCursor(cursor)
            self.editor.centerCursor()

    def highlighted_lines(self) -> list[int]:
        """0-based numbers of the lines currently lit (for tests and tools)."""
        return sorted({s.cursor.blockNumber() for s in self.editor.extraSelections()})
