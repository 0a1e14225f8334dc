"""Dictionary → synonym pairs, by the reference's rules.

Group terms by concept; every 2-combination of a concept's terms is a positive pair;
at most `max_pairs` per concept, sampled with a fixed seed; clean the terms (the shared
normaliser: NFKC, lower case, strip `,` `'` `"`; drop `n/a`, `nan`, `null`, empty);
deduplicate; shuffle.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.dictionary import Dictionary
from core.fsutil import write_atomic
from core.text import EMPTY_MARKERS, detect_lang, normalize


@dataclass(frozen=True)
class Pair:
    sent0: str
    sent1: str
    label: str


def make_pairs(
    dictionary: Dictionary,
    *,
    max_pairs: int = 50,
    seed: int = 42,
    include: Callable[[str], bool] | None = None,
    sources: tuple[str, ...] | None = None,
) -> list[Pair]:
    """Positive pairs of every concept `include` accepts (all when None).

    Args:
        dictionary: any loaded dictionary.
        max_pairs: the most pairs one concept contributes (down-sampled with `seed`).
        seed: the sampling and shuffling seed.
        include: a filter on concept codes, e.g. excluding the benchmark's held-out codes.
        sources: which kinds of terms take part (`Term.source`); None: all but `user`.

    When a concept has more pairs than `max_pairs`, the pair of its first two names (the
    dictionary's own Korean and English names) is always kept, and half of the rest pair
    the first name with another one (so every language's names meet the concept's anchor).
    """
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for code in sorted(dictionary.concepts):
        if include is not None and not include(code):
            continue
        terms = []
        for term in dictionary.concepts[code].terms:
            text = normalize(term.text)
            wanted = term.source != "user" if sources is None else term.source in sources
            if wanted and text not in EMPTY_MARKERS and text not in terms:
                terms.append(text)
        combos = list(itertools.combinations(terms, 2))
        if len(combos) > max_pairs:
            anchored = [c for c in combos[1:] if c[0] == terms[0]]
            chosen = rng.sample(anchored, min(len(anchored), (max_pairs - 1) // 2))
            taken = set(chosen)
            rest = [c for c in combos[1:] if c not in taken]
            combos = [combos[0]] + chosen + rng.sample(rest, max_pairs - 1 - len(chosen))
        pairs.extend(Pair(a, b, code) for a, b in combos)  # distinct names: no pair twice
    rng.shuffle(pairs)
    return pairs


def translation_pairs(rows: list[tuple[str, str]], *, exclude: set[str]) -> list[Pair]:
    """Korean–English term pairs as training pairs, one label per English term
    (`translation:<english>`); rows with a text in `exclude` (normalised) are left out."""
    pairs, seen = [], set()
    for ko, en in rows:
        ko, en = normalize(ko), normalize(en)
        if not ko or not en or ko in exclude or en in exclude:  # a "ko / en" header fails the script check
            continue
        if detect_lang(ko) != "ko" or detect_lang(en) != "en" or (ko, en) in seen:
            continue
        seen.add((ko, en))
        pairs.append(Pair(ko, en, f"translation:{en}"))
    return pairs


def write_pairs(pairs: list[Pair], path: str | Path) -> None:
    """The reference's `sent0<TAB>sent1<TAB>label` file (with that header)."""
    lines = ["sent0\tsent1\tlabel"] + [f"{p.sent0}\t{p.sent1}\t{p.label}" for p in pairs]
    write_atomic(path, "\n".join(lines) + "\n")


def read_pairs(path: str | Path) -> list[Pair]:
    rows = Path(path).read_text(encoding="utf-8").splitlines()
    return [Pair(*row.split("\t")[:3]) for row in rows[1:] if row]
