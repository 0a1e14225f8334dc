"""Launch the desktop app: `sapbert-ko-en` or `python -m gui`."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError:
        print("PySide6 is not installed. Install it with: pip install 'sapbert-ko-en[gui]'", file=sys.stderr)
        return 2
    from .app import MainWindow

    parser = argparse.ArgumentParser(prog="sapbert-ko-en", description="Korean/English medical term lookup")
    parser.add_argument("--dictionary", help="dictionary file (default: the last one used, else KCD-8)")
    parser.add_argument("--format", choices=["kcd", "kostom", "table", "mrconso"])
    parser.add_argument("--model", help="model bundle directory (default: the last one used, else bundled)")
    parser.add_argument("--query", help="search this at start")
    args, qt_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING)
    app = QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("SapBERT-KO-EN Lookup")
    window = MainWindow(dictionary=args.dictionary, fmt=args.format, model=args.model)
    if args.query:
        window.search_box.setText(args.query)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
