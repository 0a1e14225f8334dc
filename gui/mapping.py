"""The mapping project window: import a term list, let the model suggest, review by keyboard.

All domain work is core.mapping's; this window shows a project and turns keys into decisions.
Keys while the table has focus: A approve (the top suggestion, or the one picked in the list),
1–5 approve suggestion n, F flag, I ignore, U back to unchecked, N next unchecked,
Ctrl+Z undo, / search another concept (Enter searches, 1–5 or Enter on a result picks it,
Esc back), C comment, E equivalence. After a decision the next row is selected.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.errors import InputError
from core.mapping import EQUIVALENCES, STATUSES, MappingProject, export_project, read_source
from core.search import Searcher

from .models import MappingRowsModel
from .workers import Worker


def suggest_in_background(path: Path, searcher: Searcher, *, progress) -> int:
    """Suggestions for every row without any, through a connection of the worker's own."""
    project = MappingProject(path)
    try:
        return project.suggest(searcher.search_many, k=5, progress=progress)
    finally:
        project.close()


class MappingWindow(QMainWindow):
    opened = Signal(str)  # project path
    suggested = Signal(int)
    decided = Signal(int)  # row id
    failed = Signal(str)

    def __init__(self, searcher: Searcher, pool: QThreadPool, parent=None, *, reviewer: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Mapping project")
        self.resize(1100, 640)
        self.searcher, self.pool, self.reviewer = searcher, pool, reviewer
        self.project: MappingProject | None = None
        self.worker: Worker | None = None
        self.alternatives: list[tuple[str, str]] = []  # (code, label) listed beside the table

        self.status_filter = QComboBox()
        self.status_filter.addItems(["all", *STATUSES])
        self.order = QComboBox()
        self.order.addItems(["source order", "frequency", "score (doubtful first)"])
        self.counts = QLabel("No project")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.model = MappingRowsModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        for column in range(len(MappingRowsModel.HEADERS)):  # names share the width, the rest fit
            header.setSectionResizeMode(
                column,
                QHeaderView.ResizeMode.Stretch
                if column in (1, 5)
                else QHeaderView.ResizeMode.ResizeToContents,
            )
        self.table.verticalHeader().hide()
        self.suggestions = QListWidget()
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search another concept (/)")
        self.equivalence = QComboBox()
        self.equivalence.addItems(EQUIVALENCES)
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("Comment (C), Enter saves")

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("Suggestions (1–5 approve, A approves the selected one)"))
        side_layout.addWidget(self.suggestions, 1)
        side_layout.addWidget(self.search_box)
        side_layout.addWidget(QLabel("Equivalence (E)"))
        side_layout.addWidget(self.equivalence)
        side_layout.addWidget(self.comment)
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        bar = QHBoxLayout()
        for widget in (QLabel("Show:"), self.status_filter, QLabel("Order:"), self.order, self.counts):
            bar.addWidget(widget)
        bar.addStretch(1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(bar)
        layout.addWidget(self.progress)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self._menus()
        self._keys()

        self.status_filter.currentIndexChanged.connect(lambda _: self.reload())
        self.order.currentIndexChanged.connect(lambda _: self.reload())
        self.table.selectionModel().currentRowChanged.connect(lambda current, _: self._show(current.row()))
        self.search_box.returnPressed.connect(self.search_alternatives)
        self.suggestions.itemActivated.connect(lambda item: self.approve(self.suggestions.row(item)))
        self.comment.returnPressed.connect(self.save_comment)
        self.equivalence.activated.connect(lambda _: self.set_equivalence(self.equivalence.currentText()))

    # ------------------------------------------------------------------ menus and keys

    def _menus(self) -> None:
        def add(menu, text: str, slot, key=None) -> QAction:
            action = QAction(text, self)
            if key is not None:
                action.setShortcut(QKeySequence(key))
            action.triggered.connect(slot)
            menu.addAction(action)
            return action

        project = self.menuBar().addMenu("&Project")
        add(project, "&New from a term list…", self.choose_source, "Ctrl+N")
        add(project, "&Open project…", self.choose_project, "Ctrl+O")
        add(project, "Apply a &previous mapping…", self.choose_previous)
        project.addSeparator()
        add(project, "Export &CSV (source columns + decisions)…", lambda: self.choose_export("csv"))
        add(project, "Export OMOP &source_to_concept_map…", lambda: self.choose_export("stcm"))
        add(project, "Export &Usagi CSV…", lambda: self.choose_export("usagi"))
        project.addSeparator()
        add(project, "Clos&e", self.close, "Ctrl+W")
        review = self.menuBar().addMenu("&Review")
        add(review, "&Approve\tA", lambda: self.approve())
        add(review, "&Flag\tF", lambda: self.decide("flagged"))
        add(review, "&Ignore\tI", lambda: self.decide("ignored"))
        add(review, "Back to &unchecked\tU", lambda: self.decide("unchecked"))
        add(review, "&Next unchecked\tN", self.next_unchecked)
        add(review, "&Search another concept\t/", self.search_box.setFocus)
        add(review, "&Comment\tC", self.comment.setFocus)
        add(review, "&Equivalence\tE", self.equivalence.setFocus)
        add(review, "&Undo", self.undo, QKeySequence.StandardKey.Undo)
        add(review, "Approve all a&bove a confidence…", self.ask_bulk_approve)

    def _keys(self) -> None:
        """Single-key decisions, active while the table or the suggestion list has focus (so
        typing a comment or a search never decides anything)."""
        bindings = {
            "A": lambda: self.approve(),
            "F": lambda: self.decide("flagged"),
            "I": lambda: self.decide("ignored"),
            "U": lambda: self.decide("unchecked"),
            "N": self.next_unchecked,
            "/": self.search_box.setFocus,
            "C": self.comment.setFocus,
            "E": self.equivalence.setFocus,
        }
        for number in range(1, 6):
            bindings[str(number)] = lambda n=number: self.approve(n - 1)
        for widget in (self.table, self.suggestions):
            for key, slot in bindings.items():
                shortcut = QShortcut(QKeySequence(key), widget)
                shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
                shortcut.activated.connect(slot)
        for widget in (self.search_box, self.comment, self.equivalence):
            back = QShortcut(QKeySequence(Qt.Key.Key_Escape), widget)
            back.setContext(Qt.ShortcutContext.WidgetShortcut)
            back.activated.connect(self.table.setFocus)

    # ------------------------------------------------------------------ opening

    def _error(self, message: str) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Mapping project", message, QMessageBox.StandardButton.Ok, self
        )
        box.open()
        self.error_box = box
        self.failed.emit(message)

    def choose_source(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Terms to map", "", "Term lists (*.csv *.tsv *.txt *.xlsx);;All files (*)"
        )
        if not path:
            return
        try:
            source = read_source(path)
        except InputError as exc:
            if "header" not in str(exc):
                self._error(str(exc))
                return
            answer = QMessageBox.question(self, "Header row?", f"{exc}\n\nIs the first row a header?")
            source = read_source(path, header=answer == QMessageBox.StandardButton.Yes)
        column, ok = QInputDialog.getItem(
            self, "Term column", "The column that holds the terms:", source.columns, source.term_column, False
        )
        if not ok:
            return
        target, _ = QFileDialog.getSaveFileName(
            self, "Save the project as", str(Path(path).with_suffix(".map")), "Mapping projects (*.map)"
        )
        if target:
            self.import_source(path, target, header=source.header, term_column=column)

    def import_source(
        self,
        path: str | Path,
        project: str | Path,
        *,
        header: bool | None = None,
        term_column: str | None = None,
    ) -> None:
        """Create a project from a term list and start the suggestions in the background."""
        try:
            source = read_source(path, header=header, term_column=term_column)
            created = MappingProject.create(project, source)
        except (InputError, OSError) as exc:
            self._error(str(exc))
            return
        self._open(created)
        self.run_suggestions()

    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a mapping project", "", "Mapping projects (*.map);;All files (*)"
        )
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path) -> None:
        try:
            project = MappingProject(path)
        except InputError as exc:
            self._error(str(exc))
            return
        self._open(project)
        if project.counts()["suggested"] < len(project):
            self.run_suggestions()  # an import that was stopped half-way goes on

    def _open(self, project: MappingProject) -> None:
        if self.project is not None:
            self.project.close()
        self.project = project
        self.setWindowTitle(f"Mapping project — {project.path.name}")
        self.reload()
        self.opened.emit(str(project.path))
        self.table.setFocus()

    def run_suggestions(self) -> None:
        if self.project is None or self.worker is not None:
            return
        worker = Worker(suggest_in_background, self.project.path, self.searcher, with_progress=True)
        self.worker = worker
        self.progress.setVisible(True)
        self.progress.setValue(0)
        worker.signals.progress.connect(
            lambda done, total: (self.progress.setMaximum(max(total, 1)), self.progress.setValue(done))
        )
        worker.signals.result.connect(self.suggested.emit)
        worker.signals.error.connect(self._error)
        worker.signals.finished.connect(self._suggestions_done)
        self.pool.start(worker)

    def _suggestions_done(self) -> None:
        self.worker = None
        self.progress.setVisible(False)
        self.reload()

    # ------------------------------------------------------------------ showing

    def reload(self) -> None:
        """Re-read the rows of the current filter and order, keeping the selected row."""
        if self.project is None:
            return
        current = self.current_row()
        status = self.status_filter.currentText()
        order = ("id", "frequency", "score")[self.order.currentIndex()]
        self.model.set_rows(self.project.rows(status=None if status == "all" else status, order=order))
        self._update_counts()
        position = self.model.position(current.id) if current else None
        self.select(position if position is not None else 0)

    def _update_counts(self) -> None:
        counts = self.project.counts()
        reviewed = len(self.project) - counts["unchecked"]
        self.counts.setText(
            f"{reviewed} of {len(self.project)} reviewed — {counts['approved']} approved, "
            f"{counts['flagged']} flagged, {counts['ignored']} ignored; {self.model.rowCount()} shown"
        )

    def current_row(self):
        return self.model.row(self.table.currentIndex().row())

    def select(self, position: int) -> None:
        if 0 <= position < self.model.rowCount():
            self.table.setCurrentIndex(self.model.index(position, 0))
            self.table.scrollTo(self.model.index(position, 0))
        else:
            self._show(-1)

    def _show(self, position: int) -> None:
        row = self.model.row(position)
        self.suggestions.clear()
        self.alternatives = []
        if row is None:
            return
        for s in row.suggestions:
            level = f" ({s.level} {s.confidence:.2f})" if s.confidence is not None else ""
            self._add_alternative(s.code, f"{s.code}  {s.name_ko} / {s.name_en}{level}")
        if row.suggestions:
            self.suggestions.setCurrentRow(0)
        self.equivalence.setCurrentText(row.equivalence)
        self.comment.setText(row.comment)

    def _add_alternative(self, code: str, label: str) -> None:
        number = len(self.alternatives) + 1
        self.alternatives.append((code, label))
        self.suggestions.addItem(QListWidgetItem(f"{number}  {label}" if number <= 5 else f"   {label}"))

    def search_alternatives(self) -> None:
        """Search the dictionary for another concept; the results replace the suggestions list."""
        query = self.search_box.text().strip()
        if not query:
            return
        self.suggestions.clear()
        self.alternatives = []
        for hit in self.searcher.search(query, 10):
            self._add_alternative(hit.code, f"{hit.code}  {hit.name_ko} / {hit.name_en} ({hit.level})")
        if self.alternatives:
            self.suggestions.setCurrentRow(0)
        self.suggestions.setFocus()

    # ------------------------------------------------------------------ deciding

    def approve(self, choice: int | None = None) -> None:
        """Approve the current row: with alternative `choice` (0-based), else the one selected
        in the list, else the row's targets or its top suggestion."""
        row = self.current_row()
        if row is None or self.project is None:
            return
        index = self.suggestions.currentRow() if choice is None else choice
        targets = [self.alternatives[index][0]] if 0 <= index < len(self.alternatives) else None
        if choice is not None and targets is None:
            return  # no such alternative
        self._decide(row.id, status="approved", targets=targets)

    def decide(self, status: str) -> None:
        row = self.current_row()
        if row is not None:
            self._decide(row.id, status=status, targets=[] if status == "unchecked" else None)

    def set_equivalence(self, equivalence: str) -> None:
        row = self.current_row()
        if row is not None:
            self._decide(row.id, equivalence=equivalence, advance=False)
            self.table.setFocus()

    def save_comment(self) -> None:
        row = self.current_row()
        if row is not None:
            self._decide(row.id, comment=self.comment.text(), advance=False)
            self.table.setFocus()

    def _decide(self, row_id: int, *, advance: bool = True, **fields) -> None:
        try:
            updated = self.project.decide(row_id, reviewer=self.reviewer or None, **fields)
        except ValueError as exc:
            self.statusBar().showMessage(str(exc), 5000)
            return
        position = self.model.position(row_id)
        self.model.replace(position, updated)
        self._update_counts()
        self.decided.emit(row_id)
        self.table.setFocus()
        if advance:
            self.select(position + 1 if position + 1 < self.model.rowCount() else position)

    def undo(self) -> None:
        if self.project is None:
            return
        row = self.project.undo()
        if row is None:
            self.statusBar().showMessage("Nothing to undo", 3000)
            return
        position = self.model.position(row.id)
        if position is not None:
            self.model.replace(position, row)
            self.select(position)
        self._update_counts()

    def next_unchecked(self) -> None:
        if self.project is None:
            return
        current = self.current_row()
        row = self.project.next_unchecked(current.id if current else 0)
        if row is None:
            self.statusBar().showMessage("Every row is reviewed", 5000)
            return
        if self.model.position(row.id) is None:
            self.status_filter.setCurrentText("all")
        self.select(self.model.position(row.id))

    def ask_bulk_approve(self) -> None:
        if self.project is None:
            return
        value, ok = QInputDialog.getDouble(
            self,
            "Approve above a confidence",
            "Approve every unchecked row whose top suggestion's confidence is at least:",
            0.9,
            0.0,
            1.0,
            2,
        )
        if ok:
            self.bulk_approve(value)

    def bulk_approve(self, confidence: float) -> int:
        count = self.project.approve_above(confidence, reviewer=self.reviewer)
        self.statusBar().showMessage(f"Approved {count} rows (Ctrl+Z takes them back one by one)", 8000)
        self.reload()
        return count

    # ------------------------------------------------------------------ previous mapping and export

    def choose_previous(self) -> None:
        if self.project is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "A previous mapping", "", "Projects or Usagi CSV (*.map *.csv);;All files (*)"
        )
        if path:
            try:
                count = self.project.apply_previous(path)
            except InputError as exc:
                self._error(str(exc))
                return
            self.statusBar().showMessage(f"Took over {count} decisions", 8000)
            self.reload()

    def choose_export(self, kind: str) -> None:
        if self.project is None:
            return
        suffix = {"csv": "mapped.csv", "stcm": "source_to_concept_map.csv", "usagi": "usagi.csv"}[kind]
        path, _ = QFileDialog.getSaveFileName(
            self, "Export", str(self.project.path.with_suffix(f".{suffix}")), "CSV (*.csv)"
        )
        if path:
            self.export(kind, path)

    def export(self, kind: str, path: str | Path) -> int:
        try:
            count = export_project(self.project, path, kind, self.searcher.dictionary)
        except OSError as exc:
            self._error(f"Cannot write {path}: {exc}")
            return 0
        self.statusBar().showMessage(f"Wrote {count} rows to {path}", 8000)
        return count

    def closeEvent(self, event) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.pool.waitForDone(5000)
        if self.project is not None:
            self.project.close()
            self.project = None
        super().closeEvent(event)
