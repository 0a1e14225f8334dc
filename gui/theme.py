"""Light or dark: the app follows the system's colour scheme, also when it changes while
running. Qt's native styles follow it on Windows and macOS; on Linux desktops the Fusion style
needs a dark palette of its own."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


def dark_palette() -> QPalette:
    palette = QPalette()
    base, window, text, dim = (
        QColor(30, 30, 30),
        QColor(45, 45, 45),
        QColor(230, 230, 230),
        QColor(130, 130, 130),
    )
    role = QPalette.ColorRole
    for name, color in (
        (role.Window, window),
        (role.WindowText, text),
        (role.Base, base),
        (role.AlternateBase, window),
        (role.ToolTipBase, window),
        (role.ToolTipText, text),
        (role.Text, text),
        (role.Button, window),
        (role.ButtonText, text),
        (role.BrightText, QColor(255, 90, 90)),
        (role.Link, QColor(110, 170, 255)),
        (role.Highlight, QColor(42, 110, 200)),
        (role.HighlightedText, QColor(255, 255, 255)),
        (role.PlaceholderText, dim),
    ):
        palette.setColor(name, color)
    for name in (role.Text, role.WindowText, role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, name, dim)
    return palette


def apply_color_scheme(app: QApplication, scheme: Qt.ColorScheme | None = None) -> Qt.ColorScheme:
    """Dark palette when the scheme (default: the system's) is dark, the style's own otherwise."""
    scheme = QGuiApplication.styleHints().colorScheme() if scheme is None else scheme
    if scheme == Qt.ColorScheme.Dark:
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())
    return scheme


def follow_system_color_scheme(app: QApplication) -> None:
    apply_color_scheme(app)
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda scheme: apply_color_scheme(app, scheme))
