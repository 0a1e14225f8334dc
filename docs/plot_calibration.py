"""Draw the reliability diagram of a bundle's confidence calibration (Qt, offscreen).

    QT_QPA_PLATFORM=offscreen python docs/plot_calibration.py assets/model docs/calibration.png

Bars: the share of right answers among the generated queries in each band of predicted
probability; the diagonal is perfect calibration; the numbers are the queries per band.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPen


def main(bundle: str, out: str) -> None:
    report = json.loads((Path(bundle) / "calibration.json").read_text())["report"]
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - fonts need an application
    width, height, margin = 640, 480, 60
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    plot = QRectF(margin, 40, width - 2 * margin, height - 40 - margin)
    painter.setPen(QPen(QColor("#888"), 1, Qt.PenStyle.DashLine))
    painter.drawLine(QPointF(plot.left(), plot.bottom()), QPointF(plot.right(), plot.top()))
    painter.setPen(QPen(QColor("black"), 1))
    painter.drawRect(plot)
    bins = report["reliability"]
    step = plot.width() / len(bins)
    painter.setFont(QFont("DejaVu Sans", 8))
    for i, b in enumerate(bins):
        if b["observed"] is None:
            continue
        h = b["observed"] * plot.height()
        bar = QRectF(plot.left() + i * step + 4, plot.bottom() - h, step - 8, h)
        painter.fillRect(bar, QColor("#4a7fb5"))
        painter.drawText(
            QRectF(bar.left(), plot.top() + 4, bar.width(), 14), Qt.AlignmentFlag.AlignCenter, str(b["n"])
        )
    for i in range(11):
        x = plot.left() + i * step
        painter.drawText(
            QRectF(x - 20, plot.bottom() + 4, 40, 14), Qt.AlignmentFlag.AlignCenter, f"{i / 10:.1f}"
        )
        y = plot.bottom() - i * plot.height() / 10
        painter.drawText(
            QRectF(plot.left() - 40, y - 7, 34, 14), Qt.AlignmentFlag.AlignRight, f"{i / 10:.1f}"
        )
    painter.setFont(QFont("DejaVu Sans", 10))
    painter.drawText(
        QRectF(0, plot.bottom() + 22, width, 16),
        Qt.AlignmentFlag.AlignCenter,
        "predicted probability (confidence)",
    )
    painter.drawText(
        QRectF(0, 8, width, 20),
        Qt.AlignmentFlag.AlignCenter,
        f"Share right per band: {report['queries']['damaged']} damaged names, "
        f"{report['queries']['hidden']} hidden names",
    )
    painter.end()
    image.save(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
