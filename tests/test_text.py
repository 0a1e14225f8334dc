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


def test_hangul_decomposes_into_jamo_and_keyboard_slips_recompose():
    from core.text import decompose_hangul, from_dubeolsik

    assert decompose_hangul("간 fx") == "ㄱㅏㄴ fx"
    assert decompose_hangul("심근경색") == "ㅅㅣㅁㄱㅡㄴㄱㅕㅇㅅㅐㄱ"
    assert from_dubeolsik("rksrudghk") == "간경화"  # 간경화 typed in English mode
    assert from_dubeolsik("dkssudgktpdy") == "안녕하세요"
    assert from_dubeolsik("qkfrnf") == "발굴"  # a final consonant that starts no syllable
    assert from_dubeolsik("dlfr") == "읽"  # a double final consonant
    assert from_dubeolsik("fever") is None and from_dubeolsik("pneumonia") is None
