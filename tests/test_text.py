from core.text import compact, detect_lang, is_empty_term, normalize


def test_normalize_applies_nfkc_case_punctuation_and_spaces():
    assert normalize("  Liver   Cirrhosis ") == "liver cirrhosis"
    assert normalize('Bell\'s palsy, "unspecified"') == "bells palsy unspecified"
    assert normalize("ＡＢＣ　１２") == "abc 12"  # full-width forms and ideographic space
    assert normalize("간경화") == "간경화"


def test_compact_ignores_spacing_and_punctuation():
    assert compact("급성 충수염") == compact("급성충수염")
    assert compact("K74.6") == "k746"


def test_detect_lang_and_empty_markers():
    assert detect_lang("급성 appendicitis") == "ko"
    assert detect_lang("appendicitis") == "en"
    assert all(is_empty_term(t) for t in ("", " N/A ", "nan", "NULL"))
    assert not is_empty_term("nail")
