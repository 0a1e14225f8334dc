"""Mapping projects: import variants, suggestions, decisions, crash safety, exports, OMOP."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from core.dictionary import load_dictionary
from core.errors import InputError
from core.mapping import (
    SCHEMA,
    STCM_COLUMNS,
    USAGI_COLUMNS,
    MappingProject,
    _name_like,
    _raw_rows,
    guess_columns,
    guess_header,
    read_source,
)

ROOT = Path(__file__).resolve().parents[1]


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    """A minimal .xlsx (shared strings and inline numbers), as spreadsheet programs write it."""
    strings: list[str] = []
    sheet_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{chr(ord('A') + c)}{r}"
            if value.isdigit():
                cells.append(f'<c r="{ref}"><v>{value}.0</v></c>')
            else:
                strings.append(value)
                cells.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
        sheet_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "xl/sharedStrings.xml",
            f"<sst {ns}>" + "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>",
        )
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f"<worksheet {ns}><sheetData>{''.join(sheet_rows)}</sheetData></worksheet>",
        )
    return path


LIST = [
    ["id", "진단명", "빈도"],
    ["1", "간경화", "120"],
    ["2", "liver cirrhosis", "40"],
    ["3", "급성 충수염", "7"],
]


def test_import_variants_find_the_term_column_and_keep_every_row(tmp_path):
    utf8 = tmp_path / "list.csv"
    utf8.write_text("\n".join(",".join(r) for r in LIST) + "\n", encoding="utf-8")
    cp949 = tmp_path / "excel.csv"
    cp949.write_bytes(("\r\n".join(",".join(r) for r in LIST) + "\r\n").encode("cp949"))
    tsv = tmp_path / "list.tsv"
    tsv.write_text("\n".join("\t".join(r) for r in LIST) + "\n", encoding="utf-8-sig")
    xlsx = write_xlsx(tmp_path / "list.xlsx", LIST)
    for path in (utf8, cp949, tsv, xlsx):
        source = read_source(path)
        assert source.header, path
        assert source.columns == ["id", "진단명", "빈도"], path
        assert source.term_column == 1, f"{path}: the id column is not the term column"
        assert source.frequency_column == 2 and source.code_column != 1
        assert [r[1] for r in source.rows()] == ["간경화", "liver cirrhosis", "급성 충수염"], path
    assert read_source(cp949).encoding == "cp949"

    plain = tmp_path / "terms.txt"
    plain.write_text("간경화\nliver cirrhosis\n\n당뇨\n", encoding="utf-8")
    source = read_source(plain)
    assert not source.header and [r[0] for r in source.rows()] == ["간경화", "liver cirrhosis", "당뇨"]

    no_header = tmp_path / "codes.csv"
    no_header.write_text("X01,간경화\nX02,고혈압\nX03,당뇨병\n", encoding="utf-8")
    source = read_source(no_header)
    assert not source.header and source.term_column == 1 and source.code_column == 0
    assert len(list(source.rows())) == 3

    unclear = tmp_path / "unclear.csv"
    unclear.write_text("간경화,간\n고혈압,심장\n", encoding="utf-8")
    with pytest.raises(InputError, match="header"):
        read_source(unclear)
    assert not read_source(unclear, header=False).header
    assert read_source(unclear, header=False, term_column="2").term_column == 1
    with pytest.raises(InputError, match="no column"):
        read_source(utf8, term_column="name")


def test_xlsx_rich_text_inline_strings_gaps_and_wide_columns(tmp_path):
    """What spreadsheet programs write beyond the plain case: shared strings in formatted runs,
    inline strings, empty cells left out (a gap), columns past Z, cells without a reference,
    floats that are whole numbers, formula text, empty rows; and files that are no workbook."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    shared = (
        f"<sst {ns}><si><t>code</t></si><si><t>term</t></si>"
        "<si><r><t>간</t></r><r><t/></r><r><t>경화</t></r></si>\n  <si>\n    <t>note</t>\n  </si>\n</sst>"
    )
    sheet = (
        f"<worksheet {ns}><sheetData>"
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
        '<c r="AA1" t="s"><v>3</v></c></row>'
        '<row r="2"><c r="A2"><v>1234.0</v></c><c r="B2" t="s"><v>2</v></c>'
        '<c r="AA2" t="str"><v>7.0</v></c></row>'
        '<row r="3"/>'
        '<row r="4"><c r="A4"><v>-3.0</v></c><c r="B4" t="inlineStr"><is><t>liver</t><t> cirrhosis</t></is></c>'
        '<c r="AB4"><v>2.5</v></c></row>'
        '<row r="5"><c><v>5</v></c><c t="inlineStr"><is>\n<t/><t>당뇨</t></is></c><c r="D5"/></row>'
        '<row r="6"><c r="7"><v>6</v></c></row>'  # a reference without letters: the first column
        "</sheetData></worksheet>"
    )
    path = tmp_path / "rich.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/sharedStrings.xml", shared)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    gap = [""] * 24
    assert list(_raw_rows(path, "utf-8")) == [
        ["code", "term", *gap, "note"],
        ["1234", "간경화", *gap, "7.0"],
        [],
        ["-3", "liver cirrhosis", *gap, "", "2.5"],
        ["5", "당뇨", "", ""],
        ["6"],
    ]
    source = read_source(path, header=True)  # (empty header cells: no guess)
    assert source.columns[:3] == ["code", "term", "column_3"] and source.columns[26] == "note"
    assert [r[1] for r in source.rows()] == ["간경화", "liver cirrhosis", "당뇨", ""]

    not_zip = tmp_path / "renamed.xlsx"
    not_zip.write_text("code,term\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"renamed\.xlsx: not an \.xlsx file"):
        read_source(not_zip)
    no_sheet = tmp_path / "empty.xlsx"
    with zipfile.ZipFile(no_sheet, "w") as archive:
        archive.writestr("xl/workbook.xml", f"<workbook {ns}/>")
    with pytest.raises(InputError, match=r"empty\.xlsx: no worksheet"):
        read_source(no_sheet)


def test_read_source_takes_named_or_numbered_columns_and_says_what_is_wrong(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("코드,진단명,비고,비고\nK1,간경화,a,b\nK2,당뇨,c,d\n", encoding="utf-8")
    source = read_source(table)
    assert (source.term_column, source.code_column, source.frequency_column) == (1, 0, None)
    assert source.sample == [["K1", "간경화", "a", "b"], ["K2", "당뇨", "c", "d"]]  # the rows, no header
    by_note = read_source(table, term_column="비고")
    assert (by_note.term_column, by_note.code_column) == (2, 0)  # the first of that name; the code kept
    assert read_source(table, term_column=1).term_column == 0  # 1-based
    assert read_source(table, term_column="4").term_column == 3
    assert read_source(table, term_column="코드").code_column is None  # not the term column too
    assert read_source(table, code_column="비고").code_column == 2
    assert read_source(table, frequency_column=4).frequency_column == 3
    for option, value, message in [
        ("term_column", 5, "no column 5 for the term (the file has 4)"),
        ("code_column", "9", "no column 9 for the code (the file has 4)"),
        ("frequency_column", "x", "no column 'x' for the frequency; columns: 코드, 진단명, 비고, 비고"),
    ]:
        with pytest.raises(InputError) as raised:
            read_source(table, **{option: value})
        assert str(raised.value) == f"{table}: {message}"

    with pytest.raises(InputError, match=r"missing\.csv: no such file"):
        read_source(tmp_path / "missing.csv")
    blank = tmp_path / "blank.csv"
    blank.write_text("\n , \n", encoding="utf-8")
    with pytest.raises(InputError, match=r"blank\.csv: no rows"):
        read_source(blank)
    unclear = tmp_path / "unclear.csv"
    unclear.write_text("간경화,간\n고혈압,심장\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"the first row \(간경화, 간\) is a header; say so"):
        read_source(unclear)
    headless = read_source(unclear, header=False)
    assert headless.columns == ["column_1", "column_2"] and len(headless.sample) == 2


def test_delimiters_line_ends_and_plain_text_lists(tmp_path):
    one_column = tmp_path / "terms.tsv"  # a .tsv is tab-separated even when its first line has no tab
    one_column.write_text("term\n간경화, 알코올성\n당뇨\n", encoding="utf-8")
    assert [r[0] for r in read_source(one_column, header=True).rows()] == ["간경화, 알코올성", "당뇨"]
    tabbed = tmp_path / "saved-as.csv"  # a .csv whose first line has tabs is tab-separated
    tabbed.write_text("code\tterm\nK1\t간경화, 알코올성\nK2\t당뇨\n", encoding="utf-8")
    assert [r[1] for r in read_source(tabbed).rows()] == ["간경화, 알코올성", "당뇨"]
    quoted = tmp_path / "excel.csv"  # a cell with a line break inside quotes keeps it as written
    quoted.write_bytes('code,term\r\nK1,"간경화\r\n(알코올성)"\r\nK2,당뇨\r\n'.encode("cp949"))
    assert [r[1] for r in read_source(quoted).rows()] == ["간경화\r\n(알코올성)", "당뇨"]
    plain = tmp_path / "LIST.TXT"  # one term per line, commas and all, never a header
    plain.write_text("진단명\r\nFactor XI, deficiency\r\nFactor IX\r\n", encoding="utf-8")
    source = read_source(plain)
    assert source.header is False
    assert [r[0] for r in source.rows()] == ["진단명", "Factor XI, deficiency", "Factor IX"]
    xlsx = write_xlsx(tmp_path / "list.xlsx", LIST)
    assert read_source(xlsx).encoding == "utf-8"


@pytest.mark.parametrize(
    "cell, expected",
    [("간경화", 1.0), (" liver ", 1.0), ("x", 0.2), ("간", 0.2), ("A-1", 0.2), ("12", 0.0), ("1,234", 0.0)]
    + [("K74.6", 0.0), ("AB123", 0.0), ("", 0.0), ("  ", 0.0)],
)
def test_how_much_a_cell_looks_like_a_name(cell, expected):
    assert _name_like(cell) == expected


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([["진단명"]], None),  # one row: nothing to compare with
        ([["name", "code"], ["간경화", "K74.6"]], True),  # two rows are enough
        ([["진료과", "환자"], ["내과", "12"]], True),  # a column of numbers under a name
        ([["진료과", "번호"], ["내과", "A01"], ["외과", "B02"]], True),  # ... or of codes
        ([["진료과", "환자"], ["내과"], ["외과", ""], ["안과", "3"]], True),  # short and empty cells skipped
        ([["진단명", "비고"], ["간경화", "메모"]], True),  # a known column name
        ([["진단명"], ["간경화"], ["당뇨"]], None),  # ... but a single column: can't tell
        ([["name", ""], ["간경화", "1"]], False),  # a header has no empty cell,
        ([["12", "간경화"], ["13", "당뇨"]], False),  # no number,
        ([["K74.6", "간경화"], ["E11", "당뇨"]], False),  # no code
        ([["간경화", "간"], ["고혈압", "심장"]], None),  # names over names
    ],
)
def test_guess_header(rows, expected):
    assert guess_header(rows) is expected


@pytest.mark.parametrize(
    "columns, rows, header, expected",
    [
        # a header naming the term column wins over a column of longer text
        (
            ["id", "진단명", "비고"],
            [
                ["1", "간경화", "아주 길게 적은 메모입니다 여러 단어"],
                ["2", "당뇨", "또 다른 긴 설명이 있는 메모"],
            ],
            True,
            (1, 0, None),
        ),
        # ... unless that column is empty: then the column that looks most like names
        (["name", "설명"], [["", "간경화"], ["", "당뇨병"]], True, (1, None, None)),
        # code, term and frequency columns named by their headers
        (["상병코드", "상병명", "건수"], [["K74.6", "간경화", "12"], ["E11", "당뇨", "3"]], True, (1, 0, 2)),
        # by content: unique codes; whole numbers are a frequency under a header only
        (["a", "b", "c"], [["A1", "간경화", "3"], ["A2", "당뇨", "3"]], True, (1, 0, 2)),
        (
            ["column_1", "column_2", "column_3"],
            [["A1", "간경화", "3"], ["A2", "당뇨", "3"]],
            False,
            (1, 0, None),
        ),
        # numbers without a header are neither codes nor counts; repeated codes are no code column
        (["column_1", "column_2"], [["1", "간경화"], ["2", "당뇨"]], False, (1, None, None)),
        (["column_1", "column_2"], [["A1", "간경화"], ["A1", "당뇨"]], False, (1, None, None)),
        # the term column: names in most cells, long, varied (each factor decides one table)
        (
            ["column_1", "column_2"],
            [["간경화", "ab"], ["", "cd"], ["", "ef"], ["당뇨병", "gh"]],
            False,
            (0, None, None),
        ),
        (["column_1", "column_2"], [["간경화", "고혈압"], ["당뇨병", "고혈압"]], False, (0, None, None)),
        (
            ["column_1", "column_2"],
            [
                ["알코올성 간경화증, 복수 동반됨", "간경"],
                ["K74.6", "당뇨"],
                ["제2형 당뇨병, 신장 합병증 동반", "혈압"],
                ["E11.9", "심장"],
                ["고혈압성 심장병, 심부전 동반됨", "폐렴"],
            ],
            False,
            (0, None, None),
        ),
        (
            ["column_1", "column_2"],
            [["간경화증", "간경화"], ["K1", "간경화"], ["당뇨병성", "당뇨병"], ["고혈압성", "당뇨병"]],
            False,
            (0, None, None),
        ),
        # a column named as the code column, though its codes repeat
        (["진단코드", "진단명"], [["K74.6", "간경화"], ["K74.6", "간경변"]], True, (1, 0, None)),
        # two equally name-like columns: the first
        (["column_1", "column_2"], [["간경화", "간경화"], ["당뇨", "당뇨"]], False, (0, None, None)),
    ],
)
def test_guess_columns(columns, rows, header, expected):
    assert guess_columns(columns, rows, header=header) == expected


def test_rows_are_padded_to_the_columns_and_undecodable_files_refused(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,term,count\n1,간경화\n2,당뇨,3,extra\n", encoding="utf-8")
    source = read_source(ragged)
    assert source.columns == ["id", "term", "count", "column_4"]  # wider rows than the header
    assert list(source.rows()) == [["1", "간경화", "", ""], ["2", "당뇨", "3", "extra"]]
    # a row wider than the sample showed is kept whole
    assert list(read_source(ragged, sample_size=1).rows()) == [
        ["1", "간경화", ""],
        ["2", "당뇨", "3", "extra"],
    ]
    cut = tmp_path / "cut.csv"  # UTF-8 cut inside its last character: not UTF-8 (nor cp949)
    cut.write_bytes("term\n간경화\n".encode()[:-2])
    with pytest.raises(InputError, match=r"cut\.csv: neither UTF-8 nor cp949"):
        read_source(cut)


@pytest.fixture()
def project(tmp_path, small_kcd, tiny_bundle, cache):
    from core.bundle import Embedder
    from core.search import Searcher

    source = tmp_path / "list.csv"
    source.write_text(
        "code,term,count\nL1,간경화,120\nL2,liver cirrhosis,40\nL3,급성 충수염,7\nL4,,1\n", encoding="utf-8"
    )
    searcher = Searcher(
        load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache, user_synonyms=tmp_path / "u.tsv"
    )
    created = MappingProject.create(tmp_path / "p.map", read_source(source))
    assert created.suggest(searcher.search_many, k=3) == 4
    yield created, searcher
    created.close()


def test_review_decisions_undo_and_resuggest(project):
    mapping, searcher = project
    rows = mapping.rows()
    assert [r.term for r in rows] == ["간경화", "liver cirrhosis", "급성 충수염", ""]
    assert [r.source_code for r in rows] == ["L1", "L2", "L3", "L4"] and rows[0].frequency == 120
    assert len(rows[0].suggestions) == 3 and rows[3].suggestions == ()
    assert [r.term for r in mapping.rows(order="frequency")][:2] == ["간경화", "liver cirrhosis"]

    approved = mapping.decide(rows[0].id, status="approved", reviewer="kim")
    assert approved.targets == (rows[0].suggestions[0].code,) and approved.equivalence == "EQUAL"
    mapping.decide(rows[1].id, status="flagged", comment="ask Dr Lee")
    mapping.decide(rows[2].id, targets=["K35.8", "K35.2"], status="approved", equivalence="NARROWER")
    assert mapping.counts()["approved"] == 2 and mapping.counts()["unchecked"] == 1
    assert mapping.next_unchecked().term == ""

    undone = mapping.undo()
    assert undone.id == rows[2].id and undone.status == "unchecked" and undone.targets == ()
    assert mapping.undo().status == "unchecked"  # the flag
    assert mapping.row(rows[0].id).status == "approved"

    before = mapping.row(rows[0].id).suggestions
    mapping.db.execute("UPDATE suggestions SET code = 'X' WHERE row_id = ?", (rows[1].id,))
    mapping.suggest(searcher.search_many, k=3, redo=True)
    assert mapping.row(rows[0].id).suggestions == before  # decided: untouched
    assert mapping.row(rows[1].id).suggestions[0].code != "X"  # undecided: refreshed
    with pytest.raises(ValueError, match="status"):
        mapping.decide(rows[1].id, status="done")


def test_bulk_approval_the_next_unchecked_row_counts_and_undoing_a_changed_decision(project):
    mapping, _ = project
    ids = [r.id for r in mapping.rows()]  # the last row (an empty term) has no suggestion
    assert mapping.next_unchecked().id == ids[0]
    assert mapping.next_unchecked(after=ids[1]).id == ids[2]
    assert mapping.next_unchecked(after=ids[3]).id == ids[0]  # past the end: from the start again
    for row_id, rank, confidence in [
        (ids[0], 1, 0.95),
        (ids[1], 1, 0.8),
        (ids[2], 1, 0.5),
        (ids[2], 2, 0.99),
    ]:
        mapping.db.execute(
            "UPDATE suggestions SET confidence = ? WHERE row_id = ? AND rank = ?", (confidence, row_id, rank)
        )
    mapping.decide(ids[1], status="flagged")
    assert mapping.approve_above(0.8, reviewer="auto") == 1  # decided rows and lower top suggestions stay
    first = mapping.row(ids[0])
    assert (first.status, first.targets, first.reviewer) == ("approved", (first.suggestions[0].code,), "auto")
    assert mapping.row(ids[2]).status == "unchecked"  # (its second suggestion's 0.99 does not count)
    assert mapping.approve_above(0.5) == 1 and mapping.row(ids[2]).status == "approved"  # at least
    assert mapping.row(ids[2]).reviewer == ""
    mapping.decide(ids[1], status="unchecked")  # back to unchecked, with a decision row
    assert mapping.counts() == {"unchecked": 2, "approved": 2, "flagged": 0, "ignored": 0, "suggested": 4}
    assert mapping.approve_above(0.8) == 1 and mapping.row(ids[1]).status == "approved"
    assert mapping.undo().status == "unchecked"

    created = mapping.db.execute("SELECT created_at FROM decisions WHERE row_id = ?", (ids[0],)).fetchone()
    time.sleep(0.01)
    mapping.decide(ids[0], status="flagged", comment="check the laterality")
    time.sleep(0.01)
    mapping.decide(ids[0], comment="check the laterality (left)")
    assert (
        mapping.db.execute("SELECT created_at FROM decisions WHERE row_id = ?", (ids[0],)).fetchone()
        == created
    )
    assert mapping.undo().comment == "check the laterality"
    restored = mapping.undo()  # the approval comes back as it was
    assert (restored.id, restored.status, restored.reviewer, restored.comment) == (
        ids[0],
        "approved",
        "auto",
        "",
    )

    for change, message in [
        ({"status": "done"}, "status 'done': choose one of unchecked, approved, flagged, ignored"),
        ({"equivalence": "SAME"}, "equivalence 'SAME': choose one of EQUAL, EQUIVALENT, WIDER, NARROWER, "),
        ({"status": "approved"}, f"row {ids[3]}: nothing to approve (no target and no suggestion)"),
    ]:
        with pytest.raises(ValueError) as raised:
            mapping.decide(ids[3], **change)
        assert str(raised.value).startswith(message)


def test_exports_csv_stcm_usagi_and_previous_mapping(project, tmp_path, small_kcd):
    from core.mapping import export_csv, export_stcm, export_usagi

    mapping, searcher = project
    rows = mapping.rows()
    mapping.decide(rows[0].id, status="approved", targets=["K74.6"], reviewer="kim")
    mapping.decide(rows[1].id, status="approved", targets=["K74.6", "K70.3"], equivalence="WIDER")
    mapping.decide(rows[2].id, status="ignored")
    names = lambda c: (c + " ko", c + " en")  # noqa: E731

    assert export_csv(mapping, tmp_path / "out.csv", names=names) == 4
    with open(tmp_path / "out.csv", encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["code", "term", "count"] + [
        "mapped_code",
        "mapped_name_ko",
        "mapped_name_en",
        "status",
        "equivalence",
        "comment",
        "reviewer",
        "suggested_code",
        "suggested_score",
        "suggested_confidence",
    ]
    assert table[1][:3] == ["L1", "간경화", "120"]
    column = {name: i for i, name in enumerate(table[0])}
    assert table[2][column["mapped_code"]] == "K74.6 | K70.3" and table[3][column["status"]] == "ignored"

    assert (
        export_stcm(
            mapping, tmp_path / "stcm.csv", concept_id=lambda c: "0", target_vocabulary=lambda c: "KCD8"
        )
        == 3
    )
    with open(tmp_path / "stcm.csv", encoding="utf-8", newline="") as handle:
        stcm = list(csv.reader(handle))
    assert tuple(stcm[0]) == STCM_COLUMNS
    assert [r[0] for r in stcm[1:]] == ["L1", "L2", "L2"] and stcm[1][2] == "LOCAL" and stcm[1][3] == "간경화"
    assert all(r[6] == "1970-01-01" and r[7] == "2099-12-31" and r[8] == "" for r in stcm[1:])
    with pytest.raises(InputError, match="20 characters"):
        export_stcm(
            mapping, tmp_path / "x.csv", concept_id=str, target_vocabulary=str, source_vocabulary="X" * 21
        )

    export_usagi(
        mapping,
        tmp_path / "usagi.csv",
        concept_id=lambda c: "0",
        concept_name=lambda c: f"{c} name",
        domain=lambda c: "Condition",
    )
    with open(tmp_path / "usagi.csv", encoding="utf-8", newline="") as handle:
        usagi = list(csv.reader(handle))
    assert tuple(usagi[0]) == USAGI_COLUMNS
    statuses = [r[USAGI_COLUMNS.index("mappingStatus")] for r in usagi[1:]]
    assert statuses == ["APPROVED", "APPROVED", "APPROVED", "IGNORED", "UNCHECKED"]

    # a new list of the same source codes takes the previous decisions over
    fresh = MappingProject.create(tmp_path / "fresh.map", read_source(mapping.meta("source")))
    assert fresh.apply_previous(tmp_path / "usagi.csv") == 3
    assert fresh.row(2).targets == ("K74.6", "K70.3") and fresh.row(2).equivalence == "WIDER"
    assert fresh.row(3).status == "ignored" and fresh.row(4).status == "unchecked"
    again = MappingProject.create(tmp_path / "again.map", read_source(mapping.meta("source")))
    assert again.apply_previous(mapping.path) == 3 and again.row(1).reviewer == "kim"
    for p in (fresh, again):
        p.close()


def test_previous_decisions_match_terms_of_a_list_without_codes(tmp_path):
    """A Usagi export (here tab-separated) of a list without source codes: rows match on the
    term (case-insensitive); several rows of one term are its targets; conceptId 0 takes the
    code that starts conceptName, another conceptId the code `concept_codes` gives it (none:
    no target); the comment, reviewer and a known equivalence come along (an unknown one is
    UNREVIEWED); unchecked rows carry nothing over. Counts like 1,234 are read as numbers."""
    listing = tmp_path / "list.csv"
    listing.write_text(
        'term,count\n간경화,"1,234"\nLiver Cirrhosis,\n당뇨병,n/a\n고혈압,4.0\n천식,3\n', encoding="utf-8"
    )
    project = MappingProject.create(tmp_path / "p.map", read_source(listing))
    assert [project.row(i).frequency for i in range(1, 6)] == [1234, 0, 0, 4, 3]
    usagi = tmp_path / "usagi.tsv"
    columns = "sourceCode sourceName mappingStatus equivalence statusSetBy conceptId conceptName comment"
    rows = [
        ["", "간경화", "APPROVED", "EQUAL", "kim", "0", "K74.6 간경화", "checked twice"],
        ["", "간경화", "APPROVED", "EQUAL", "kim", "0", "K70.3 알코올성 간경화", ""],
        ["", "당뇨병", "UNCHECKED", "", "", "0", "E11 당뇨병", ""],
        ["", "liver cirrhosis", "FLAGGED", "SIMILAR", "lee", "123", "whatever", ""],
        ["", "고혈압", "IGNORED", "", "", "0", "", ""],
        ["", "천식", "FLAGGED", "WIDER", "park", "77", "J45 천식", ""],
    ]
    usagi.write_text("\n".join("\t".join(r) for r in [columns.split(), *rows]) + "\n", encoding="utf-8")
    assert project.apply_previous(usagi, concept_codes={"123": "K74.60"}) == 4
    decided = {r.term: (r.status, r.targets, r.equivalence, r.comment, r.reviewer) for r in project.rows()}
    assert decided == {
        "간경화": ("approved", ("K74.6", "K70.3"), "EQUAL", "checked twice", "kim"),
        "Liver Cirrhosis": ("flagged", ("K74.60",), "UNREVIEWED", "", "lee"),
        "당뇨병": ("unchecked", (), "UNREVIEWED", "", ""),
        "고혈압": ("ignored", (), "UNREVIEWED", "", ""),
        "천식": ("flagged", (), "WIDER", "", "park"),
    }
    # from a project file of the same list: by term too
    again = MappingProject.create(tmp_path / "again.map", read_source(listing))
    assert again.apply_previous(project.path) == 4
    assert again.row(1).comment == "checked twice" and again.row(2).reviewer == "lee"

    # Usagi's optional columns left out; a repeated target counted once; conceptId empty
    minimal = tmp_path / "minimal.csv"
    minimal.write_text(
        "sourceCode,sourceName,mappingStatus,conceptId,conceptName\n"
        ",당뇨병,FLAGGED,,E11 당뇨병\n,당뇨병,FLAGGED,,E11 당뇨병\n,고혈압,FLAGGED,0,\n",
        encoding="utf-8",
    )
    assert again.apply_previous(minimal) == 1  # (고혈압 was decided already)
    assert again.row(3).targets == ("E11",) and (again.row(3).comment, again.row(3).reviewer) == ("", "")
    # from a project file with source codes: by the code, though the term was reworded
    coded = tmp_path / "coded.csv"
    coded.write_text("code,term\nL1,간경화\nL2,당뇨\n", encoding="utf-8")
    before = MappingProject.create(tmp_path / "before.map", read_source(coded))
    before.decide(1, status="ignored", comment="duplicate")
    coded.write_text("code,term\nL1,간경변\nL2,당뇨\n", encoding="utf-8")
    after = MappingProject.create(tmp_path / "after.map", read_source(coded))
    assert after.apply_previous(before.path) == 1 and after.row(1).comment == "duplicate"
    reworded = tmp_path / "reworded.csv"  # a Usagi row with a source code matches by the code
    reworded.write_text(
        "sourceCode,sourceName,mappingStatus,conceptId,conceptName\nL2,당뇨병 (옛 이름),IGNORED,0,\n",
        encoding="utf-8",
    )
    later = MappingProject.create(tmp_path / "later.map", read_source(coded))
    assert later.apply_previous(reworded) == 1 and later.row(2).status == "ignored"
    bare = tmp_path / "bare.csv"  # no conceptName column: conceptId 0 names no target
    bare.write_text("sourceCode,sourceName,mappingStatus,conceptId\n,당뇨,FLAGGED,0\n", encoding="utf-8")
    assert after.apply_previous(bare) == 1 and (after.row(2).status, after.row(2).targets) == ("flagged", ())

    not_usagi = tmp_path / "other.csv"
    not_usagi.write_text("sourceName,conceptId,comment\n간경화,0,x\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=r"other\.csv: not a Usagi export \(missing sourceCode, mappingStatus\)"
    ):
        again.apply_previous(not_usagi)
    for p in (project, again, before, after, later):
        p.close()


def test_stcm_export_limits_pages_and_encodings(tmp_path):
    """SOURCE_TO_CONCEPT_MAP: approved rows only (an unapproved row first), one line per target,
    the CDM's field lengths (50 / 255 / 1–20), written without a BOM and with LF line ends
    (the CSV export has a BOM for Korean Excel); rows are read page by page."""
    from core.mapping import _iter_all, export_csv, export_stcm

    listing = tmp_path / "list.csv"
    long_term = "간경화 " + "가" * 300
    listing.write_text(f"term\n당뇨\n{long_term}\n천식\n", encoding="utf-8")
    project = MappingProject.create(tmp_path / "p.map", read_source(listing, header=True))
    project.decide(2, status="approved", targets=["K74.6", "K70.3"])
    project.decide(3, status="approved", targets=["J45"])
    assert [r.id for r in _iter_all(project, page=2)] == [1, 2, 3]
    out = tmp_path / "stcm.csv"
    assert (
        export_stcm(project, out, concept_id=lambda c: f"id-{c}", target_vocabulary=lambda c: f"v-{c}") == 3
    )
    data = out.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data
    lines = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert [r[0] for r in lines[1:]] == [long_term[:50], long_term[:50], "천식"]
    assert lines[1][1:6] == ["0", "LOCAL", long_term[:255], "id-K74.6", "v-K74.6"] and lines[3][4:6] == [
        "id-J45",
        "v-J45",
    ]
    for vocabulary, ok in [("L", True), ("X" * 20, True), ("", False), ("X" * 21, False)]:
        if ok:
            assert (
                export_stcm(project, out, concept_id=str, target_vocabulary=str, source_vocabulary=vocabulary)
                == 3
            )
        else:
            with pytest.raises(InputError, match="1 to 20 characters"):
                export_stcm(project, out, concept_id=str, target_vocabulary=str, source_vocabulary=vocabulary)
    assert export_csv(project, tmp_path / "out.csv", names=lambda c: ("", "")) == 3
    assert (tmp_path / "out.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    project.close()


def _cli(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_map_cli_survives_sigkill_during_suggestions_and_exports(tmp_path, small_kcd, tiny_bundle, cache):
    terms = tmp_path / "terms.txt"
    terms.write_text("".join(f"간경화 {i}\n" for i in range(3000)), encoding="utf-8")
    project = tmp_path / "terms.map"
    args = [
        "map",
        str(terms),
        "--out",
        str(project),
        "--dictionary",
        str(small_kcd),
        "--model",
        str(tiny_bundle),
    ]
    process = _cli(args)
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
        if project.exists():
            with sqlite3.connect(project) as db:
                done = db.execute("SELECT COUNT(*) FROM rows WHERE suggested = 1").fetchone()[0]
            if done >= 256:
                break
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGKILL)
    process.wait()
    with sqlite3.connect(project) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 3000
        partial = db.execute("SELECT COUNT(*) FROM rows WHERE suggested = 1").fetchone()[0]
        assert 256 <= partial < 3000
        assert db.execute("SELECT COUNT(DISTINCT row_id) FROM suggestions").fetchone()[0] == partial
    finished = _cli(args)
    out, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["suggested"] == 3000
    export = _cli(["map", "export", str(project), "--format", "stcm", "--out", str(tmp_path / "stcm.csv")])
    assert export.wait(timeout=60) == 0
    assert (tmp_path / "stcm.csv").read_text().splitlines() == [
        ",".join(STCM_COLUMNS)
    ]  # nothing approved yet
    broken = _cli(["map", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x.map")])
    assert broken.wait(timeout=60) == 2 and "no such file" in broken.stderr.read()


REVIEWER = """
import sys
from core.mapping import MappingProject
project = MappingProject(sys.argv[1])
for row in project.rows():
    project.decide(row.id, status="flagged" if row.id % 2 else "ignored", comment=f"row {row.id}")
    print(row.id, flush=True)
"""


def test_no_decision_lost_when_the_reviewer_is_killed(tmp_path):
    terms = tmp_path / "terms.txt"
    terms.write_text("".join(f"term {i}\n" for i in range(5000)), encoding="utf-8")
    MappingProject.create(tmp_path / "p.map", read_source(terms)).close()
    process = subprocess.Popen(
        [sys.executable, "-c", REVIEWER, str(tmp_path / "p.map")], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    reported = []
    while len(reported) < 200:
        line = process.stdout.readline()
        assert line, "the reviewer stopped early"
        reported.append(int(line))
    process.send_signal(signal.SIGKILL)
    process.wait()
    mapping = MappingProject(tmp_path / "p.map")
    for row_id in reported:  # every decision reported done is in the file
        row = mapping.row(row_id)
        assert row.status in ("flagged", "ignored") and row.comment == f"row {row_id}"
    mapping.close()


ATHENA_CONCEPT = [
    "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason",
    '45768\tCirrhosis of liver, "other"\tCondition\tKCD7\tKCD7 code\t\tK74.6\t20160101\t20991231\t',
    "45769\tAcute appendicitis\tCondition\tKCD7\tKCD7 code\t\tK35\t20160101\t20991231\t",
    "45770\tOld code\tCondition\tKCD7\tKCD7 code\t\tK99\t20160101\t20171231\tD",
    "4064161\tCirrhosis of liver\tCondition\tSNOMED\tClinical Finding\tS\t19943007\t20020131\t20991231\t",
]
ATHENA_SYNONYM = [
    "concept_id\tconcept_synonym_name\tlanguage_concept_id",
    "45768\t간경화\t4175771",
    "45768\tLiver cirrhosis NOS\t4180186",
    "45769\t급성 충수염\t4175771",
]


def write_athena(folder: Path) -> Path:
    folder.mkdir()
    (folder / "CONCEPT.csv").write_text("\n".join(ATHENA_CONCEPT) + "\n", encoding="utf-8")
    (folder / "CONCEPT_SYNONYM.csv").write_text("\n".join(ATHENA_SYNONYM) + "\n", encoding="utf-8")
    return folder


def test_a_hit_carries_its_concepts_ids(tmp_path, tiny_bundle, cache):
    """OMOP ids (concept_id, vocabulary_id …) travel with every hit and its JSON, whatever
    matched (mutation testing: `info` dropped from a hit)."""
    from core.bundle import Embedder
    from core.search import Searcher

    searcher = Searcher(
        load_dictionary(write_athena(tmp_path / "athena"), vocabularies=["KCD7"]),
        Embedder(tiny_bundle),
        cache=cache,
    )
    for query in ("K74.6", "간경화", "cirrhosis of the liver"):
        hit = next(h for h in searcher.search(query, 3) if h.code == "K74.6")
        assert hit.info["concept_id"] == "45768" and hit.to_dict()["info"]["vocabulary_id"] == "KCD7"


def test_athena_vocabulary_loads_with_ids_languages_and_filters(tmp_path):
    folder = write_athena(tmp_path / "athena")
    both = load_dictionary(folder)
    assert set(both.concepts) == {"KCD7:K74.6", "KCD7:K35", "SNOMED:19943007"}  # K99 is invalid
    kcd = load_dictionary(folder, vocabularies=["KCD7"])
    assert set(kcd.concepts) == {"K74.6", "K35"}
    cirrhosis = kcd.concepts["K74.6"]
    assert cirrhosis.info["concept_id"] == "45768" and cirrhosis.info["vocabulary_id"] == "KCD7"
    assert cirrhosis.name("en") == 'Cirrhosis of liver, "other"'  # quotes are literal characters
    assert cirrhosis.name("ko") == "간경화"
    assert [t.lang for t in cirrhosis.terms] == ["en", "ko", "en"]
    standard = load_dictionary(folder / "CONCEPT.csv", standard_only=True)
    assert set(standard.concepts) == {"19943007"}
    assert "K99" in load_dictionary(folder, vocabularies=["KCD7"], include_invalid=True).concepts
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "CONCEPT.csv").write_text("id\tname\n1\tx\n", encoding="utf-8")
    with pytest.raises(Exception, match="missing column"):
        load_dictionary(tmp_path / "bad")


def test_athena_search_shows_concept_ids_and_stcm_uses_them(tmp_path, tiny_bundle, cache):
    folder = write_athena(tmp_path / "athena")
    out = subprocess.run(
        [sys.executable, "-m", "core", "search", "--dictionary", str(folder), "--vocabulary", "KCD7"]
        + ["--model", str(tiny_bundle), "--json", "-k", "1", "K74.6"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr
    hit = json.loads(out.stdout)["results"][0]
    assert hit["code"] == "K74.6" and hit["info"]["concept_id"] == "45768"
    terms = tmp_path / "terms.csv"
    terms.write_text("local_code,name\nA1,간경화\n", encoding="utf-8")
    project = tmp_path / "p.map"
    run = _cli(
        ["map", str(terms), "--out", str(project), "--dictionary", str(folder), "--vocabulary", "KCD7"]
        + ["--model", str(tiny_bundle), "--header"]
    )
    assert run.wait(timeout=120) == 0, run.stderr.read()
    mapping = MappingProject(project)
    mapping.decide(1, status="approved", targets=["K74.6"])
    mapping.close()
    export = _cli(["map", "export", str(project), "--format", "stcm", "--out", str(tmp_path / "stcm.csv")])
    assert export.wait(timeout=60) == 0, export.stderr.read()
    rows = list(csv.reader((tmp_path / "stcm.csv").open(encoding="utf-8")))
    assert rows[1][:6] == ["A1", "0", "LOCAL", "간경화", "45768", "KCD7"]


def test_export_project_takes_names_ids_and_vocabularies_from_the_dictionary(tmp_path):
    from core.dictionary import Concept, Dictionary, Term
    from core.mapping import export_project

    source = tmp_path / "list.csv"
    source.write_text("code,term\nL1,심장암\nL2,간경화\nL3,모름\n", encoding="utf-8")
    mapping = MappingProject.create(tmp_path / "p.map", read_source(source))
    rows = mapping.rows()
    mapping.decide(rows[0].id, status="approved", targets=["C38.0"])
    mapping.decide(rows[1].id, status="approved", targets=["K74.6", "Z99.99"])  # Z99.99: in no dictionary
    heart = [Term("심장", "ko", True), Term("heart", "en", True)]
    heart += [Term("심장의 악성 신생물 - 심장", "ko", source="context")]
    heart += [Term("Malignant neoplasm of heart - heart", "en", source="context")]
    cirrhosis = [Term("간경화", "ko", True), Term("Liver cirrhosis", "en", True)]
    omop = {"concept_id": "45768", "vocabulary_id": "KCD7", "domain_id": "Observation"}

    def dictionary(name):
        concepts = {"C38.0": Concept("C38.0", "KCD-8", terms=heart)}
        concepts["K74.6"] = Concept("K74.6", "KCD-8", terms=cirrhosis, info=omop)
        return Dictionary(name, concepts)

    def read(path):
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))

    assert export_project(mapping, tmp_path / "stcm.csv", "stcm", dictionary("kcd8.tsv")) == 3
    stcm = [
        (r["source_code"], r["target_concept_id"], r["target_vocabulary_id"])
        for r in read(tmp_path / "stcm.csv")
    ]
    assert stcm == [("L1", "0", "KCD8"), ("L2", "45768", "KCD7"), ("L2", "0", "KCD8")]
    local = dictionary("hospital_local_terms_2026.csv")
    export_project(mapping, tmp_path / "local.csv", "stcm", local, source_vocabulary="HOSP")
    local_rows = read(tmp_path / "local.csv")
    assert [r["target_vocabulary_id"] for r in local_rows] == [
        "hospital_local_terms",
        "KCD7",
        "hospital_local_terms",
    ]
    assert {r["source_vocabulary_id"] for r in local_rows} == {"HOSP"}

    export_project(mapping, tmp_path / "usagi.csv", "usagi", local)
    usagi = [
        (r["sourceCode"], r["conceptId"], r["conceptName"], r["domainId"])
        for r in read(tmp_path / "usagi.csv")
    ]
    assert usagi[:3] == [
        ("L1", "0", "C38.0 Malignant neoplasm of heart - heart", "Condition"),  # the contextual name
        ("L2", "45768", "K74.6 Liver cirrhosis", "Observation"),
        ("L2", "0", "Z99.99", "Condition"),
    ]
    assert export_project(mapping, tmp_path / "out.csv", "csv", local) == 3
    table = read(tmp_path / "out.csv")
    assert [(r["mapped_code"], r["mapped_name_ko"], r["mapped_name_en"]) for r in table] == [
        ("C38.0", "심장의 악성 신생물 - 심장", "Malignant neoplasm of heart - heart"),
        ("K74.6 | Z99.99", "간경화 | ", "Liver cirrhosis | "),
        ("", "", ""),
    ]
    with pytest.raises(ValueError, match="export 'xml': choose one of csv, stcm, usagi"):
        export_project(mapping, tmp_path / "out.xml", "xml", local)
    mapping.close()


def test_suggestions_go_in_batches_stop_when_asked_and_resume_in_rank_order(
    tmp_path, small_kcd, tiny_bundle, cache
):
    from core.bundle import Embedder
    from core.search import Searcher

    searcher = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache)
    terms = ["알콜성 간경변증", "cirrhosis of liver", "hepatic fibrosis", "liver disease", "alcoholic liver"]
    listing = tmp_path / "list.csv"
    listing.write_text("term\n" + "\n".join(terms) + "\n", encoding="utf-8")
    project = MappingProject.create(tmp_path / "p.map", read_source(listing, header=True))
    calls, seen = [], []

    def search_many(batch, k):  # the real search, its calls recorded
        calls.append((list(batch), k))
        return searcher.search_many(batch, k)

    def stop(done, total):
        seen.append((done, total))
        return False

    assert project.suggest(search_many, k=3, batch=2, progress=stop, fingerprint="model-a") == 2
    assert seen == [(2, 5)] and project.meta("suggested_with") == "model-a"
    # the next run takes the rows not yet suggested, two at a time
    assert project.suggest(search_many, k=3, batch=2, progress=lambda *a: seen.append(a)) == 3
    assert seen[1:] == [(2, 3), (3, 3)]
    assert calls == [(terms[:2], 3), (terms[2:4], 3), (terms[4:], 3)]
    for row, term in zip(project.rows(), terms):  # the first k hits, ranked from 1
        ranked = [(rank, hit.code) for rank, hit in enumerate(searcher.search(term, 3), start=1)]
        assert [(s.rank, s.code) for s in row.suggestions] == ranked and row.top.rank == 1
    assert project.suggest(search_many, k=3) == 0  # every row has its suggestions
    assert project.meta("suggested_with") == "model-a"  # runs without a fingerprint leave it
    project.close()


def test_rows_doubtful_first_filtered_and_paged_and_bad_arguments_named(project):
    mapping, _ = project
    every = mapping.rows()
    by_score = sorted(every, key=lambda r: (r.top.score if r.top else 0.0, r.id))
    assert [r.id for r in mapping.rows(order="score")] == [r.id for r in by_score]
    assert [r.id for r in mapping.rows(order="score", limit=2)] == [r.id for r in by_score[:2]]
    assert [r.id for r in mapping.rows(limit=2)] == [1, 2]
    assert [r.id for r in mapping.rows(status="unchecked", limit=1, offset=1)] == [2]
    with pytest.raises(ValueError, match=r"^order 'best': choose one of id, frequency, score$"):
        mapping.rows(order="best")
    with pytest.raises(
        ValueError, match=r"^status 'done': choose one of unchecked, approved, flagged, ignored$"
    ):
        mapping.rows(status="done")
    with pytest.raises(KeyError, match="^99$"):
        mapping.row(99)
    before = time.time()
    mapping.decide(2, status="flagged")
    assert mapping.row(1).updated_at is None and before <= mapping.row(2).updated_at <= time.time()


def test_an_import_goes_in_batches_records_its_source_and_never_overwrites(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text(
        "code,term,count\nL1, 천식 ,3\nL2,어지럼,\nL3,두통,12\nL4,요통,1\nL5,발열,2\n", encoding="utf-8"
    )
    source = read_source(listing)
    target = tmp_path / "p.map"
    leftover = tmp_path / ".p.map.importing"  # what a killed import leaves behind
    leftover.write_text("not a database")
    counts, before = [], time.time()
    project = MappingProject.create(target, source, progress=counts.append, batch=2)
    assert counts == [2, 4, 5] and not leftover.exists()
    assert [(r.source_code, r.term, r.frequency) for r in project.rows()] == [
        ("L1", "천식", 3),
        ("L2", "어지럼", 0),
        ("L3", "두통", 12),
        ("L4", "요통", 1),
        ("L5", "발열", 2),
    ]
    assert project.rows()[0].cells == ("L1", " 천식 ", "3")  # the cells as imported
    recorded = {key: project.meta(key) for key in ("schema", "source", "columns", "header", "encoding")}
    assert recorded == {
        "schema": str(SCHEMA),
        "source": str(listing),
        "columns": '["code", "term", "count"]',
        "header": "true",
        "encoding": source.encoding,
    }
    assert [project.meta(k) for k in ("term_column", "code_column", "frequency_column")] == ["1", "0", "2"]
    assert before <= float(project.meta("created_at")) <= time.time()
    project.close()
    with pytest.raises(InputError, match="p.map: already exists; open it to continue"):
        MappingProject.create(target, source)
    # a list of terms alone: no code or frequency column, every frequency 0
    terms = tmp_path / "terms.csv"
    terms.write_text("term\n천식\n두통\n", encoding="utf-8")
    plain = MappingProject.create(tmp_path / "plain.map", read_source(terms, header=True))
    assert [plain.meta(k) for k in ("term_column", "code_column", "frequency_column")] == ["0", "", ""]
    assert [(r.source_code, r.term, r.frequency) for r in plain.rows()] == [("", "천식", 0), ("", "두통", 0)]
    plain.close()


def test_a_file_that_is_no_project_of_this_version_is_refused_by_name(tmp_path):
    terms = tmp_path / "terms.txt"
    terms.write_text("간경화\n", encoding="utf-8")
    MappingProject.create(tmp_path / "old.map", read_source(terms)).close()
    with sqlite3.connect(tmp_path / "old.map") as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    (tmp_path / "notes.map").write_text("not a database\n" * 100)
    with sqlite3.connect(tmp_path / "other.map") as db:
        db.execute("CREATE TABLE t (x)")
    refusals = {
        "none.map": "none.map: no such mapping project",
        "notes.map": "notes.map: not a mapping project (not an SQLite file)",  # was sqlite3's own error
        "old.map": "old.map: not a mapping project of this version (schema '0')",
        "other.map": "other.map: not a mapping project of this version (no schema)",  # was "not an SQLite file"
    }
    for name, message in refusals.items():
        with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            MappingProject(tmp_path / name)
