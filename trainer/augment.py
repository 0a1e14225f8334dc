"""Noisy variants of names, the way clinicians mistype them, as extra training pairs.

Korean slips happen inside a syllable (one jamo replaced, a final consonant dropped or
added: 심근경색 → 심근겅색), English ones on letters (dropped, doubled, swapped, a
neighbour key), and spacing comes and goes in both. Each variant is paired with the name it
came from, under that name's concept label, so the encoder learns to place the slip beside
the name.
"""

from __future__ import annotations

import random

from core.text import _CHO, _JAMO_BASE, _JAMO_END, _JONG, _JUNG, compose_hangul

# vowels and consonants that are easily confused (sound or key position)
_NEAR_VOWELS = {
    "ㅐ": "ㅔ",
    "ㅔ": "ㅐ",
    "ㅓ": "ㅕㅗ",
    "ㅕ": "ㅓ",
    "ㅗ": "ㅓㅜ",
    "ㅜ": "ㅗㅡ",
    "ㅡ": "ㅜ",
    "ㅚ": "ㅙㅞ",
    "ㅙ": "ㅚㅞ",
}
_NEAR_CONSONANTS = {
    "ㄱ": "ㅋㄲ",
    "ㄷ": "ㅌㄸ",
    "ㅂ": "ㅍㅃ",
    "ㅈ": "ㅊㅉ",
    "ㅅ": "ㅆ",
    "ㄴ": "ㅇㄹ",
    "ㅇ": "ㄴ",
    "ㅁ": "ㄴ",
}
_KEYBOARD = "qwertyuiop asdfghjkl zxcvbnm"


def korean_typo(text: str, rng: random.Random) -> str | None:
    """One jamo-level slip in one Hangul syllable; None if the text has no Hangul."""
    for _ in range(8):  # a random slip can land on the same jamo: try again
        variant = _korean_slip(text, rng)
        if variant != text:
            return variant
    return None


def _korean_slip(text: str, rng: random.Random) -> str | None:
    positions = [i for i, c in enumerate(text) if _JAMO_BASE <= ord(c) <= _JAMO_END]
    if not positions:
        return None
    i = rng.choice(positions)
    index = ord(text[i]) - _JAMO_BASE
    cho, jung, jong = index // 588, (index % 588) // 28, index % 28
    kind = rng.random()
    if kind < 0.4:  # a vowel slip
        vowel = _JUNG[jung]
        jung = _JUNG.index(rng.choice(_NEAR_VOWELS.get(vowel, _JUNG)))
    elif kind < 0.65:  # an initial consonant slip
        consonant = _CHO[cho]
        cho = _CHO.index(rng.choice(_NEAR_CONSONANTS.get(consonant, "ㄱㄴㄷㄹㅁㅂㅅㅇㅈ")))
    elif jong:  # a final consonant dropped or changed
        jong = 0 if rng.random() < 0.6 else rng.randrange(1, len(_JONG))
    else:  # a final consonant added
        jong = rng.randrange(1, len(_JONG))
    return text[:i] + compose_hangul(cho, jung, jong) + text[i + 1 :]


def english_typo(text: str, rng: random.Random) -> str | None:
    """One letter dropped, doubled, swapped with the next or replaced by a neighbouring key."""
    positions = [i for i, c in enumerate(text) if c.isascii() and c.isalpha()]
    if len(positions) < 4:
        return None
    i = rng.choice(positions[1:])
    kind = rng.random()
    if kind < 0.35:
        return text[:i] + text[i + 1 :]
    if kind < 0.55:
        return text[:i] + text[i] + text[i:]
    if kind < 0.8 and i + 1 < len(text) and text[i + 1].isalpha():
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    row = next((r for r in _KEYBOARD.split() if text[i].lower() in r), None)
    if row is None:
        return None
    j = row.index(text[i].lower())
    neighbours = row[max(0, j - 1) : j] + row[j + 1 : j + 2]
    return text[:i] + rng.choice(neighbours) + text[i + 1 :]


def spacing_variant(text: str, rng: random.Random) -> str | None:
    """Spaces dropped (Korean compounds are written both ways) or one added between syllables."""
    if " " in text:
        return text.replace(" ", "")
    hangul = [i for i, c in enumerate(text[1:], start=1) if _JAMO_BASE <= ord(c) <= _JAMO_END]
    if len(text) < 4 or not hangul:
        return None
    i = rng.choice(hangul)
    return text[:i] + " " + text[i:]


def noisy_variant(text: str, rng: random.Random) -> str | None:
    """A slip of the kind the text invites (Korean, English or spacing), or None."""
    makers = [spacing_variant] + ([korean_typo] * 3 if any("가" <= c <= "힣" for c in text) else [])
    if any(c.isascii() and c.isalpha() for c in text):
        makers += [english_typo] * 3
    variant = rng.choice(makers)(text, rng)
    return variant if variant and variant != text else None
