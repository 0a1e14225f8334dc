"""Batch mapping dialog: a CSV/TSV column of free-text terms → top concepts → CSV."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from core.batch import map_terms, read_table, write_mapping
from core.search import Searcher

from .models import BatchModel
from .workers import Worker


class BatchDialog(QDialog):
    mapped = Signal(int)
    failed = Signal(str)

    def __init__(self, searcher: Searcher, pool: QThreadPool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch mapping")
        self.resize(900, 520)
        self.searcher, self.pool = searcher, pool
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.worker: Worker | None = None
        self.file_label = QLabel("No file loaded")
        self.column = QComboBox()
        self.open_button = QPushButton("Open CSV/TSV…")
        self.run_button = QPushButton("Map")
        self.cancel_button = QPushButton("Cancel")
        self.save_button = QPushButton("Save CSV…")
        self.progress = QProgressBar()
        self.model = BatchModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        controls = QHBoxLayout()
        for widget in (
            self.open_button,
            QLabel("Column:"),
            self.column,
            self.run_button,
            self.cancel_button,
            self.save_button,
        ):
            controls.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addWidget(self.file_label)
        layout.addLayout(controls)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        self.open_button.clicked.connect(self.choose_file)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(lambda: self.worker and self.worker.cancel())
        self.save_button.clicked.connect(self.choose_output)
        self._enable()

    def _enable(self) -> None:
        busy = self.worker is not None
        self.run_button.setEnabled(bool(self.rows) and not busy)
        self.cancel_button.setEnabled(busy)
        self.save_button.setEnabled(bool(self.model.rows()) and not busy)
        self.open_button.setEnabled(not busy)

    def _error(self, message: str) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Batch mapping", message, QMessageBox.StandardButton.Ok, self
        )
        box.open()
        self.error_box = box
        self.failed.emit(message)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Terms to map", "", "Tables (*.csv *.tsv *.txt);;All files (*)"
        )
        if path:
            self.load_file(path)

    def load_file(self, path: str | Path) -> None:
        try:
            self.header, self.rows = read_table(path)
        except Exception as exc:  # any unreadable file: tell the user, keep the dialog alive
            self.header, self.rows = [], []
            self._error(str(exc))
        self.column.clear()
        self.column.addItems(self.header)
        self.file_label.setText(f"{path}: {len(self.rows)} rows" if self.rows else "No file loaded")
        self._enable()

    def run(self) -> None:
        index = self.column.currentIndex()
        terms = [row[index].strip() if index < len(row) else "" for row in self.rows]
        worker = Worker(map_terms, self.searcher, terms, k=3, with_progress=True)
        self.worker = worker
        self.progress.setMaximum(max(1, len(terms)))
        self.progress.setValue(0)
        worker.signals.progress.connect(lambda done, total: self.progress.setValue(done))
        worker.signals.result.connect(self._done)
        worker.signals.error.connect(self._error)
        worker.signals.finished.connect(self._finished)
        self._enable()
        self.pool.start(worker)

    def _done(self, rows) -> None:
        self.model.set_rows(rows)
        self.mapped.emit(len(rows))

    def _finished(self) -> None:
        self.worker = None
        self._enable()

    def choose_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the mapping", "mapping.csv", "CSV (*.csv)")
        if path:
            self.save(path)

    def save(self, path: str | Path) -> None:
        try:
            write_mapping(path, self.model.rows(), k=3)
        except OSError as exc:
            self._error(f"Cannot write {path}: {exc}")
