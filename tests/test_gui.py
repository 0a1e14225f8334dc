"""The desktop app under pytest-qt (offscreen), on the small dictionary and the tiny bundle."""

import csv

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QInputMethodEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.dictionary import Term  # noqa: E402
from core.search import Hit  # noqa: E402
from gui.app import MainWindow  # noqa: E402
from gui.models import MappingRowsModel, ResultsModel  # noqa: E402


@pytest.fixture()
def window_factory(qtbot, small_kcd, tiny_bundle, cache, tmp_path):
    def make(**kwargs):
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        options = {
            "dictionary": str(small_kcd),
            "model": str(tiny_bundle),
            "settings": settings,
            "cache": cache,
            "debounce_ms": 10,
        }
        options.update(kwargs)
        window = MainWindow(**options)
        qtbot.addWidget(window)
        if window.searcher is None and window.loading is not None:
            with qtbot.waitSignals([window.searcher_ready], timeout=60000, raising=False):
                pass
            qtbot.waitUntil(lambda: window.loading is None, timeout=60000)
        return window

    return make


def type_with_ime(box, text):
    """Type like a Korean IME: each syllable is composed (pre-edit), then committed."""
    for char in text:
        QApplication.sendEvent(box, QInputMethodEvent(char, []))
        commit = QInputMethodEvent("", [])
        commit.setCommitString(char)
        QApplication.sendEvent(box, commit)


def search(qtbot, window, text):
    window.search_box.clear()
    with qtbot.waitSignal(window.results_shown, timeout=20000, check_params_cb=lambda q: q == text):
        if text.isascii():
            qtbot.keyClicks(window.search_box, text)
        else:
            type_with_ime(window.search_box, text)


def test_ime_pre_edit_text_is_searched_before_it_is_committed(qtbot, window_factory):
    window = window_factory()
    window.search_box.setFocus()
    type_with_ime(window.search_box, "간의 기타 및 상세불명의 경변")
    with qtbot.waitSignal(window.results_shown, timeout=20000) as blocker:
        QApplication.sendEvent(window.search_box, QInputMethodEvent("증", []))  # composing, not committed
    assert blocker.args[0] == "간의 기타 및 상세불명의 경변증"
    assert window.search_box.text() == "간의 기타 및 상세불명의 경변"
    assert window.model.hit(0).code == "K74.6"


def test_typing_a_query_shows_the_concept_and_its_details(qtbot, window_factory):
    window = window_factory()
    assert window.searcher is not None
    search(qtbot, window, "간의 기타 및 상세불명의 경변증")
    assert window.model.hit(0).code == "K74.6"
    assert window.count.text() == "best 20, 1 exact"  # what is shown, not a count it cannot know
    assert "terms" in window.status_dictionary.text() and "ms" in window.status_latency.text()
    html = window.detail.body.toHtml()
    assert "Other and unspecified cirrhosis of liver" in html and "K74" in html
    window.detail.copy_code.click()
    assert QGuiApplication.clipboard().text() == "K74.6"
    window.detail.copy_en.click()
    assert QGuiApplication.clipboard().text() == "Other and unspecified cirrhosis of liver"
    window.detail.copy_ko.click()
    assert QGuiApplication.clipboard().text() == "간의 기타 및 상세불명의 경변증"


def test_keyboard_navigation_moves_the_detail_pane(qtbot, window_factory):
    window = window_factory()
    search(qtbot, window, "K74")
    window.table.setFocus()
    first = window.detail.hit.code
    qtbot.keyClick(window.table, Qt.Key.Key_Down)
    assert window.detail.hit.code != first


def test_language_filter_chooses_what_is_shown_not_what_matches(qtbot, window_factory):
    window = window_factory()
    search(qtbot, window, "Other and unspecified cirrhosis of liver")
    before = [window.model.hit(r).code for r in range(window.model.rowCount())]
    window.lang.setCurrentText("Korean")  # an English query, Korean names shown
    search(qtbot, window, "Other and unspecified cirrhosis of liver")
    after = [window.model.hit(r).code for r in range(window.model.rowCount())]
    assert before and after == before and after[0] == "K74.6"
    assert window.table.isColumnHidden(2) and not window.table.isColumnHidden(1)
    body = window.detail.body.toPlainText()
    assert "Korean" in body and "English" not in body.replace("matched:", "")  # the English list is hidden
    assert "경변증" in body


def test_code_query_lands_on_the_code(qtbot, window_factory):
    window = window_factory()
    search(qtbot, window, "k746")
    hit = window.model.hit(0)
    assert hit.code == "K74.6" and hit.match == "code"


def test_results_table_displays_each_column_as_labelled(qtbot, window_factory):
    from PySide6.QtCore import Qt

    window = window_factory()
    search(qtbot, window, "K74.6")
    hit = window.model.hit(0)
    shown = [window.model.index(0, c).data(Qt.ItemDataRole.DisplayRole) for c in range(5)]
    headers = [window.model.headerData(c, Qt.Orientation.Horizontal) for c in range(5)]
    assert headers == ["Code", "Korean", "English", "Matched synonym", "Score"]
    assert shown[0] == hit.code + " ▸"  # K74.6 has more specific codes below it
    assert shown[1:4] == [hit.name_ko, hit.name_en, hit.matched] and shown[4].startswith(f"{hit.score:.3f}")
    assert "경변증" in shown[1] and "cirrhosis" in shown[2].lower()


def test_results_model_passes_qt_model_tester(qtmodeltester):
    model = ResultsModel()
    synonyms = (Term("간경화", "ko"), Term("cirrhosis", "en"))
    model.set_hits(
        [
            Hit("K74.6", "간경화", "cirrhosis", "간경화", "ko", 0.9, "dense", synonyms),
            Hit("K70.3", "알콜성", "alcoholic", "alcoholic", "en", 0.8, "dense", synonyms),
        ]
    )
    qtmodeltester.check(model)
    from core.mapping import Row, Suggestion

    rows = MappingRowsModel()
    top = Suggestion(1, "K74.6", "간경화", "cirrhosis", 0.9, 0.95, "high")
    rows.set_rows(
        [
            Row(1, ("LC",), "LC", "", 3, suggestions=(top,)),
            Row(2, ("x",), "x", "", 0, status="approved", targets=("K70.3",)),
            Row(3, ("",), "", "", 0),
        ]
    )
    qtmodeltester.check(rows)
    shown = [[rows.index(r, c).data() for c in range(rows.columnCount())] for r in range(3)]
    assert shown[0][1:] == ["LC", "3", "·", "K74.6", "간경화", "high 0.95"]
    assert shown[1][3:5] == ["✔ approved", "K70.3"] and shown[2][5] == "(empty term)"


def test_malformed_dictionary_shows_an_error_and_keeps_running(qtbot, window_factory, tmp_path):
    window = window_factory()
    bad = tmp_path / "bad.csv"
    bad.write_text("code,term\nX1\n")
    with qtbot.waitSignal(window.error_shown, timeout=20000) as blocker:
        window.load(str(bad), None, window.model_path)
    assert "bad.csv:2" in blocker.args[0]
    assert window.error_box.isVisible()
    search(qtbot, window, "K74.6")  # the previous dictionary still works
    assert window.model.hit(0).code == "K74.6"


def test_incompatible_bundle_shows_an_error(qtbot, window_factory, tmp_path):
    window = window_factory()
    with qtbot.waitSignal(window.error_shown, timeout=20000) as blocker:
        window.load(window.dictionary_path, None, str(tmp_path))
    assert "not a model bundle" in blocker.args[0]


def test_local_synonym_survives_a_restart(qtbot, window_factory):
    window = window_factory()
    window.add_synonym("K74.6", "LC")
    search(qtbot, window, "LC")
    assert window.model.hit(0).code == "K74.6"
    window.close()
    again = window_factory()
    search(qtbot, again, "LC")
    assert again.model.hit(0).code == "K74.6"
    assert any(t.text == "LC" for t in again.model.hit(0).synonyms)


def open_mapping(qtbot, window, tmp_path, text: str, **options):
    source = tmp_path / "terms.csv"
    source.write_text(text, encoding="utf-8")
    mapping = window.open_mapping()
    qtbot.addWidget(mapping)
    with qtbot.waitSignal(mapping.suggested, timeout=60000):
        mapping.import_source(source, tmp_path / "terms.map", **options)
    qtbot.waitUntil(lambda: mapping.worker is None, timeout=10000)
    return mapping


def test_mapping_review_by_keyboard_alone(qtbot, window_factory, tmp_path):
    window = window_factory()
    mapping = open_mapping(
        qtbot,
        window,
        tmp_path,
        "id,진단명,빈도\n1,K74.6,9\n2,간의 기타 및 상세불명의 경변증,30\n3,acute appendicitis,2\n4,hypertension,5\n",
    )
    project = mapping.project
    assert project.columns == ["id", "진단명", "빈도"] and project.row(1).term == "K74.6"  # not the id column
    assert mapping.model.rowCount() == 4 and mapping.table.currentIndex().row() == 0
    mapping.table.setFocus()
    qtbot.keyClick(mapping.table, Qt.Key.Key_A)  # approve row 1's top suggestion, move on
    assert project.row(1).status == "approved" and project.row(1).targets == ("K74.6",)
    assert mapping.current_row().id == 2
    qtbot.keyClick(mapping.table, Qt.Key.Key_F)  # flag row 2
    assert project.row(2).status == "flagged"
    qtbot.keyClick(mapping.table, Qt.Key.Key_2)  # row 3: approve the second suggestion
    assert project.row(3).targets == (project.row(3).suggestions[1].code,)
    qtbot.keyClick(mapping.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo it
    assert project.row(3).status == "unchecked" and mapping.current_row().id == 3
    qtbot.keyClick(mapping.table, Qt.Key.Key_Slash)  # search another concept in place
    assert mapping.search_box.hasFocus()
    qtbot.keyClicks(mapping.search_box, "K35")
    qtbot.keyClick(mapping.search_box, Qt.Key.Key_Return)
    assert mapping.suggestions.hasFocus() and mapping.alternatives[0][0] == "K35"
    qtbot.keyClick(mapping.suggestions, Qt.Key.Key_A)
    assert project.row(3).targets == ("K35",)
    mapping.table.setFocus()
    qtbot.keyClick(mapping.table, Qt.Key.Key_C)  # comment on row 4
    qtbot.keyClicks(mapping.comment, "check with the ward")
    qtbot.keyClick(mapping.comment, Qt.Key.Key_Return)
    assert project.row(4).comment == "check with the ward" and mapping.table.hasFocus()
    qtbot.keyClick(mapping.table, Qt.Key.Key_I)
    assert project.row(4).status == "ignored"
    qtbot.keyClick(mapping.table, Qt.Key.Key_N)  # next unchecked: none left after row 4
    counts = project.counts()
    assert (counts["approved"], counts["flagged"], counts["ignored"], counts["unchecked"]) == (2, 1, 1, 0)
    assert mapping.counts.text().startswith("4 of 4 reviewed")
    mapping.status_filter.setCurrentText("flagged")
    assert [mapping.model.row(i).id for i in range(mapping.model.rowCount())] == [2]

    out = tmp_path / "out.csv"
    assert mapping.export("csv", out) == 4
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"] and rows[0]["mapped_code"] == "K74.6"
    assert rows[0]["mapped_name_en"] == "Other and unspecified cirrhosis of liver"
    assert mapping.export("stcm", tmp_path / "stcm.csv") == 2


def test_mapping_reopens_where_it_stopped_and_reports_bad_files(qtbot, window_factory, tmp_path):
    window = window_factory()
    mapping = open_mapping(qtbot, window, tmp_path, "간경화\n고혈압\n", header=False)
    assert mapping.project.row(1).term == "간경화"  # no header: the first term is kept
    mapping.table.setFocus()
    qtbot.keyClick(mapping.table, Qt.Key.Key_A)
    mapping.close()
    again = window.open_mapping()
    qtbot.addWidget(again)
    again.open_project(tmp_path / "terms.map")
    assert again.project.row(1).status == "approved" and again.model.rowCount() == 2
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    with qtbot.waitSignal(again.failed):
        again.import_source(bad, tmp_path / "bad.map")
    assert not (tmp_path / "bad.map").exists()


def test_cancelled_loading_keeps_the_previous_dictionary(qtbot, window_factory, tmp_path):
    from tests.conftest import kcd_subset

    window = window_factory()
    before = window.searcher
    other = kcd_subset(tmp_path / "other.tsv", prefixes=("C", "D"))
    window.load(str(other), None, window.model_path)
    worker = window.loading
    worker.cancel()
    qtbot.waitUntil(lambda: window.loading is None, timeout=60000)
    assert window.searcher is before
    assert "cancelled" in window.statusBar().currentMessage()


def test_missing_qt_libraries_are_named_instead_of_a_qt_abort(monkeypatch, capsys):
    import ctypes.util

    import gui.__main__ as entry

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else name)
    assert entry.missing_qt_libraries() == ["libxcb-cursor0"]
    assert entry.main([]) == 2
    assert "sudo apt-get install libxcb-cursor0" in capsys.readouterr().err
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert entry.missing_qt_libraries() == []


def test_keyboard_moves_between_box_and_results_and_enter_copies(qtbot, window_factory):
    from PySide6.QtGui import QGuiApplication

    window = window_factory()
    window.show()
    search(qtbot, window, "cirrhosis of liver")
    window.search_box.setFocus()
    qtbot.keyClick(window.search_box, Qt.Key.Key_Down)
    assert window.table.hasFocus() and window.table.currentIndex().row() == 0
    qtbot.keyClick(window.table, Qt.Key.Key_Return)
    assert QGuiApplication.clipboard().text() == window.model.hit(0).code
    window.format_actions["row"].trigger()
    qtbot.keyClick(window.table, Qt.Key.Key_Return)
    assert QGuiApplication.clipboard().text().split("\t")[0] == window.model.hit(0).code
    assert window.settings.value("copy_format") == "row"  # remembered
    qtbot.keyClick(window.table, Qt.Key.Key_Up)
    assert window.search_box.hasFocus()
    window.clear_search()
    assert window.search_box.text() == ""


def test_every_menu_has_unique_mnemonics_and_the_shortcuts_are_in_menus(window_factory):
    window = window_factory()
    shortcuts = set()
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        letters = []
        for action in menu.actions():
            text = action.text()
            if "&" in text:
                letters.append(text[text.index("&") + 1].lower())
            if not action.shortcut().isEmpty():
                shortcuts.add(action.shortcut().toString())
        assert len(letters) == len(set(letters)), (menu_action.text(), letters)
    assert {"Ctrl+L", "Ctrl+C", "Ctrl+D", "Esc", "Ctrl+B"} <= shortcuts
    menus = [a.text() for a in window.menuBar().actions()]
    assert len({m[m.index("&") + 1] for m in menus}) == len(menus)


def test_context_menu_sorting_and_children(qtbot, window_factory):
    window = window_factory()
    search(qtbot, window, "K74.6")
    texts = [a.text() for a in window.row_menu(0).actions()]
    assert (
        "Copy code" in texts and "Star" in texts and any(t.startswith("More specific codes") for t in texts)
    )
    scores = lambda: [window.model.hit(r).score for r in range(window.model.rowCount())]  # noqa: E731
    window.table.sortByColumn(4, Qt.SortOrder.AscendingOrder)
    assert scores() == sorted(scores())
    window.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    codes = [window.model.hit(r).code for r in range(window.model.rowCount())]
    assert codes == sorted(codes, reverse=True)
    search(qtbot, window, "K74.6")
    window.table.selectRow([window.model.hit(r).code for r in range(window.model.rowCount())].index("K74.6"))
    body = window.detail.body.toHtml()
    assert "More specific codes" in body and "code:K74.60" in body
    with qtbot.waitSignal(window.results_shown, timeout=20000):
        window.detail.code_requested.emit("K74.60")
    assert window.model.hit(0).code == "K74.60"


def test_history_and_favourites_persist(qtbot, window_factory):
    window = window_factory()
    search(qtbot, window, "cirrhosis")
    search(qtbot, window, "K74.6")
    window.search_box.clear()
    window.search_box.setFocus()
    qtbot.keyClick(window.search_box, Qt.Key.Key_Up)
    assert window.search_box.text() == "K74.6"
    qtbot.keyClick(window.search_box, Qt.Key.Key_Up)
    assert window.search_box.text() == "cirrhosis"
    window.toggle_favourite("K74.6")
    assert "K74.6" in window.model.starred
    again = window_factory()
    assert "K74.6" in again.model.starred and again.history[-2:] == ["cirrhosis", "K74.6"]
    assert any("K74.6" in a.text() for a in again.favourites_menu.actions())


def test_layout_fits_800_by_600_and_the_splitter_is_remembered(qtbot, window_factory):
    window = window_factory()
    window.resize(800, 600)
    window.show()
    search(qtbot, window, "cirrhosis of liver")
    qtbot.wait(50)
    widths = sum(window.table.columnWidth(c) for c in range(5))
    assert widths <= window.table.viewport().width() + 2  # Matched and Score stay in view
    for button in (window.detail.copy_code, window.detail.copy_ko, window.detail.copy_en, window.detail.add):
        assert button.width() >= button.sizeHint().width()  # no label cut off ("dd synonym…")
    window.splitter.setSizes([500, 300])
    window.splitter.splitterMoved.emit(500, 1)
    moved = window.splitter.sizes()
    assert moved != [740, 360]  # (not the default, so that the restored sizes tell)
    again = window_factory()
    again.resize(800, 600)
    again.show()
    qtbot.wait(50)
    assert again.splitter.sizes() == moved  # the next start opens with the sizes the user left


def test_chapter_filter_keeps_results_in_one_chapter(qtbot, window_factory):
    window = window_factory()
    assert window.chapter.isVisibleTo(window)  # a KCD-shaped dictionary
    search(qtbot, window, "K74.6")
    assert window.model.hit(0).code == "K74.6"
    with qtbot.waitSignal(window.results_shown, timeout=20000):
        window.chapter.setCurrentIndex(9)  # IX. I00–I99
    codes = [window.model.hit(r).code for r in range(window.model.rowCount())]
    assert codes and all(c.startswith("I") for c in codes)


def test_palette_follows_a_dark_system_scheme(qtbot):
    from PySide6.QtGui import QPalette

    from gui.theme import apply_color_scheme

    app = QApplication.instance()
    before = app.palette()
    try:
        apply_color_scheme(app, Qt.ColorScheme.Dark)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        assert app.palette().color(QPalette.ColorRole.Text).lightness() > 180
        apply_color_scheme(app, Qt.ColorScheme.Light)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 150
    finally:
        app.setPalette(before)
