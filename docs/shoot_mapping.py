"""Render the mapping project window with the shipped model (offscreen) into docs/mapping.png.

QT_QPA_PLATFORM=offscreen python docs/shoot_mapping.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.app import MainWindow  # noqa: E402

TERMS = """코드,진단명,빈도
D001,간경화,412
D002,HTN,388
D003,당뇨 2형,301
D004,급성 충수염,97
D005,폐렴 NOS,85
D006,무릎 골관절염,64
D007,요로감염,58
D008,심근경색 의증,31
D009,asdfgh,2
"""


def wait(predicate) -> None:
    """Run Qt's event loop until `predicate()` holds (workers report through it)."""
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: predicate() and loop.quit())
    timer.start(50)
    loop.exec()
    timer.stop()


def main() -> int:
    app = QApplication([])  # noqa: F841 (kept alive for the windows)
    window = MainWindow()
    wait(lambda: window.searcher is not None)
    mapping = window.open_mapping()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "hospital-diagnoses.csv"
        source.write_text(TERMS, encoding="utf-8")
        mapping.import_source(source, Path(tmp) / "hospital-diagnoses.map")
        wait(lambda: mapping.worker is None)
        mapping.order.setCurrentIndex(1)  # by frequency
        mapping.select(0)
        mapping.approve()
        mapping.approve()
        mapping.decide("flagged")
        mapping.resize(1280, 560)
        mapping.show()
        wait(lambda: True)
        out = ROOT / "docs" / "mapping.png"
        mapping.grab().save(str(out))
        print(out)
        mapping.close()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
