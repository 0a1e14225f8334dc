"""The one text normaliser, shared by the trainer and the runtime so they cannot drift."""

from __future__ import annotations

import re
import unicodedata

_DROP = re.compile(r"[,'\"]")  # the reference preprocessing strips these three
_SPACE = re.compile(r"\s+")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_NOT_WORD = re.compile(r"[\W_]+")
EMPTY_MARKERS = frozenset({"", "n/a", "nan", "null"})


def normalize(text: str) -> str:
    """Return the model-input form of a term or query.

    Unicode NFKC, lower case, the reference's punctuation rule (drop `,` `'` `"`) and
    collapsed whitespace.
    """
    text = unicodedata.normalize("NFKC", text).lower()
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
