"""Acronym queries: a name's word initials match an acronym typed in capitals."""

from __future__ import annotations

from core.acronyms import Acronyms, acronym_key, initials
from core.search import open_searcher


def test_initials_skip_stop_words_and_keep_digits():
    assert initials("Acute respiratory distress syndrome") == "ards"
    assert initials("Fracture of the neck of the femur") == "fnf"
    assert initials("Type 2 diabetes mellitus") == "t2dm"
    assert initials("Atypical hemolytic uremic syndrome") == "ahus"
    assert initials("Heart attack") == "ha" and initials("급성 호흡곤란 증후군") == ""


def test_only_a_capitalised_token_of_three_to_six_characters_is_an_acronym():
    assert acronym_key("ARDS") == "ards" and acronym_key(" aHUS ") == "ahus" and acronym_key("T2DM") == "t2dm"
    for query in ("ards", "Gout", "MI", "ABCDEFG", "AR DS", "ARDS 의증"):
        assert acronym_key(query) is None, query
    acronyms = Acronyms(["acute respiratory distress syndrome", "ardent", "all red dogs sleep", "ards"])
    assert acronyms.match("ARDS") == [0, 2] and acronyms.match("ards") == []
    # keys of 3 to 6 initials, the lengths a query can have
    names = ["heart attack", "chronic inflammatory demyelinating poly radiculo neuropathy"]
    assert Acronyms(names).labels == {"cidprn": [1]} and Acronyms(names).match("CIDPRN") == [1]


def test_an_acronym_query_finds_the_names_it_abbreviates(tmp_path, tiny_bundle, cache):
    table = tmp_path / "terms.tsv"
    rows = [
        ("D59", "Atypical hemolytic uremic syndrome", "en"),
        ("D59", "비정형 용혈성 요독 증후군", "ko"),
        ("N1", "AHUS-like ahusband", "en"),  # shares the letters, not the initials
        ("N2", "Ahusband", "en"),
        ("J80", "Acute respiratory distress syndrome", "en"),
    ]
    table.write_text(
        "code\tterm\tlang\n" + "".join(f"{c}\t{t}\t{lang}\n" for c, t, lang in rows), encoding="utf-8"
    )
    user = tmp_path / "user.tsv"
    user.write_text("code\tterm\nN2\tDrug rash eosinophilia\n", encoding="utf-8")
    searcher = open_searcher(table, model=tiny_bundle, cache=cache, user_synonyms=user)
    best = searcher.search("AHUS", 3)[0]
    assert (best.code, best.matched, best.lexical) == ("D59", "Atypical hemolytic uremic syndrome", 1.0)
    # typed in lower case it is a word, matched by its letters like any other query
    assert all(h.lexical < 1.0 for h in searcher.search("ahus", 3))
    # a local synonym is matched by the same rule
    best = searcher.search("DRE", 3)[0]
    assert (best.code, best.lexical) == ("N2", 1.0)
