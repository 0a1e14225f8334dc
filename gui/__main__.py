"""Launch the desktop app: `sapbert-ko-en` or `python -m gui`."""

from __future__ import annotations

import argparse
import logging
import sys

# The shared libraries Qt's xcb platform plugin loads at start (Debian/Ubuntu package names).
# Without them Qt aborts inside C++ with a message that names none of the packages.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
}


def missing_qt_libraries() -> list[str]:
    """Debian packages missing for a window on X11 (empty elsewhere, or when Qt is not to use xcb)."""
    import ctypes.util
    import os

    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or (platform and not platform.startswith("xcb")):
        return []
    if not platform and os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
        return []
    return [
        package for library, package in XCB_LIBRARIES.items() if ctypes.util.find_library(library) is None
    ]


def main(argv: list[str] | None = None) -> int:
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError:
        print("PySide6 is not installed. Install it with: pip install 'sapbert-ko-en[gui]'", file=sys.stderr)
        return 2
    missing = missing_qt_libraries()
    if missing:
        print(
            "The window cannot open: Qt needs system libraries that are not installed.\n"
            f"On Debian/Ubuntu: sudo apt-get install {' '.join(missing)}\n"
            "(Or search without a window: python -m core search QUERY)",
            file=sys.stderr,
        )
        return 2
    from .app import MainWindow

    parser = argparse.ArgumentParser(prog="sapbert-ko-en", description="Korean/English medical term lookup")
    parser.add_argument("--dictionary", help="dictionary file (default: the last one used, else KCD-8)")
    parser.add_argument("--format", choices=["kcd", "kostom", "table", "mrconso", "athena"])
    parser.add_argument("--model", help="model bundle directory (default: the last one used, else bundled)")
    parser.add_argument("--query", help="search this at start (e.g. --query 간경화)")
    args, qt_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING)
    app = QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("SapBERT-KO-EN Lookup")
    from .theme import follow_system_color_scheme

    follow_system_color_scheme(app)
    window = MainWindow(dictionary=args.dictionary, fmt=args.format, model=args.model)
    if args.query:
        window.search_box.setText(args.query)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
