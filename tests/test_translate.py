"""Code-mixed queries: word-for-word renderings in each language, and a search that uses them."""

from __future__ import annotations

import pytest

from core.search import open_searcher
from core.translate import WordTranslations, is_code_mixed


def test_renderings_translate_each_word_into_the_other_language():
    words = WordTranslations([("폐렴", "Pneumonia", 1), ("바이러스", "viral", 1), ("신생아", "newborn", 1)])
    assert words.renderings("viral 폐렴") == ["viral pneumonia", "바이러스 폐렴"]
    # unknown words stay as typed; a rendering equal to the query is not repeated
    assert words.renderings("신생아 jaundice") == ["newborn jaundice"]
    assert words.renderings("바이러스 폐렴") == [] and words.renderings("viral pneumonia") == []
    assert is_code_mixed("lt. 요골 fx") and not is_code_mixed("주상골 골절 2")


def test_the_most_frequent_translation_wins_and_long_names_are_no_words():
    words = WordTranslations(
        [
            ("탈구", "clean bench", 1),
            ("탈구", "dislocation", 1),
            ("탈구", "dislocation", 1),
            ("폐렴", "pneumonia of the left lower lobe", 5),  # four words: not a translation of one
            ("간 경화", "cirrhosis", 1),  # two Korean words: a translation of the English word
        ]
    )
    assert words.ko_en == {"탈구": "dislocation"}
    assert words.en_ko == {"dislocation": "탈구", "cirrhosis": "간 경화"}
    # ties go to the pair seen first
    assert (
        WordTranslations([("a형", "x", 1), ("위", "stomach", 1), ("위", "gastric", 1)]).ko_en["위"]
        == "stomach"
    )


def test_word_limits_scripts_and_weights():
    words = WordTranslations(
        [
            ("b형", "type b", 1),  # Latin letters in the Korean name: not a Korean word
            ("간", "간 liver", 1),  # Hangul in the English name
            ("요통", "low back pain", 1),  # three English words: kept
            ("좌골", "ischium bone of the", 1),  # four: dropped
            ("허리 아래 통증", "lumbago", 5),  # three Korean words: dropped, however heavy
            ("", "orphan", 1),  # an empty side: no word
            ("요통", "lumbago", 1),
            ("허리통증", "lumbago", 3),  # the heavier translation wins
        ]
    )
    assert words.ko_en == {"요통": "low back pain", "허리통증": "lumbago"}
    assert words.en_ko == {"lumbago": "허리통증"}
    # three pairs of weight 1 outweigh one of weight 2
    heavier = WordTranslations([("나", "x", 2), ("가", "x", 1), ("가", "x", 1), ("가", "x", 1)])
    assert heavier.en_ko == {"x": "가"}


def test_a_code_mixed_query_is_searched_in_each_language(tmp_path, tiny_bundle, cache):
    table = tmp_path / "terms.tsv"
    rows = [
        ("P1", "폐렴", "ko"),
        ("P1", "pneumonia", "en"),
        ("P2", "바이러스 폐렴", "ko"),
        ("P2", "viral pneumonia", "en"),
        ("R1", "바이러스", "ko"),
        ("R1", "viral", "en"),
        ("X1", "viral 폐렴 검사", "ko"),
    ]
    table.write_text(
        "code\tterm\tlang\n" + "".join(f"{c}\t{t}\t{lang}\n" for c, t, lang in rows), encoding="utf-8"
    )
    searcher = open_searcher(table, model=tiny_bundle, cache=cache, user_synonyms=tmp_path / "none.tsv")
    assert searcher.variants("viral 폐렴")[-2:] == ["viral pneumonia", "바이러스 폐렴"]
    best = searcher.search("viral 폐렴", 2)[0]
    assert best.code == "P2" and best.lexical == pytest.approx(1.0, abs=1e-4)
