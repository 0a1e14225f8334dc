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
    assert from_dubeolsik("ekfrrhrl") == "닭고기"  # … and the syllable after it
    assert from_dubeolsik("fever") is None and from_dubeolsik("pneumonia") is None


def test_normalize_drops_controls_and_lone_surrogates_but_keeps_other_punctuation():
    # the ends of each dropped range become spaces; tab, newline and CR are whitespace
    for char in ("\x00", "\x08", "\x0b", "\x0c", "\x0e", "\x1f", "\x7f", "\ud800", "\udfff"):
        assert normalize(f"a{char}b") == "a b", repr(char)
    assert normalize("a\tb\nc\r\nd") == "a b c d"
    assert normalize("\x00 K74.6 (liver-cirrhosis)/LC; 100% \x7f") == "k74.6 (liver-cirrhosis)/lc; 100%"
    assert normalize("ÄRZTE Ⅳ") == "ärzte iv"  # NFKC, then lower case beyond ASCII


def test_compact_keeps_words_of_every_script_and_drops_the_rest():
    assert compact(" Liver_Cirrhosis (간경화), K74.6 ") == "livercirrhosis간경화k746"
    assert compact("— / ·") == ""


def test_detect_lang_counts_every_hangul_block_and_only_those():
    # Jamo, compatibility jamo and syllables, each at both ends of its block
    for char in ("\u1100", "\u11ff", "\u3131", "\u318e", "가", "힣"):
        assert detect_lang(f"x{char}") == "ko", hex(ord(char))
    for char in ("\u10ff", "\u1200", "\u3041", "\u4e00", "\ud7b0"):
        assert detect_lang(f"x{char}") == "en", hex(ord(char))


def test_empty_markers_are_whole_values_after_normalising():
    assert all(is_empty_term(t) for t in ("  ", "\t", "n/a", "N/A", "NaN", "null", " NULL "))
    assert not any(is_empty_term(t) for t in ("n/ a", "na", "nulls", "-", "0", "nan nan"))


def test_hangul_syllables_compose_and_decompose_over_the_whole_block():
    from core.text import compose_hangul, decompose_hangul

    assert compose_hangul(0, 0) == "가" and compose_hangul(18, 20, 27) == "힣"
    assert compose_hangul(0, 0, 1) == "각" and compose_hangul(1, 0) == "까" and compose_hangul(0, 1) == "개"
    # every syllable from 가 (U+AC00) to 힣 (U+D7A3), and only those, is written out in jamo
    assert decompose_hangul("가힣") == "ㄱㅏㅎㅣㅎ"
    assert decompose_hangul("\uabff\ud7a4ㄱ") == "\uabff\ud7a4ㄱ"
    # hand-checked: initial, medial and final each taken from its own table
    cases = {(5, 8, 0): "로", (11, 20, 4): "인", (9, 14, 16): "쉄", (2, 19, 11): "늷", (14, 4, 8): "철"}
    cases |= {(1, 0, 0): "까", (8, 0, 0): "빠"}  # the first syllable of an initial: 588 × its index
    jamo = {
        "로": "ㄹㅗ",
        "인": "ㅇㅣㄴ",
        "쉄": "ㅅㅝㅁ",
        "늷": "ㄴㅢㄼ",
        "철": "ㅊㅓㄹ",
        "까": "ㄲㅏ",
        "빠": "ㅃㅏ",
    }
    for indexes, syllable in cases.items():
        assert compose_hangul(*indexes) == syllable and decompose_hangul(syllable) == jamo[syllable]


def test_a_progress_bar_on_a_terminal_redraws_one_line_and_ends_it_once():
    import io

    from core.progress import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        bar = ProgressBar("embedding", stream=stream)
        assert bar(0, 2) and bar(2, 2)  # (the first and the last are always drawn)
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 2 and drawn.count("\n") == 1 and drawn.endswith("\n")  # ended once
    assert log.getvalue().count("\n") == 2 and not log.getvalue().endswith("\n")  # a log: a line each
