"""The one text normaliser, shared by the trainer and the runtime so they cannot drift."""

from __future__ import annotations

import re
import unicodedata

_DROP = re.compile(r"[,'\"]")  # the reference preprocessing strips these three
_SPACE = re.compile(r"\s+")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_NOT_WORD = re.compile(r"[\W_]+")
_UNENCODABLE = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # lone surrogates, controls
EMPTY_MARKERS = frozenset({"", "n/a", "nan", "null"})


def normalize(text: str) -> str:
    """Return the model-input form of a term or query.

    Unicode NFKC, lower case, the reference's punctuation rule (drop `,` `'` `"`) and
    collapsed whitespace. Lone surrogates (which no encoder accepts) and control characters
    are dropped.
    """
    text = unicodedata.normalize("NFKC", _UNENCODABLE.sub(" ", text)).lower()
    text = _DROP.sub("", text)
    return _SPACE.sub(" ", text).strip()


def compact(text: str) -> str:
    """Spacing- and punctuation-insensitive key used for exact-match lookups."""
    return _NOT_WORD.sub("", normalize(text))


def detect_lang(text: str) -> str:
    """'ko' if the text holds any Hangul, else 'en'."""
    return "ko" if _HANGUL.search(text) else "en"


def is_empty_term(text: str) -> bool:
    """True for the placeholder values the reference drops (`n/a`, `nan`, `null`, empty)."""
    return normalize(text) in EMPTY_MARKERS


_JAMO_BASE, _JAMO_END = 0xAC00, 0xD7A3
_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONG = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"


def decompose_hangul(text: str) -> str:
    """Hangul syllables written out as compatibility jamo (심근경색 → ㅅㅣㅁㄱㅡㄴㄱㅕㅇㅅㅐㄱ), so
    that a slip in one jamo changes one letter, not a whole syllable. Other text is unchanged."""
    out = []
    for char in text:
        code = ord(char)
        if _JAMO_BASE <= code <= _JAMO_END:
            index = code - _JAMO_BASE
            out.append(_CHO[index // 588] + _JUNG[(index % 588) // 28] + _JONG[index % 28].strip())
        else:
            out.append(char)
    return "".join(out)


def compose_hangul(cho: int, jung: int, jong: int = 0) -> str:
    """The syllable of initial `cho`, medial `jung` and final `jong` (indexes into the jamo tables)."""
    return chr(_JAMO_BASE + cho * 588 + jung * 28 + jong)


# Dubeolsik (the standard Korean keyboard): the Latin key under each jamo
_KEYS = {
    "r": "ㄱ", "R": "ㄲ", "s": "ㄴ", "e": "ㄷ", "E": "ㄸ", "f": "ㄹ", "a": "ㅁ", "q": "ㅂ", "Q": "ㅃ",
    "t": "ㅅ", "T": "ㅆ", "d": "ㅇ", "w": "ㅈ", "W": "ㅉ", "c": "ㅊ", "z": "ㅋ", "x": "ㅌ", "v": "ㅍ",
    "g": "ㅎ", "k": "ㅏ", "o": "ㅐ", "i": "ㅑ", "O": "ㅒ", "j": "ㅓ", "p": "ㅔ", "u": "ㅕ", "P": "ㅖ",
    "h": "ㅗ", "y": "ㅛ", "n": "ㅜ", "b": "ㅠ", "m": "ㅡ", "l": "ㅣ",
}  # fmt: skip
_VOWEL_PAIRS = {
    "ㅗㅏ": "ㅘ",
    "ㅗㅐ": "ㅙ",
    "ㅗㅣ": "ㅚ",
    "ㅜㅓ": "ㅝ",
    "ㅜㅔ": "ㅞ",
    "ㅜㅣ": "ㅟ",
    "ㅡㅣ": "ㅢ",
}
_FINAL_PAIRS = {
    "ㄱㅅ": "ㄳ", "ㄴㅈ": "ㄵ", "ㄴㅎ": "ㄶ", "ㄹㄱ": "ㄺ", "ㄹㅁ": "ㄻ", "ㄹㅂ": "ㄼ", "ㄹㅅ": "ㄽ",
    "ㄹㅌ": "ㄾ", "ㄹㅍ": "ㄿ", "ㄹㅎ": "ㅀ", "ㅂㅅ": "ㅄ",
}  # fmt: skip


def from_dubeolsik(text: str) -> str | None:
    """What a word typed with the keyboard left in English mode was meant to say
    (`rkarl` → 감기); None if the letters do not spell Hangul syllables."""
    jamo = [_KEYS.get(c) or _KEYS.get(c.lower()) for c in text if not c.isspace()]
    if not jamo or None in jamo:
        return None
    out, i = [], 0
    while i < len(jamo):
        if jamo[i] not in _CHO or i + 1 >= len(jamo) or jamo[i + 1] not in _JUNG:
            return None
        cho, vowel, i = jamo[i], jamo[i + 1], i + 2
        if i < len(jamo) and vowel + jamo[i] in _VOWEL_PAIRS:
            vowel, i = _VOWEL_PAIRS[vowel + jamo[i]], i + 1
        final = ""
        # a consonant closes the syllable unless a vowel follows it (then it starts the next one)
        if i < len(jamo) and jamo[i] in _JONG and (i + 1 >= len(jamo) or jamo[i + 1] not in _JUNG):
            final, i = jamo[i], i + 1
            if (
                i < len(jamo)
                and final + jamo[i] in _FINAL_PAIRS
                and (i + 1 >= len(jamo) or jamo[i + 1] not in _JUNG)
            ):
                final, i = _FINAL_PAIRS[final + jamo[i]], i + 1
        out.append(compose_hangul(_CHO.index(cho), _JUNG.index(vowel), _JONG.index(final) if final else 0))
    return "".join(out)
