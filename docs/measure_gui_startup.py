"""Time from process start to the first result in the real app window, and its memory.

QT_QPA_PLATFORM=offscreen python docs/measure_gui_startup.py [QUERY]
"""

import sys
import time

STARTED = time.perf_counter()

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def main() -> None:
    query = sys.argv[1] if len(sys.argv) > 1 else "간경화"
    app = QApplication([])
    from core.bench import peak_rss_mb
    from gui.app import MainWindow

    window = MainWindow()
    window.show()

    def shown(_: str) -> None:
        rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
        peak = peak_rss_mb()
        print(
            f"first result after {time.perf_counter() - STARTED:.2f} s; top: {window.model.hit(0).code}; "
            f"RSS {rss:.0f} MB, peak {peak:.0f} MB",
            flush=True,
        )
        app.quit()

    window.searcher_ready.connect(lambda: window.search_box.setText(query))
    window.results_shown.connect(shown)
    QTimer.singleShot(300_000, app.quit)
    app.exec()


if __name__ == "__main__":
    main()
