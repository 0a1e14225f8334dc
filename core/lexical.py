"""A character n-gram TF-IDF index (numpy only): the lexical signal fused with the dense
score, and the benchmark's lexical baseline. Spacing- and punctuation-insensitive."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .text import compact

NGRAMS = (2, 3)


def char_ngrams(text: str) -> Counter[str]:
    """Character 2- and 3-grams of the compact text, with word-boundary padding."""
    key = f"#{compact(text)}#"
    grams: Counter[str] = Counter()
    for n in NGRAMS:
        grams.update(key[i : i + n] for i in range(max(1, len(key) - n + 1)))
    return grams


class CharNgramIndex:
    """Cosine similarity of TF-IDF character n-gram vectors, via an inverted index."""

    def __init__(self, texts: Sequence[str]) -> None:
        counts = [char_ngrams(t) for t in texts]
        df: Counter[str] = Counter()
        for grams in counts:
            df.update(grams.keys())
        n = len(texts)
        self.size = n
        self.idf = {g: math.log((1 + n) / (1 + c)) + 1.0 for g, c in df.items()}
        postings: dict[str, tuple[list[int], list[float]]] = {}
        norms = np.zeros(n, dtype=np.float32)
        for doc, grams in enumerate(counts):
            for gram, tf in grams.items():
                weight = tf * self.idf[gram]
                ids, weights = postings.setdefault(gram, ([], []))
                ids.append(doc)
                weights.append(weight)
                norms[doc] += weight * weight
        self.postings = {g: (np.asarray(i, dtype=np.int32), np.asarray(w, dtype=np.float32))
                         for g, (i, w) in postings.items()}
        self.norms = np.sqrt(np.maximum(norms, 1e-12))

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query to every text (zeros where nothing is shared)."""
        out = np.zeros(self.size, dtype=np.float32)
        grams = char_ngrams(query)
        q_norm = 0.0
        for gram, tf in grams.items():
            weight = tf * self.idf.get(gram, 0.0)
            q_norm += weight * weight
            posting = self.postings.get(gram)
            if posting is not None:
                np.add.at(out, posting[0], weight * posting[1])
        if q_norm == 0:
            return out
        return out / (self.norms * math.sqrt(q_norm))

    def top(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scores(query)
        k = min(k, self.size)
        best = np.argpartition(-scores, k - 1)[:k] if k < self.size else np.arange(self.size)
        best = best[np.argsort(-scores[best], kind="stable")]
        return best, scores[best]
