"""Each dictionary loader on small hand-written files: what it keeps, how it names the
concept's preferred names, and each refusal with its file and line."""

import gzip

import pytest

from core.dictionary import (
    Concept,
    Dictionary,
    Term,
    add_bank,
    load_dictionary,
    load_kostom,
    load_mrconso,
    load_table,
    read_bank,
    read_synonyms,
)
from core.errors import DictionaryError
from tests.test_dictionary import write_kostom


def terms(concept):
    return [(t.text, t.lang, t.preferred, t.source) for t in concept.terms]


def mrconso_row(cui="C0023890", lat="ENG", ts="P", stt="PF", ispref="Y", text="Liver Cirrhosis", extra=""):
    return f"{cui}|{lat}|{ts}|L1|{stt}|S1|{ispref}|A1||||MSH|PT|D1|{text}|0|N|{extra}|\n"


def test_mrconso_prefers_only_the_preferred_string_of_the_preferred_term(tmp_path):
    path = tmp_path / "MRCONSO.RRF"
    path.write_text(
        mrconso_row(text="Cirrhosis, liver", ts="S")
        + mrconso_row(text="Hepatic cirrhosis", stt="VO")
        + mrconso_row(text="Cirrhosis of liver", ispref="N")
        + mrconso_row(text="Liver Cirrhosis")
        + "\n"
        + mrconso_row(lat="KOR", text="간경화")
        + mrconso_row(cui="C0020538", text="Hypertension")
        + mrconso_row(lat="JPN", text="肝硬変")
        + mrconso_row(lat="FRE", text="Cirrhose"),
        encoding="utf-8",
    )
    d = load_mrconso(path)
    assert list(d.concepts) == ["C0023890", "C0020538"] and d.name == "MRCONSO.RRF"
    assert terms(d.concepts["C0023890"]) == [
        ("Cirrhosis, liver", "en", False, "dictionary"),
        ("Hepatic cirrhosis", "en", False, "dictionary"),
        ("Cirrhosis of liver", "en", False, "dictionary"),
        ("Liver Cirrhosis", "en", True, "dictionary"),
        ("간경화", "ko", True, "dictionary"),
    ]
    assert d.concepts["C0023890"].system == "UMLS"
    assert d.warnings == [
        f"{path}: skipped 2 strings in languages other than English and Korean",
        f"{path}: skipped 1 empty or placeholder terms",
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        (
            mrconso_row() + mrconso_row(cui="C002389"),
            r"MRCONSO.RRF:2: column 1 should be a UMLS CUI, found 'C002389'",
        ),
        (
            mrconso_row() + "C0023890|ENG|P|L1\n",
            r"MRCONSO.RRF:2: expected 18 columns \(the MRCONSO columns\), found 4",
        ),
        ("\n", r"MRCONSO.RRF: no terms found"),
    ],
)
def test_mrconso_refusals_name_the_line(tmp_path, content, message):
    path = tmp_path / "MRCONSO.RRF"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DictionaryError, match=message):
        load_mrconso(path)


def test_kostom_names_its_languages_preferences_and_rows_without_a_cui(tmp_path):
    path = write_kostom(
        tmp_path / "kostom.txt",
        [
            [" H1 ", "H1", "Liver Cirrhosis", "간경화", " C0023890 ", ""],
            ["H2", "H2", "Cirrhosis of liver", "간경변증", "C0023890", ""],
            [],
            ["H3 ", "H3", "dampness-heat pattern", "습열증", "", ""],
            ["H4", "H4", "n/a", "", "", ""],
        ],
    )
    d = load_kostom(path)
    assert list(d.concepts) == ["C0023890", "H3"] and d.name == "kostom.txt"
    assert terms(d.concepts["C0023890"]) == [
        ("Liver Cirrhosis", "en", True, "dictionary"),
        ("간경화", "ko", True, "dictionary"),
        ("Cirrhosis of liver", "en", False, "dictionary"),
        ("간경변증", "ko", False, "dictionary"),
    ]
    assert (d.concepts["C0023890"].system, d.concepts["H3"].system) == ("UMLS", "KOSTOM")
    assert d.warnings == [
        f"{path}: 2 rows without a UMLS CUI were keyed by their KOSTOM code",
        f"{path}: skipped 3 empty or placeholder terms",
    ]
    without = load_kostom(path, use_kostom_codes=False)
    assert list(without.concepts) == ["C0023890"]
    assert without.warnings == [
        f"{path}: 2 rows without a UMLS CUI were skipped",
        f"{path}: skipped 1 empty or placeholder terms",
    ]


@pytest.mark.parametrize(
    "row, message",
    [
        (
            ["H1", "H1", "x", "간", "U0023890"],
            r"kostom.txt:3: column 5 should be a UMLS CUI, found 'U0023890'",
        ),
        (["H1", "H1", "x", "간", "C00238901"], r"kostom.txt:3: column 5 should be a UMLS CUI"),
        (
            ["H1", "H1", "x", "간"],
            r"kostom.txt:3: expected 5 columns \(KOSTOM code, id, English, Korean, CUI\), found 4",
        ),
    ],
)
def test_kostom_refusals_name_the_line(tmp_path, row, message):
    path = write_kostom(tmp_path / "kostom.txt", [["H0", "H0", "y", "나", "C0000001", ""], row])
    with pytest.raises(DictionaryError, match=message):
        load_kostom(path)


def test_table_columns_by_header_in_any_order_case_and_spacing(tmp_path):
    path = tmp_path / "local.csv"
    path.write_text(
        "\ufeffLang , TERM, note , Code\n"
        "KO,간경화,x, K74.6 \n"
        ",Liver cirrhosis,,K74.6\n"
        "en,hepatic fibrosis,,K74.6\n"
        ",고혈압,,I10\n"
        "\n"
        "en,essential hypertension,,I10\n",
        encoding="utf-8",
    )
    d = load_table(path)
    assert list(d.concepts) == ["K74.6", "I10"] and d.name == "local.csv"
    assert terms(d.concepts["K74.6"]) == [
        ("간경화", "ko", True, "dictionary"),
        ("Liver cirrhosis", "en", False, "dictionary"),
        ("hepatic fibrosis", "en", False, "dictionary"),
    ]
    assert d.concepts["I10"].system == "local" and d.concepts["I10"].terms[1].lang == "en"
    assert d.warnings == [f"{path}: skipped 1 empty or placeholder terms"]


def test_table_lang_column_may_end_early_and_tabs_win_over_commas(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("code\tterm\tlang\nK74.6\tcirrhosis, liver\nI10\t고혈압\tko\n", encoding="utf-8")
    d = load_table(path)
    assert terms(d.concepts["K74.6"]) == [("cirrhosis, liver", "en", True, "dictionary")]
    assert d.concepts["I10"].terms[0].lang == "ko"
    path.write_text("code,term,lang\nK74.6,cirrhosis\tliver,en\n", encoding="utf-8")
    assert load_table(path).concepts["K74.6"].terms[0].text == "cirrhosis\tliver"
    path.write_text("code,term\nK74.6\n", encoding="utf-8")
    with pytest.raises(DictionaryError, match=r"list.txt:2: expected 2 columns \(code, term\), found 1"):
        load_table(path)
    path.write_text("term,x,code\nliver,1\n", encoding="utf-8")  # the code column is the third
    with pytest.raises(DictionaryError, match=r"list.txt:2: expected 3 columns"):
        load_table(path)
    path.write_text("code,term,lang\nK74.6,liver,EN\nK74.6,간,kr\n", encoding="utf-8")
    with pytest.raises(DictionaryError, match=r"list.txt:3: lang must be 'ko' or 'en', found 'kr'"):
        load_table(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(DictionaryError, match=r"list.txt:1: missing column\(s\) \['code', 'term'\]"):
        load_table(path)


def test_bank_files_read_plain_or_gzipped_and_add_under_each_source(tmp_path):
    text = (
        "# the open synonym bank\n"
        "code\tterm\tlang\tsource\n"
        "K74.6\tcirrhosis of liver NOS\ten\ticd10cm\n"
        "\n"
        "K74.6\t간경변\tko\tko_terms\n"
        "I10\tHTN\ten\tabbreviations\n"
        "K74.6\tCirrhosis of liver NOS\ten\tko_terms\n"
        "Z99.99\tnothing\ten\ticd10cm\n"
    )
    plain, packed = tmp_path / "bank.tsv", tmp_path / "bank.tsv.gz"
    plain.write_text(text, encoding="utf-8")
    packed.write_bytes(gzip.compress(text.encode()))
    rows = [
        ("K74.6", "cirrhosis of liver NOS", "icd10cm"),
        ("K74.6", "간경변", "ko_terms"),
        ("I10", "HTN", "abbreviations"),
        ("K74.6", "Cirrhosis of liver NOS", "ko_terms"),
        ("Z99.99", "nothing", "icd10cm"),
    ]
    assert read_bank(plain) == rows and read_bank(packed) == rows
    assert read_bank(tmp_path / "missing.tsv") == []
    d = Dictionary("t", {c: Concept(c, "KCD-8", terms=[Term(c, "en")]) for c in ("K74.6", "I10")})
    assert add_bank(d, rows) == 3  # the case-folded duplicate and the unknown code are not added
    assert [(t.text, t.source) for t in d.concepts["K74.6"].terms[1:]] == [
        ("cirrhosis of liver NOS", "icd10cm"),
        ("간경변", "ko_terms"),
    ]
    assert [(t.text, t.lang, t.source) for t in d.concepts["I10"].terms[1:]] == [
        ("HTN", "en", "abbreviations")
    ]
    assert d.warnings == ["icd10cm synonym 'nothing': unknown code 'Z99.99'"]
    plain.write_text("code\tterm\tlang\tsource\nK74.6\tx\ten\n", encoding="utf-8")
    with pytest.raises(
        DictionaryError, match=r"bank.tsv:2: expected 4 columns \(code, term, lang, source\), found 3"
    ):
        read_bank(plain)
    packed.write_bytes(b"not gzip")
    with pytest.raises(DictionaryError, match=r"bank.tsv.gz: not a readable gzip file"):
        read_bank(packed)


def test_synonym_files_skip_comments_and_headers_and_strip_each_field(tmp_path):
    path = tmp_path / "synonyms.tsv"
    path.write_text(
        "\ufeffcode\tterm\tnote\n# a comment\n\n K74.6 \t stiff liver \ntoken\texpansion\nko\ten\nI10\tHTN\textra\n",
        encoding="utf-8",
    )
    assert read_synonyms(path) == [("K74.6", "stiff liver"), ("I10", "HTN")]
    assert read_synonyms(tmp_path / "none.tsv") == []
    path.write_text("K74.6\n", encoding="utf-8")
    with pytest.raises(DictionaryError, match=r"synonyms.tsv:1: expected 2 columns \(code, term\), found 1"):
        read_synonyms(path)


def test_load_dictionary_passes_its_options_and_refuses_unknown_formats(tmp_path):
    path = write_kostom(tmp_path / "kostom.txt", [["H1", "H1", "x", "간", "", ""]])
    assert list(load_dictionary(path, "kostom").concepts) == ["H1"]
    with pytest.raises(DictionaryError, match="no terms found"):
        load_dictionary(path, "kostom", use_kostom_codes=False)
    with pytest.raises(
        DictionaryError,
        match=r"kostom.txt: unknown format 'umls'; choose one of kcd, kostom, table, mrconso, athena",
    ):
        load_dictionary(path, "umls")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DictionaryError, match=r"empty: no such file"):
        load_dictionary(tmp_path / "empty")


def write_concepts(folder, concepts, synonyms=None):
    folder.mkdir(exist_ok=True)
    header = "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\tinvalid_reason"
    (folder / "CONCEPT.csv").write_text("\n".join([header, *concepts]) + "\n", encoding="utf-8")
    if synonyms is not None:
        lines = ["concept_id\tconcept_synonym_name\tlanguage_concept_id", *synonyms]
        (folder / "CONCEPT_SYNONYM.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_athena_filters_by_domain_and_standard_class_and_keeps_each_field(tmp_path):
    from core.dictionary import load_athena

    folder = write_concepts(
        tmp_path / "vocab",
        [
            "1\tLiver cirrhosis\tCondition\tSNOMED\tClinical Finding\tS\t19943007\t",
            "2\tHepatic panel\tMeasurement\tSNOMED\tProcedure\tS\t123\t",
            "3\tCirrhosis group\tCondition\tSNOMED\tClinical Finding\tC\t456\t",
            "4\tCirrhosis NOS\tCondition\tSNOMED\tClinical Finding\t\t789\t",
            "5\tCirrhosis (retired)\tCondition\tSNOMED\tClinical Finding\tS\t999\t U ",
        ],
        [
            "1\t간경화\t4175771",
            "1\tLiver sclerosis\t 4180186 ",
            "1\thépatique\t4180190",
            "2\t간 검사\t4175771",
            "9\tnothing\t4180186",
        ],
    )
    d = load_athena(folder, domains=["Condition"])
    assert list(d.concepts) == ["19943007", "456", "789"] and d.name == "vocab"
    cirrhosis = d.concepts["19943007"]
    assert cirrhosis.info == {
        "concept_id": "1",
        "vocabulary_id": "SNOMED",
        "domain_id": "Condition",
        "concept_class_id": "Clinical Finding",
        "standard_concept": "S",
    }
    assert terms(cirrhosis) == [
        ("Liver cirrhosis", "en", True, "dictionary"),
        ("간경화", "ko", False, "dictionary"),
        ("Liver sclerosis", "en", False, "dictionary"),
        ("hépatique", "en", False, "dictionary"),  # a language OMOP names otherwise: detected
    ]
    assert cirrhosis.system == "SNOMED"
    assert list(load_athena(folder, standard_only=True, domains=["Condition"]).concepts) == [
        "19943007",
        "456",
    ]
    assert "999" in load_athena(folder, include_invalid=True).concepts
    assert list(load_athena(folder, vocabularies=["SNOMED"], domains=["Measurement"]).concepts) == ["123"]
    with pytest.raises(DictionaryError, match=r"vocab/CONCEPT.csv: no terms found"):
        load_athena(folder, vocabularies=["ICD10CM"])


def test_athena_refusals_name_the_file(tmp_path):
    from core.dictionary import load_athena

    (tmp_path / "nowhere").mkdir()
    with pytest.raises(
        DictionaryError, match=r"nowhere/CONCEPT.csv: no such file \(an Athena download holds CONCEPT.csv\)"
    ):
        load_athena(tmp_path / "nowhere")
    folder = write_concepts(tmp_path / "short", ["1\tLiver cirrhosis\tCondition\tSNOMED"])
    with pytest.raises(
        DictionaryError, match=r"CONCEPT.csv:2: expected 8 columns \(the header's columns\), found 4"
    ):
        load_athena(folder)
    folder = write_concepts(
        tmp_path / "syn", ["1\tLiver cirrhosis\tCondition\tSNOMED\tClinical Finding\tS\t1\t"], []
    )
    (folder / "CONCEPT_SYNONYM.csv").write_text("concept_id\tname\n1\tx\n", encoding="utf-8")
    with pytest.raises(
        DictionaryError,
        match=r"CONCEPT_SYNONYM.csv:1: not an OMOP vocabulary file: missing column\(s\) \['concept_synonym_name', 'language_concept_id'\]",
    ):
        load_athena(folder)


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("CONCEPT.csv", b"anything\n", "athena"),
        ("concept.CSV", b"anything\n", "athena"),
        ("MRCONSO.RRF", b"anything\n", "mrconso"),
        ("mrconso_2024.txt", b"anything\n", "mrconso"),
        ("dict.txt", "\ufeffKCD\tKO\tEN\nA00\t콜레라\tCholera\n".encode(), "kcd"),
        ("umls.txt", b"C0023890|ENG|P|L1|PF|S1|Y|A1||||MSH|PT|D1|Liver Cirrhosis|0|N||\n", "mrconso"),
        ("notcui.txt", b"X0023890|ENG|P|L1|PF|S1|Y|A1||||MSH|PT|D1|Liver Cirrhosis|0|N||\n", None),
        ("fewpipes.txt", b"C0023890|ENG|P|L1|PF|S1|Y|A1||||MSH|PT|D1|Liver Cirrhosis|0\n", None),
        ("pipes17.txt", b"C0023890|ENG|P|L1|PF|S1|Y|A1||||MSH|PT|D1|Liver Cirrhosis|0|N|\n", "mrconso"),
        ("spaces.txt", b"kcd ko en\nA00 x y\n", None),  # the KCD-8 header is tab-separated
        ("extra.txt", b"kcd\tko\ten\tnote\nA00\tx\ty\tz\n", "kcd"),  # a fourth column is allowed
        ("terms.txt", b" Term ,CODE\nK74.6,x\n", "table"),
        ("terms.txt", b"term\tcode\tlang\nx\tK74.6\ten\n", "table"),
        ("anything.TSV", b"a\tb\n", "table"),
        ("anything.csv", b"a,b\n", "table"),
        ("export.txt", "코드\t아이디\t영문\t한글\tCUI\n".encode("cp949"), "kostom"),
        ("export.txt", "a\tb\tc\td\te\n".encode(), "kostom"),
        ("export.txt", "a\tb\tc\td\n".encode(), None),
    ],
)
def test_detect_format_by_name_then_first_line(tmp_path, name, content, expected):
    from core.dictionary import detect_format

    path = tmp_path / name
    path.write_bytes(content)
    if expected is None:
        with pytest.raises(
            DictionaryError, match=rf"{name}:1: unknown dictionary format \(header '.*'\); pass --format"
        ):
            detect_format(path)
    else:
        assert detect_format(path) == expected
    assert detect_format(tmp_path) == "athena"  # a folder is an Athena download


def test_each_column_sets_the_language_even_when_the_text_looks_like_the_other(tmp_path):
    # a Korean name written in Latin letters (an abbreviation) is Korean because of its column
    kostom = write_kostom(
        tmp_path / "kostom.txt",
        [["K1", "ID1", "간 NOS", "AIDS", "C0001175", ""], ["K2", "ID2", "n/a", "에이즈", "C0001176", ""]],
    )
    d = load_kostom(kostom)
    assert terms(d.concepts["C0001175"]) == [
        ("간 NOS", "en", True, "dictionary"),
        ("AIDS", "ko", True, "dictionary"),
    ]
    assert d.concepts["C0001176"].system == "UMLS"  # created by its Korean name: the same system
    mrconso = tmp_path / "MRCONSO.RRF"
    mrconso.write_text(mrconso_row(lat="KOR", text="AIDS") + mrconso_row(text="간 NOS"), encoding="utf-8")
    assert [t.lang for t in load_mrconso(mrconso).concepts["C0023890"].terms] == ["ko", "en"]
    table = tmp_path / "t.csv"
    table.write_text("code,term,lang\nB24,AIDS,ko\nB24,에이즈 NOS,en\nB24,HIV,\n", encoding="utf-8")
    assert [t.lang for t in load_table(table).concepts["B24"].terms] == ["ko", "en", "en"]


def test_kostom_codes_come_from_the_first_column_and_every_blank_line_is_counted(tmp_path):
    path = write_kostom(
        tmp_path / "kostom.txt",
        [["H3 ", "ID3", "dampness-heat pattern", "습열증", "", ""], ["H4", "ID4", "n/a", "", "", ""], [], []],
    )
    d = load_kostom(path)
    assert list(d.concepts) == ["H3"]
    assert d.warnings[-1] == f"{path}: skipped 4 empty or placeholder terms"
    path.write_bytes(b"")
    with pytest.raises(DictionaryError, match=r"kostom.txt: no terms found"):
        load_kostom(path)
    mrconso = tmp_path / "MRCONSO.RRF"
    mrconso.write_text(mrconso_row() + mrconso_row(text="n/a") + "\n\n", encoding="utf-8")
    assert load_mrconso(mrconso).warnings == [f"{mrconso}: skipped 3 empty or placeholder terms"]
    table = tmp_path / "t.csv"
    table.write_text("code,term\nK74.6,n/a\nK74.6,liver\n\n\n", encoding="utf-8")
    assert load_table(table).warnings == [f"{table}: skipped 3 empty or placeholder terms"]


@pytest.mark.parametrize("loader", ["kostom", "mrconso", "athena", "athena synonyms", "bank", "synonyms"])
def test_every_loader_names_its_file_for_bad_bytes_and_a_cut_last_line(tmp_path, loader):
    from core.dictionary import load_athena

    folder = tmp_path / "athena"
    files = {
        "kostom": (
            tmp_path / "kostom.txt",
            load_kostom,
            "cp949",
            write_kostom(tmp_path / "k.txt", [["H", "H", "x", "간", "", ""]]).read_bytes(),
        ),
        "mrconso": (tmp_path / "MRCONSO.RRF", load_mrconso, "utf-8", mrconso_row().encode()),
        "athena": (
            folder / "CONCEPT.csv",
            lambda p: load_athena(p.parent),
            "utf-8-sig",
            None,
        ),
        "athena synonyms": (
            folder / "CONCEPT_SYNONYM.csv",
            lambda p: load_athena(p.parent),
            "utf-8-sig",
            None,
        ),
        "bank": (
            tmp_path / "bank.tsv",
            read_bank,
            "utf-8",
            b"code\tterm\tlang\tsource\nK74.6\tx\ten\ticd10cm\n",
        ),
        "synonyms": (
            tmp_path / "synonyms.tsv",
            read_synonyms,
            "utf-8-sig",
            b"code\tterm\nK74.6\tstiff liver\n",
        ),
    }
    path, load, encoding, good = files[loader]
    if loader.startswith("athena"):
        write_concepts(
            folder,
            ["1\tLiver cirrhosis\tCondition\tSNOMED\tClinical Finding\tS\t19943007\t"],
            ["1\t간경화\t4175771"],
        )
        good = path.read_bytes()
    path.write_bytes(good + b"\xff\xfe\n")
    with pytest.raises(DictionaryError, match=rf"{path.name}:\d+: not valid {encoding} \(byte 0xff\)"):
        load(path)
    path.write_bytes(good.rstrip(b"\n"))
    with pytest.raises(DictionaryError, match=rf"{path.name}:\d+: the last line has no line ending"):
        load(path)


def test_athena_quotes_languages_missing_optional_columns_and_row_order(tmp_path):
    from core.dictionary import load_athena

    folder = tmp_path / "minimal"
    folder.mkdir()
    concepts = [
        "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_code",
        "7\tAcquired immunodeficiency\tCondition\tICD10CM\tB20",  # another vocabulary first
        '1\t"Ground-glass" opacity\tObservation\tSNOMED\t19943007',  # a name that starts with a quote
        "",  # a blank line (quotes literal: split by hand) is skipped, not a row of one empty field
        "2\tLiver cirrhosis\tCondition\tSNOMED\t123",
    ]
    (folder / "CONCEPT.csv").write_text("\n".join(concepts) + "\n", encoding="utf-8")
    synonyms = [
        "concept_id\tconcept_synonym_name\tlanguage_concept_id",
        '2\t"LC"\t4175771',
        "2\tAIDS\t4175771",
    ]
    (folder / "CONCEPT_SYNONYM.csv").write_text("\n".join(synonyms) + "\n", encoding="utf-8")
    d = load_athena(folder, vocabularies=["SNOMED"])
    assert list(d.concepts) == ["19943007", "123"]
    assert d.concepts["19943007"].terms[0].text == '"Ground-glass" opacity'
    assert d.concepts["19943007"].info == {
        "concept_id": "1",
        "vocabulary_id": "SNOMED",
        "domain_id": "Observation",
        "concept_class_id": "",
        "standard_concept": "",
    }
    assert [(t.text, t.lang) for t in d.concepts["123"].terms[1:]] == [('"LC"', "ko"), ("AIDS", "ko")]
    assert not load_athena(folder, include_invalid=False).warnings  # no invalid_reason column: all valid
    (folder / "CONCEPT.csv").write_bytes(b"")
    with pytest.raises(DictionaryError, match=r"CONCEPT.csv:1: not an OMOP vocabulary file: missing column"):
        load_athena(folder)
