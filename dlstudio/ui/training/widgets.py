"""Small widgets shared by the training views."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from dlstudio.ui.theme import colors


class LiveText(QWidget):
    """Plain text that changes often, in a box of fixed height.

    A QLabel asks its window to lay out again whenever its text changes, which repaints every
    plot in the window; this one only repaints itself. Text is drawn literally (never as HTML),
    wrapped over ``lines`` lines and cut with an ellipsis when it does not fit.
    """

    def __init__(self, text: str = "", lines: int = 1, muted: bool = False, small: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = text
        self.lines = lines
        if small:
            font = QFont(self.font())
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.88))
            self.setFont(font)
        if muted:
            palette = self.palette()
            palette.setColor(QPalette.ColorRole.WindowText, colors().muted)
            self.setPalette(palette)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + 4)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802  (QLabel's name, so either fits)
        if text != self._text:
            self._text = text
            self.setToolTip(text if self.fontMetrics().horizontalAdvance(text) > self.width() * self.lines else "")
            self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.fontMetrics().horizontalAdvance(self._text[:60]) + 4, self.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(20, self.height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        rect = self.rect().adjusted(1, 2, -1, -2)
        metrics = self.fontMetrics()
        if self.lines == 1:
            shown = metrics.elidedText(self._text, Qt.TextElideMode.ElideRight, rect.width())
            painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, shown)
        else:
            painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
                             | Qt.TextFlag.TextWordWrap, self._text)


class BarsView(QWidget):
    """Bars painted directly (no plotting library): a histogram over a value range, or one bar
    per class with its label. Cheap enough to redraw with every probe."""

    def __init__(self, hint: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heights: list[float] = []
        self.colours: list[QColor] = []
        self.labels: list[str] = []
        self.value_range: tuple[float, float] | None = None
        self.top: float | None = None
        self.hint = hint
        self.setMinimumHeight(80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_histogram(self, counts: list[int], low: float, high: float, colour: QColor) -> None:
        self.heights, self.colours, self.labels = [float(c) for c in counts], [colour] * len(counts), []
        self.value_range, self.top = (low, high), None
        self.update()

    def show_bars(self, heights: list[float], colours: list[QColor], labels: list[str], top: float = 1.0) -> None:
        self.heights, self.colours, self.labels = list(heights), list(colours), list(labels)
        self.value_range, self.top = None, top
        self.update()

    def clear(self) -> None:
        self.heights = []
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        if not self.heights:
            painter.setPen(self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.hint)
            return
        metrics = self.fontMetrics()
        area = self.rect().adjusted(6, 4, -6, -(metrics.height() + 6))
        top = self.top or max(self.heights) or 1.0
        step = area.width() / len(self.heights)
        gap = 1 if step > 3 else 0
        for i, (height, colour) in enumerate(zip(self.heights, self.colours, strict=True)):
            h = area.height() * min(height / top, 1.0)
            painter.fillRect(round(area.left() + i * step), round(area.bottom() - h), max(1, round(step) - gap),
                             round(h), colour)
        painter.setPen(text)
        painter.drawLine(area.left(), area.bottom(), area.right(), area.bottom())
        below = area.bottom() + 3
        if self.value_range is not None:
            low, high = self.value_range
            for value, align in ((low, Qt.AlignmentFlag.AlignLeft), (high, Qt.AlignmentFlag.AlignRight)):
                painter.drawText(area.left(), below, area.width(), metrics.height(), align, f"{value:.3g}")
            if low < 0 < high:
                x = area.left() + area.width() * (-low) / (high - low)
                painter.drawText(round(x) - 20, below, 40, metrics.height(), Qt.AlignmentFlag.AlignHCenter, "0")
        elif len(self.labels) <= max(1, area.width() // 14):
            for i, label in enumerate(self.labels):
                painter.drawText(round(area.left() + i * step), below, round(step), metrics.height(),
                                 Qt.AlignmentFlag.AlignHCenter, label)


class LegendStrip(QWidget):
    """One line naming each run in its colour, then what the line styles mean."""

    def __init__(self, key: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[tuple[QColor, str]] = []
        self.key = key
        self.setFixedHeight(self.fontMetrics().lineSpacing() + 6)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_entries(self, entries: list[tuple[QColor, str]]) -> None:
        self.entries = list(entries)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = self.fontMetrics()
        x, middle = 4, self.height() // 2
        for colour, name in self.entries:
            painter.setPen(QPen(colour, 3))
            painter.drawLine(x, middle, x + 16, middle)
            painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
            painter.drawText(x + 22, 0, metrics.horizontalAdvance(name) + 2, self.height(),
                             Qt.AlignmentFlag.AlignVCenter, name)
            x += 22 + metrics.horizontalAdvance(name) + 16
        painter.setPen(colors().muted)
        rest = self.rect().adjusted(x, 0, -4, 0)
        shown = metrics.elidedText(self.key, Qt.TextElideMode.ElideRight, rest.width())
        painter.drawText(rest, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, shown)
