"""Acronym queries: "AHUS" finds "atypical hemolytic uremic syndrome" by the initials of its words.

Clinicians type abbreviations that no list names; an acronym made of a name's word initials
(stop words left out: "fracture of the neck of the femur" is FNF, "type 2 diabetes mellitus"
T2DM) is matched against every English name. Only a query that looks like one counts: a
single token of 3 to 6 letters or digits with at least two capitals as typed ("ARDS", "aHUS").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .text import detect_lang, normalize

_STOP = frozenset(
    "a an and at by due for from in of on or the to with without nos".split()
)  # fmt: skip
_QUERY = re.compile(r"[A-Za-z0-9]{3,6}")
_WORD = re.compile(r"[a-z0-9]+")


def initials(text: str) -> str:
    """The first character of each content word of an English name ("" for Korean)."""
    return _initials(normalize(text))


def _initials(normalized: str) -> str:
    if detect_lang(normalized) != "en":
        return ""
    return "".join(w[0] for w in _WORD.findall(normalized) if w not in _STOP)


def acronym_key(query: str) -> str | None:
    """The lower-case acronym a query is, if it looks like one (see the module's doc); else None."""
    text = query.strip()
    if not _QUERY.fullmatch(text) or sum(c.isupper() for c in text) < 2:
        return None
    return text.lower()


class Acronyms:
    """Which texts (by position) have each acronym of 3 to 6 initials (the lengths a query can
    have: a one- or two-word name is no acronym's expansion); the texts are
    normalised (`core.text.normalize`), as a TermTable holds them."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.labels: dict[str, list[int]] = {}
        for label, text in enumerate(texts):
            key = _initials(text)
            if 3 <= len(key) <= 6:
                self.labels.setdefault(key, []).append(label)

    def match(self, query: str) -> list[int]:
        """Positions of the texts whose initials spell the query, if it is an acronym."""
        return self.labels.get(acronym_key(query), [])
