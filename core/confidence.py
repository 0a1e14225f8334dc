"""Calibrated confidence: the probability that a result is the right concept, and the levels a
coder reads (high / medium / low / no good match).

Two logistic models over features of the match (the fused score, its margin over the best
other concept, the dense and lexical cosines, the shape of the query) are fitted by
`python -m core calibrate` on queries generated from the dictionary alone: its names slightly
damaged (typos, words dropped, spacing) and its names searched with their own text hidden from
the index (a synonym the dictionary does not hold, found through the concept's other names, as
the long tail of what users type is), whose right answers are known, and strings that name
nothing (random letters, jamo and digits). One model gives the probability that a result is
right, fitted on the queries that name something; the other tells those from the strings that
name nothing, whose results are "no good match". (One model fitted on both at once let the
share of generated nonsense pull down every real query's probability.) The dev query sets are
never used. The fitted models live in the bundle (`calibration.json`), because scores depend
on the model.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .text import compact

FILE = "calibration.json"
FEATURES = ("score", "margin", "dense", "lexical", "pieces_per_char", "hangul")
NONE_BELOW = 0.05  # a result right less than once in twenty is no good match either


def query_shape(query: str, embedder) -> tuple[float, float]:
    """(word pieces per character, share of Hangul characters): gibberish splits into many
    short pieces; Korean and Latin scripts split differently, so the script is a feature too."""
    key = compact(query)
    if not key:
        return 0.0, 0.0
    pieces = embedder.pieces(query)
    hangul = sum("가" <= c <= "힣" or "ㄱ" <= c <= "ㅣ" for c in key) / len(key)
    return pieces / len(key), hangul


def margins(scores: Sequence[float]) -> list[float]:
    """Each hit's lead over the best other hit of the list (ranked by score): the first's over
    the second (the margin the calibration is fitted on), every other's over the first (zero
    or below). So no hit reads more certain than the one above it for leading whatever follows
    it (asdfgh: the third of three hits tied on "ASD" read "high" over the next, unrelated one)."""
    return [s - (scores[1] if i == 0 else scores[0]) if len(scores) > 1 else s for i, s in enumerate(scores)]


def features(
    score: float, margin: float, dense: float, lexical: float, shape: tuple[float, float]
) -> np.ndarray:
    return np.array([score, margin, dense, lexical, *shape], dtype=np.float64)


def _logistic(z: list[float], weights: tuple[float, ...], bias: float) -> float:
    """The logistic of standardised features (plain floats: six of them are quicker than numpy)."""
    t = sum(a * w for a, w in zip(z, weights)) + bias
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, t))))


@dataclass(frozen=True)
class Calibration:
    """The logistic models over FEATURES (standardised alike by `mean` and `scale`) and the
    thresholds of the levels. `weights` and `bias` give the probability that a result is
    right; `real_weights` and `real_bias`, whether its query names anything: below
    `real_below` the probability is 0. A calibration without `real_weights` (release 3's) has
    one model, fitted on both kinds of query."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    none_below: float  # "no good match" under this probability
    medium_from: float = 0.35
    high_from: float = 0.75
    real_weights: tuple[float, ...] = ()
    real_bias: float = 0.0
    real_below: float = 0.0

    def probability(self, x: np.ndarray) -> float:
        z = [(v - m) / s for v, m, s in zip(x.tolist(), self.mean, self.scale)]
        if self.real_weights and _logistic(z, self.real_weights, self.real_bias) < self.real_below:
            return 0.0
        return _logistic(z, self.weights, self.bias)

    def level(self, p: float) -> str:
        if p >= self.high_from:
            return "high"
        if p >= self.medium_from:
            return "medium"
        return "low" if p >= self.none_below else "none"

    def save(self, bundle: str | Path, *, report: dict) -> None:
        """Write calibration.json into a bundle and list it (with its sha256) in the manifest."""
        import dataclasses

        from .bundle import MANIFEST, read_manifest
        from .fsutil import sha256_file, write_atomic

        bundle = Path(bundle)
        manifest = read_manifest(bundle)
        write_atomic(bundle / FILE, json.dumps({**asdict(self), "report": report}, indent=2) + "\n")
        files = {**manifest.files, FILE: sha256_file(bundle / FILE)}
        write_atomic(bundle / MANIFEST, dataclasses.replace(manifest, files=files).to_json())

    @classmethod
    def load(cls, bundle: str | Path) -> Calibration | None:
        """The bundle's calibration; None when it has none (its results carry no confidence)."""
        path = Path(bundle) / FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            data.pop("report", None)
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: unreadable calibration ({exc})") from None


# ----------------------------------------------------------------------------- fitting

_NOISE_ALPHABETS = (
    "abcdefghijklmnopqrstuvwxyz",
    "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㅏㅓㅗㅜㅡㅣ",
    "가나다라마바사아자차카타파하",
    "0123456789",
)


def nonsense(rng: random.Random) -> str:
    """A random string of letters, jamo, syllables and digits (what a stray keystroke gives)."""
    alphabet = "".join(rng.sample(_NOISE_ALPHABETS, rng.randint(1, 2)))
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 12)))


def damaged(name: str, rng: random.Random) -> str:
    """A name as a hurried user types it: a slip, a word left out, spacing lost, a prefix."""
    words = name.split()
    kind = rng.random()
    if kind < 0.3 and len(words) > 2:
        words.pop(rng.randrange(len(words)))
        return " ".join(words)
    if kind < 0.5 and len(words) > 2:
        return " ".join(words[: rng.randint(2, len(words) - 1)])
    if kind < 0.6 and " " in name:
        return name.replace(" ", "")
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    if not letters:
        return name + name[-1:]
    i = rng.choice(letters)
    pool = "aeioulnrst" if name[i].isascii() else "가나다라마바사아자차"
    return name[:i] + rng.choice(pool.replace(name[i], "")) + name[i + 1 :]


def _logistic_fit(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised features: plain gradient descent, a little L2."""
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.5 * (z.T @ (p - y) / len(y) + 1e-3 * w)
        b -= 0.5 * float(np.mean(p - y))
    return w, b


def top_features(searcher, query: str, hide: bool = False) -> tuple[np.ndarray, str] | None:
    """The features and code of a query's best concept, when it is a dense match. With `hide`,
    the query's own text (and its spacing variants) takes no part in matching: a name is
    searched as an unseen synonym would be."""
    searcher.hidden = frozenset(searcher.table.exact.get(compact(query), []) if hide else [])
    try:
        hits = searcher.search(query, 2)
    finally:
        searcher.hidden = frozenset()
    if not hits or hits[0].match != "dense":
        return None
    top = hits[0]
    shape = query_shape(query, searcher.embedder)
    return features(top.score, top.margin, top.dense, top.lexical, shape), top.code


def fit(
    top: Callable[[str, bool], tuple[np.ndarray, str] | None],
    names: Sequence[tuple[str, str]],
    *,
    positives: int = 3000,
    negatives: int = 3000,
    seed: int = 0,
    none_rate: float = 0.97,
    progress: Callable[[int, int], object] | None = None,
) -> tuple[Calibration, dict]:
    """Fit the calibration on generated queries.

    Args:
        top: features and code of a query's best dense match, the query's own text hidden
            when the flag is set (`top_features` on an uncalibrated searcher), None for a code
            or exact match.
        names: (code, name) pairs of the dictionary; each positive is a name damaged or, every
            other one, searched with its text hidden; the answer is right when it is in the
            name's 3-character category (the dev sets' rule).
        none_rate: the share of nonsense queries that must fall under "no good match".
    """
    rng = random.Random(seed)
    rows, labels, kinds = [], [], []
    total = positives + negatives
    for done, (code, name) in enumerate(rng.sample(list(names), min(positives, len(names))), start=1):
        hidden = done % 2 == 0
        found = top(name, True) if hidden else top(damaged(name, rng), False)
        if found is not None:
            rows.append(found[0])
            labels.append(float(found[1][:3] == code[:3]))
            kinds.append("hidden" if hidden else "damaged")
        if progress is not None and done % 100 == 0:
            progress(done, total)
    for done in range(negatives):
        found = top(nonsense(rng), False)
        if found is not None:
            rows.append(found[0])
            labels.append(0.0)
            kinds.append("nonsense")
        if progress is not None and done % 100 == 0:
            progress(positives + done, total)
    x, y, kinds = np.array(rows), np.array(labels), np.array(kinds)
    real = kinds != "nonsense"
    if real.all() or not real.any():
        raise ValueError("the calibration needs results of names and of nonsense strings")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    w, b = _logistic_fit(z[real], y[real])
    real_w, real_b = _logistic_fit(z, real.astype(np.float64))
    realness = 1 / (1 + np.exp(-(z[~real] @ real_w + real_b)))
    calibration = Calibration(
        tuple(w),
        b,
        tuple(mean),
        tuple(scale),
        NONE_BELOW,
        real_weights=tuple(real_w),
        real_bias=real_b,
        real_below=float(np.quantile(realness, none_rate)),
    )
    p = np.array([calibration.probability(row) for row in x])
    bins = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(p, bins) - 1, 0, 9)

    def reliability(i: int) -> dict:
        inside = real & (which == i)  # what a user who types a name may expect
        return {
            "bin": f"{bins[i]:.1f}-{bins[i + 1]:.1f}",
            "n": int(inside.sum()),
            "predicted": float(p[inside].mean()) if inside.any() else None,
            "observed": float(y[inside].mean()) if inside.any() else None,
        }

    report = {
        "queries": {kind: int((kinds == kind).sum()) for kind in ("damaged", "hidden", "nonsense")},
        "features": list(FEATURES),
        "reliability": [reliability(i) for i in range(10)],
        "nonsense_no_good_match": float((p[~real] < NONE_BELOW).mean()),
        "names_no_good_match": float((p[real] < NONE_BELOW).mean()),
        **{
            f"{kind}_right_above_low": float(
                (p[(kinds == kind) & (y == 1)] >= calibration.medium_from).mean()
            )
            for kind in ("damaged", "hidden")
            if ((kinds == kind) & (y == 1)).any()
        },
    }
    return calibration, report


def calibrate(searcher, *, queries: int = 3000, progress: Callable[[int, int], object] | None = None) -> dict:
    """Fit the calibration of `searcher`'s bundle on its dictionary and store it in the bundle;
    returns the report."""
    searcher.calibration = None  # fit on raw features
    names = [(code, t.text) for code, t in searcher.dictionary.terms() if t.source != "user"]
    calibration, report = fit(
        lambda q, hide: top_features(searcher, q, hide),
        names,
        positives=queries,
        negatives=queries,
        progress=progress,
    )
    calibration.save(searcher.embedder.directory, report=report)
    searcher.calibration = calibration
    return report
