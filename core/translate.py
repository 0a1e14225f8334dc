"""Word-for-word Korean ↔ English renderings of code-mixed queries.

EMR notes mix the two languages inside one term ("viral 폐렴", "신생아 jaundice"). The
encoder has seen few such strings; the same term written wholly in one language is what the
dictionary holds. A code-mixed query is therefore also searched as its English rendering
(each Korean word translated) and its Korean rendering (each English word translated), from
a word list learned from one-word names: a concept's Korean and English name, and the open
bank's Korean–English term pairs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from .text import normalize

_HANGUL = re.compile("[가-힣]")
_LATIN = re.compile("[a-z]")


def is_code_mixed(text: str) -> bool:
    """Whether a (normalised) text has both Hangul syllables and Latin letters."""
    return bool(_HANGUL.search(text) and _LATIN.search(text))


class WordTranslations:
    """The most frequent translation of each one-word Korean and English name.

    Args:
        pairs: (Korean, English, weight) name pairs; a Korean name of one word gives a
            translation of up to three English words, an English name of one word one of up
            to two Korean words. Ties go to the pair seen first.
    """

    def __init__(self, pairs: Iterable[tuple[str, str, int]]) -> None:
        ko_en: dict[str, Counter[str]] = {}
        en_ko: dict[str, Counter[str]] = {}
        for ko, en, weight in pairs:
            ko, en = normalize(ko), normalize(en)
            if not ko or not en or _LATIN.search(ko) or _HANGUL.search(en):
                continue
            if " " not in ko and len(en.split(" ")) <= 3:
                ko_en.setdefault(ko, Counter())[en] += weight
            if " " not in en and len(ko.split(" ")) <= 2:
                en_ko.setdefault(en, Counter())[ko] += weight
        self.ko_en = {word: counts.most_common(1)[0][0] for word, counts in ko_en.items()}
        self.en_ko = {word: counts.most_common(1)[0][0] for word, counts in en_ko.items()}

    def renderings(self, text: str) -> list[str]:
        """A code-mixed normalised text in English and in Korean, as far as its words are
        known ("viral 폐렴" → ["viral pneumonia", "바이러스 폐렴"]); [] for a text in
        one language."""
        if not is_code_mixed(text):
            return []
        words = text.split(" ")  # a word of the other language is never a key
        english = " ".join(self.ko_en.get(w, w) for w in words)
        korean = " ".join(self.en_ko.get(w, w) for w in words)
        return [r for r in dict.fromkeys((english, korean)) if r != text]
