"""The dockable panels around the canvas: palette, inspector, problems, code and history.

Each panel is a view on the :class:`~dlstudio.ui.document.GraphDocument`: it reads the
document and its latest analysis, and changes it only through the document's edit methods.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLabel, QLineEdit, QWidget

from dlstudio.ui.theme import colors


def plain_label(text: str = "", parent: QWidget | None = None, *, wrap: bool = False,
                muted: bool = False, small: bool = False) -> QLabel:
    """A QLabel that never interprets its text as HTML."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if muted:
        set_text_colour(label, colors().muted)
    if small:
        font = QFont(label.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.88))
        label.setFont(font)
    return label


class _SelectAllOnFocus(QObject):
    """Selects a field's text when it gains focus, after the click that gave it focus has placed
    the cursor, so that typing replaces the value as in every other application."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FocusIn:
            QTimer.singleShot(0, watched, watched.selectAll)  # dropped if the field is gone
        return False


def select_all_on_focus(field: QLineEdit | QAbstractSpinBox) -> None:
    """Clicking or tabbing into ``field`` selects its content."""
    field.installEventFilter(_SelectAllOnFocus(field))


def select_all_on_focus_everywhere() -> None:
    """Every editable text or number field of the application selects its content when it gains
    focus (the panels' forms are rebuilt as settings change, so no field is missed). Listens to
    QApplication.focusChanged, which fires only when focus moves: no per-event cost."""
    app = QApplication.instance()
    if app is None or app.property("dlstudio_select_on_focus"):
        return
    app.setProperty("dlstudio_select_on_focus", True)
    app.focusChanged.connect(_select_new_field)


def _select_new_field(old: QWidget | None, new: QWidget | None) -> None:
    if isinstance(new, QAbstractSpinBox) or (isinstance(new, QLineEdit) and not new.isReadOnly()):
        QTimer.singleShot(0, new, new.selectAll)  # after the click that gave focus placed the cursor


def set_text_colour(widget: QWidget, colour) -> None:  # noqa: ANN001  (QColor)
    palette = widget.palette()
    for role in (palette.ColorRole.WindowText, palette.ColorRole.Text):
        palette.setColor(role, colour)
    widget.setPalette(palette)


def human_count(value: int | None, unit: str = "") -> str:
    """``11.7 M`` style numbers for the status bar; ``?`` when unknown."""
    if value is None:
        return "?"
    for factor, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {suffix}{unit}"
    return f"{value} {unit}".rstrip()
