import logging

import pytest

from core.dictionary import detect_format, load_dictionary, load_kostom, read_synonyms
from core.errors import DictionaryError

KOSTOM_HEADER = "KOSTOM코드\t식별자\t영문명\t한글명\tUMLS_CUI\tLOINC\n"


def write_kostom(path, rows):
    path.write_bytes((KOSTOM_HEADER + "".join("\t".join(r) + "\n" for r in rows)).encode("cp949"))
    return path


def write_kcd(path, rows):
    path.write_text("kcd\tko\ten\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_kcd_loads_bilingual_concepts_with_parents(small_kcd):
    d = load_dictionary(small_kcd)
    concept = d.concepts["K74.6"]
    assert concept.name("ko") == "간의 기타 및 상세불명의 경변증"
    assert concept.name("en") == "Other and unspecified cirrhosis of liver"
    assert d.parents("K74.60") == ["K74", "K74.6", "K74.60"]
    assert d.concepts["K74"].parent is None


def test_a_kcd_subcode_whose_parent_level_is_missing_hangs_under_the_nearest_ancestor(tmp_path):
    path = tmp_path / "kcd.tsv"
    rows = [
        ("Q01", "가상 범주", "Made-up category"),
        ("Q01.2", "가상 하위", "Made-up subcode"),
        ("Q01.234", "두 단계 아래", "Two levels down, the level between missing"),
        ("Q019", "점 없는 코드", "A code written without its dot"),
        ("Q02.11", "범주만 있는", "Under a category whose subcode is missing"),
        ("Q02", "나중에 온 범주", "A category after its subcode"),
        ("Q03", "", "A category without a Korean name"),  # skipped name: its subcodes still load
        ("Q03.1", "하위", "Its subcode"),
    ]
    write_kcd(path, rows)
    d = load_dictionary(path, "kcd")
    assert d.concepts["Q01.234"].parent == "Q01.2"
    assert d.concepts["Q01.2"].parent == "Q01"
    assert d.concepts["Q019"].parent == "Q01"
    assert d.concepts["Q02.11"].parent is None  # parents come before their subcodes in the file
    assert d.parents("Q01.234") == ["Q01", "Q01.2", "Q01.234"]
    assert d.concepts["Q03.1"].parent == "Q03" and d.concepts["Q03"].name("ko") == ""


def test_a_crlf_file_keeps_its_line_numbers_and_its_last_column_whole(tmp_path):
    """Windows line endings: the carriage return is no part of the last field (a name ending in X keeps it),
    and an error names the line a user sees in an editor (not one of doubled lines)."""
    path = tmp_path / "kcd.tsv"
    rows = ["kcd\tko\ten", "Q01\t가상 증후군\tMade-up syndrome X", "Q01.0\t가상 하위\tMade-up subcode"]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    d = load_dictionary(path, "kcd")
    assert d.concepts["Q01"].name("en") == "Made-up syndrome X"
    assert d.concepts["Q01.0"].name("en") == "Made-up subcode"
    path.write_bytes(("\r\n".join([*rows, "Q02\tno English"]) + "\r\n").encode("utf-8"))
    with pytest.raises(DictionaryError) as error:
        load_dictionary(path, "kcd")
    assert error.value.line == 4 and "expected 3 columns" in str(error.value)


def test_a_kcd_file_that_cannot_be_read_names_its_file_and_line(tmp_path):
    """What a user sees for a KCD table that is not one: the file, the line and the reason."""
    from core.dictionary import load_kcd

    path = tmp_path / "kcd.tsv"
    cases = [
        (
            b"code\tko\ten\nQ01\t\xea\xb0\x80\tA\n",
            1,
            "expected the header 'kcd<TAB>ko<TAB>en', found ['code'",
        ),
        (b"", 1, "expected the header"),  # an empty file
        (b"kcd\tko\ten\nQ01\t\xff\tA\n", 2, "not valid utf-8-sig"),
        (b"kcd\tko\ten\n\nQ01\tx\n", 3, "expected 3 columns (kcd, ko, en), found 2"),
    ]
    for content, line, message in cases:
        path.write_bytes(content)
        with pytest.raises(DictionaryError) as error:
            load_kcd(path)
        assert (error.value.path, error.value.line) == (str(path), line)
        assert str(error.value).startswith(f"{path}:{line}: ") and message in str(error.value)
    # a fourth column (a note) is no error; a placeholder name and a blank line are skipped,
    # the rows after them still load, and the warning says where; a name quoted after a space
    # keeps no quotes; a name repeated (either column, any case) is skipped and counted
    path.write_bytes(
        "kcd\tko\ten\tnote\nQ01\t가상 증후군\tn/a\tx\n\nQ02\tABC\tSecond\n"
        'Q04\t "Third"\tthird\nQ04\tTHIRD\tThird\n'.encode()
    )
    d = load_kcd(path)
    assert [t.text for t in d.concepts["Q04"].terms] == ["Third"]
    assert d.concepts["Q01"].name("ko") == "가상 증후군" and d.concepts["Q01"].name("en") == ""
    # each column's language is the column's, whatever its script; both names are preferred
    q02 = d.concepts["Q02"]
    assert q02.system == "KCD-8"
    assert [(t.text, t.lang, t.preferred) for t in q02.terms] == [("ABC", "ko", True), ("Second", "en", True)]
    assert d.warnings == [
        f"{path}: skipped 2 empty or placeholder terms",
        f"{path}: skipped 3 duplicated terms",
    ]


def test_kcd_fragment_subcodes_get_contextual_names(small_kcd):
    d = load_dictionary(small_kcd)
    liver = d.concepts["D13.4"]
    context = [t for t in liver.terms if t.source == "context"]
    assert {t.lang for t in context} == {"ko", "en"}
    assert any("Benign neoplasm" in t.text and t.text.endswith("Liver") for t in context)
    # a subcode whose name stands on its own gets none
    assert not [t for t in d.concepts["K74.6"].terms if t.source == "context"]


def test_kcd_context_names_where_a_subcode_only_names_a_site(tmp_path):
    path = tmp_path / "kcd.tsv"
    rows = [
        ("C38", "심장, 종격 및 흉막의 악성 신생물", "Malignant neoplasm of heart, mediastinum and pleura"),
        ("C38.0", "심장", "heart"),  # only a word of the parent's list: a fragment
        ("C38.2", "후종격", "Posterior mediastinum"),  # adds a word of its own
        (
            "D13",
            "기타 및 부위불명의 소화계통의 양성 신생물",
            "Benign neoplasm of other parts of digestive system",
        ),
        ("D13.4", "간", "Liver"),  # no word in common: a fragment
        ("K74", "간의 섬유증 및 경변증", "Fibrosis and cirrhosis of liver"),
        ("K74.0", "간섬유증", "Hepatic fibrosis"),  # shares the head "fibrosis"
        (
            "K74.6",
            "간의 기타 및 상세불명의 경변증",
            "Other and unspecified cirrhosis of liver",
        ),  # Korean head
        ("K74.60", "간", "liver"),  # only the site the parent names after its head: a fragment
        ("D01", "기타 소화기관의 제자리암종", "Carcinoma in situ of other digestive organs"),
        ("D01.5", "간 및 담낭", "Liver and gallbladder"),  # a fragment: a list without a head
        ("D01.50", "간", "Liver"),  # part of a fragment's list: a fragment too
        ("D01.58", "간 및 담낭의 기타", "Liver and gallbladder, other"),  # the whole list: its own name
        ("D01.59", "상세불명의 간담도계", "Hepatobiliary system, unspecified"),  # nothing in common
        ("C44", "가상 피부 악성 신생물", "Malignant neoplasm of skin of trunk and limbs"),
        ("C44.5", "피부", "Skin"),  # the head ends at the first "of": a site after it, a fragment
        ("C45", "가상 심장 악성 신생물", "Malignant neoplasm of heart and pleura"),
        ("C45.0", "심장 종양", "Neoplasm, heart"),  # the head is all before "of": not a fragment
        ("C46", "기타 부분의 간 및 담낭", "Other parts of liver and gallbladder"),
        ("C46.1", "간과 쓸개", "Liver and gallbladder"),  # all the parent lists after its head: a fragment
    ]
    write_kcd(path, rows)
    d = load_dictionary(path)
    context = {c: [t.text for t in d.concepts[c].terms if t.source == "context"] for c in d.concepts}
    assert context["C38.0"] == [
        "심장, 종격 및 흉막의 악성 신생물 - 심장",
        "Malignant neoplasm of heart, mediastinum and pleura - heart",
    ]
    assert context["D13.4"] == [
        "기타 및 부위불명의 소화계통의 양성 신생물 - 간",
        "Benign neoplasm of other parts of digestive system - Liver",
    ]
    assert context["K74.60"] == [
        "간의 기타 및 상세불명의 경변증 - 간",
        "Other and unspecified cirrhosis of liver - liver",
    ]
    assert not context["C38.2"] and not context["K74.0"] and not context["K74.6"] and not context["C38"]
    # under a fragment, the context is the parent's contextual name, which holds its head
    assert context["D01.50"] == [
        "기타 소화기관의 제자리암종 - 간 및 담낭 - 간",
        "Carcinoma in situ of other digestive organs - Liver and gallbladder - Liver",
    ]
    assert context["D01.59"][1] == (
        "Carcinoma in situ of other digestive organs - Liver and gallbladder - Hepatobiliary system, unspecified"
    )
    assert not context["D01.58"]
    assert context["C44.5"][1] == "Malignant neoplasm of skin of trunk and limbs - Skin"
    assert not context["C45.0"]
    assert context["C46.1"][1] == "Other parts of liver and gallbladder - Liver and gallbladder"
    assert (
        d.concepts["C38.0"].display_name("en")
        == "Malignant neoplasm of heart, mediastinum and pleura - heart"
    )
    assert d.concepts["C38.2"].display_name("en") == "Posterior mediastinum"


def test_kostom_cp949_groups_by_cui_and_falls_back_to_kostom_code(tmp_path):
    path = write_kostom(
        tmp_path / "kostom.txt",
        [
            ["H1", "H1", "Liver Cirrhosis", "간경화", "C0023890", ""],
            ["H2", "H2", '"Cirrhosis of liver"', "간경변증", "C0023890", ""],
            ["H3", "H3", "spleen and stomach dampness-heat pattern", "비위습열증", "", ""],
        ],
    )
    assert detect_format(path) == "kostom"
    d = load_dictionary(path)
    assert sorted(d.concepts) == ["C0023890", "H3"]
    assert {t.text for t in d.concepts["C0023890"].terms} == {
        "Liver Cirrhosis",
        "간경화",
        "Cirrhosis of liver",
        "간경변증",
    }
    assert d.concepts["H3"].system == "KOSTOM"
    assert list(load_kostom(path, use_kostom_codes=False).concepts) == ["C0023890"]


def test_utf8_file_read_as_kostom_names_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(
        (
            KOSTOM_HEADER.encode("cp949")
            + "H1\tH1\tx\t간\tC0000001\n".encode("cp949")
            + b"H2\tH2\ty\t\xff\xfe\xff\tC0000002\n"
        )
    )
    with pytest.raises(DictionaryError, match=r"bad.txt:3: not valid cp949"):
        load_kostom(path)


def test_table_csv_and_tsv(tmp_path):
    csv = tmp_path / "terms.csv"
    csv.write_text('code,term,lang\nX1,간경화,ko\nX1,liver cirrhosis,en\nX2,"hypertension, essential",\n')
    d = load_dictionary(csv)
    assert detect_format(csv) == "table"
    assert d.concepts["X2"].terms[0].text == "hypertension, essential"
    assert d.concepts["X2"].terms[0].lang == "en"
    tsv = tmp_path / "terms.tsv"
    tsv.write_text("term\tcode\n고혈압\tX2\n")
    assert load_dictionary(tsv).concepts["X2"].terms[0].lang == "ko"


def test_mrconso(tmp_path):
    path = tmp_path / "MRCONSO.RRF"
    row = "C0023890|{lat}|P|L1|PF|S1|Y|A1||||MSH|PT|D1|{text}|0|N||\n"
    path.write_text(
        row.format(lat="ENG", text="Liver Cirrhosis")
        + row.format(lat="KOR", text="간경화")
        + row.format(lat="FRE", text="Cirrhose")
    )
    d = load_dictionary(path)
    assert [t.text for t in d.concepts["C0023890"].terms] == ["Liver Cirrhosis", "간경화"]
    assert any("other than English and Korean" in w for w in d.warnings)


@pytest.mark.parametrize(
    "content, message",
    [
        ("code,term\nX1\n", r"terms.csv:2: expected 2 columns"),
        ("code,name\nX1,a\n", r"terms.csv:1: missing column\(s\) \['term'\]"),
        ("code,term\n", r"no terms found"),
        ("code,term,lang\nX1,a,fr\n", r"terms.csv:2: lang must be"),
    ],
)
def test_malformed_tables_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "terms.csv"
    path.write_text(content)
    with pytest.raises(DictionaryError, match=message):
        load_dictionary(path)


def test_truncated_kcd_row_is_an_error_not_a_partial_dictionary(tmp_path, small_kcd):
    text = small_kcd.read_text(encoding="utf-8")
    cut = tmp_path / "cut.tsv"
    cut.write_text(text[: text.index("\n", 2000) + 8], encoding="utf-8")  # mid-row
    with pytest.raises(DictionaryError, match=r"cut.tsv:\d+: the last line has no line ending"):
        load_dictionary(cut)
    # cut inside the last field: the row has all its columns, but the name is half there
    whole = text.index("\n", 2000)
    cut.write_text(text[: text.rindex("\t", 0, whole) + 4], encoding="utf-8")
    with pytest.raises(DictionaryError, match=r"looks cut off"):
        load_dictionary(cut)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("cr.csv", b"code,term\rK74.6,liver cirrhosis\r", None),  # Excel for Mac: CR only
        ("long.csv", b"code,term\nK74.6," + b"x" * 200_000 + b"\n", r"long.csv:2: cannot read this line"),
        ("quote.csv", b'code,term\nK74.6,"liver cirrhosis\n', r"quote.csv:2: cannot read .*unexpected end"),
        ("nul.csv", b"code,term\nK74.6,liver\x00 cirrhosis\n", r"nul.csv:2: a NUL byte"),
        ("syn.tsv", b"code\tterm\nK74.6\tliver", r"syn.tsv:2: the last line has no line ending"),
    ],
)
def test_awkward_files_load_whole_or_are_refused_with_file_and_line(tmp_path, name, content, message):
    from core.dictionary import read_synonyms

    path = tmp_path / name
    path.write_bytes(content)
    load = read_synonyms if name.startswith("syn") else load_dictionary
    if message is None:
        assert load_dictionary(path).concepts["K74.6"].terms[0].text == "liver cirrhosis"
    else:
        with pytest.raises(DictionaryError, match=message):
            load(path)


def test_cp949_file_given_as_utf8_table(tmp_path):
    path = tmp_path / "terms.tsv"
    path.write_bytes("code\tterm\nX1\t간경화\n".encode("cp949"))
    with pytest.raises(DictionaryError, match=r"terms.tsv:2: not valid utf-8"):
        load_dictionary(path, "table")


def test_duplicates_and_empty_rows_warn(tmp_path, caplog):
    path = tmp_path / "terms.tsv"
    path.write_text("code\tterm\nX1\tLiver\nX1\tliver\n\nX1\tn/a\n")
    with caplog.at_level(logging.WARNING):
        d = load_dictionary(path)
    assert len(d.concepts["X1"].terms) == 1
    assert d.warnings == [
        f"{path}: skipped 2 empty or placeholder terms",
        f"{path}: skipped 1 duplicated terms",
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "core.dictionary"] == d.warnings  # and logged


def test_unknown_format_and_missing_file(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hello world\n")
    with pytest.raises(DictionaryError, match="unknown dictionary format"):
        load_dictionary(path)
    with pytest.raises(DictionaryError, match="no such file"):
        load_dictionary(tmp_path / "missing.tsv")


def test_synonym_file_and_fingerprint_changes(small_kcd, tmp_path):
    d = load_dictionary(small_kcd)
    before = d.fingerprint()
    path = tmp_path / "syn.tsv"
    path.write_text("code\tterm\n# comment\nK74.6\tLC\nZZZ\tnothing\nK74.6\tlc\nI10\tHTN\n")
    assert d.add_synonyms(read_synonyms(path), source="user") == 2  # "lc" is LC again
    assert d.fingerprint() != before
    assert any("unknown code" in w for w in d.warnings)
