"""Dark and light themes that follow the system, on the Fusion style, crisp on high-DPI screens.

Only the application palette is set (no global style sheet), so every widget, including the
canvas, reads its colours from ``QPalette``. :func:`colors` gives the semantic colours (error,
warning, muted text, code view) that panels need beyond the palette. ``DLSTUDIO_THEME`` set to
``dark`` or ``light`` overrides the system choice (screenshots use it).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Colors:
    """Semantic colours of the current theme."""

    dark: bool
    error: QColor
    warning: QColor
    ok: QColor
    muted: QColor
    accent: QColor
    code_background: QColor
    code_highlight: QColor
    code_keyword: QColor
    code_string: QColor
    code_number: QColor
    code_comment: QColor
    code_name: QColor


DARK = Colors(
    dark=True,
    error=QColor("#f2766b"),
    warning=QColor("#e5b95c"),
    ok=QColor("#6cc08b"),
    muted=QColor("#8c9099"),
    accent=QColor("#4e8cf5"),
    code_background=QColor("#1b1c1f"),
    code_highlight=QColor(78, 140, 245, 60),
    code_keyword=QColor("#cf8e6d"),
    code_string=QColor("#6aab73"),
    code_number=QColor("#2aacb8"),
    code_comment=QColor("#7a7e85"),
    code_name=QColor("#56a8f5"),
)

LIGHT = Colors(
    dark=False,
    error=QColor("#c62828"),
    warning=QColor("#a86b00"),
    ok=QColor("#2e7d32"),
    muted=QColor("#6e7380"),
    accent=QColor("#2f6fde"),
    code_background=QColor("#fbfbfc"),
    code_highlight=QColor(47, 111, 222, 45),
    code_keyword=QColor("#0033b3"),
    code_string=QColor("#067d17"),
    code_number=QColor("#1750eb"),
    code_comment=QColor("#8c8c8c"),
    code_name=QColor("#00627a"),
)

_current = LIGHT


def setup_high_dpi() -> None:
    """Pass fractional scale factors through unrounded (call before QApplication exists)."""
    if QGuiApplication.instance() is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )


def system_is_dark(app: QGuiApplication) -> bool:
    """True when the system asks for a dark appearance (Qt >= 6.5 knows; else guess from the palette)."""
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    window = app.palette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128


def wanted_dark(app: QGuiApplication) -> bool:
    choice = os.environ.get("DLSTUDIO_THEME", "system").lower()
    if choice in ("dark", "light"):
        return choice == "dark"
    return system_is_dark(app)


def apply_theme(app: QApplication, dark: bool | None = None) -> Colors:
    """Set the Fusion style and the palette; follow later system changes when ``dark`` is None."""
    global _current
    app.setStyle("Fusion")
    follow = dark is None
    dark = wanted_dark(app) if dark is None else dark
    _current = DARK if dark else LIGHT
    app.setPalette(dark_palette() if dark else light_palette())
    if follow and not app.property("dlstudio_theme_follows"):
        app.setProperty("dlstudio_theme_follows", True)
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
    return _current


def colors() -> Colors:
    """The semantic colours of the theme in use."""
    return _current


def _palette(roles: dict[QPalette.ColorRole, str], disabled_text: str) -> QPalette:
    palette = QPalette()
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled_text))
    return palette


def dark_palette() -> QPalette:
    R = QPalette.ColorRole
    return _palette({
        R.Window: "#2b2d30", R.WindowText: "#dfe1e5", R.Base: "#1e1f22", R.AlternateBase: "#26282b",
        R.ToolTipBase: "#3c3f45", R.ToolTipText: "#e6e7ea", R.PlaceholderText: "#7a7e85",
        R.Text: "#dfe1e5", R.Button: "#33363a", R.ButtonText: "#dfe1e5", R.BrightText: "#ffffff",
        R.Light: "#45484d", R.Midlight: "#3a3d41", R.Mid: "#2a2c2f", R.Dark: "#18191b",
        R.Shadow: "#0e0f10", R.Highlight: "#2f5fb8", R.HighlightedText: "#ffffff",
        R.Link: "#6ea0f7", R.LinkVisited: "#a58cf0",
    }, "#6f737a")


def light_palette() -> QPalette:
    R = QPalette.ColorRole
    return _palette({
        R.Window: "#f2f3f5", R.WindowText: "#1f2328", R.Base: "#ffffff", R.AlternateBase: "#f6f7f9",
        R.ToolTipBase: "#ffffff", R.ToolTipText: "#1f2328", R.PlaceholderText: "#8c9099",
        R.Text: "#1f2328", R.Button: "#f7f8fa", R.ButtonText: "#1f2328", R.BrightText: "#ffffff",
        R.Light: "#ffffff", R.Midlight: "#e9ebee", R.Mid: "#c9ccd1", R.Dark: "#a4a8ae",
        R.Shadow: "#6e737a", R.Highlight: "#2f6fde", R.HighlightedText: "#ffffff",
        R.Link: "#2f6fde", R.LinkVisited: "#6f42c1",
    }, "#a0a4ab")


def plain_tooltip(text: str) -> str:
    """A tooltip that shows ``text`` literally: escaped, then wrapped so Qt treats it as rich text."""
    return "<p style='white-space:pre-wrap'>" + html.escape(text) + "</p>" if text else ""
