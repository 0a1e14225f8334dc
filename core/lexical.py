"""A character n-gram TF-IDF index (numpy only): the lexical signal fused with the dense
score, and the benchmark's lexical baseline. Spacing- and punctuation-insensitive."""

from __future__ import annotations

import math
import zipfile
from array import array
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .fsutil import atomic_file
from .text import compact, decompose_hangul

NGRAMS = (2, 3, 4)
ARRAYS = ("idf", "doc_ids", "weights", "offsets")
# stored with the index: a change here invalidates saved ones
FORMAT = f"char-ngrams {NGRAMS} jamo unit-u16 v4"


def _key(text: str) -> str:
    """The compact text with Hangul written out as jamo (a slip in one jamo then changes one
    letter, not a whole syllable), padded at both ends."""
    return f"#{decompose_hangul(compact(text))}#"


def char_ngrams(text: str) -> Counter[str]:
    """Character 2-, 3- and 4-grams of the padded jamo key."""
    key = _key(text)
    grams: Counter[str] = Counter()
    for n in NGRAMS:
        grams.update(key[i : i + n] for i in range(max(1, len(key) - n + 1)))
    return grams


class CharNgramIndex:
    """Cosine similarity of TF-IDF character n-gram vectors, via an inverted index
    (postings stored as one CSR-style array: gram → slice of doc ids and weights)."""

    CHUNK = 8192  # texts whose postings are gathered at once while building
    SCALE = 65535  # a stored weight of 65,535 is a text's whole norm
    SLICE = 1 << 20  # postings weighted at once while building

    def __init__(self, texts: Sequence[str], *, idf_from: CharNgramIndex | None = None) -> None:
        """Index `texts`; with `idf_from`, weight n-grams by that index's IDF, so that scores
        of these texts compare with that index's (local synonyms beside the dictionary)."""
        self.reference = idf_from
        vocab: dict[str, int] = {}
        grams, docs, counts = [], [], []
        for start in range(0, len(texts), self.CHUNK):  # bounded memory: a (gram, doc) pair lies in one chunk
            chunk = self._postings(texts[start : start + self.CHUNK], start, vocab)
            for part, array_ in zip((grams, docs, counts), chunk):
                part.append(array_)
        self.size, self.vocab = len(texts), vocab
        gram_of = np.concatenate(grams) if grams else np.zeros(0, dtype=np.int32)
        doc_of = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int32)
        tf = np.concatenate(counts) if counts else np.zeros(0, dtype=np.uint16)
        del grams, docs, counts
        order = np.argsort(gram_of, kind="stable")  # by gram; docs stay ascending within one
        gram_of, doc_of, tf = gram_of[order], doc_of[order], tf[order]
        del order
        if idf_from is None:
            df = np.bincount(gram_of, minlength=len(vocab))
            self.idf = (np.log((1 + self.size) / (1 + df)) + 1.0).astype(np.float32)
        else:
            self.idf = np.array([idf_from.gram_idf(g) for g in vocab], dtype=np.float32)
        self.doc_ids = doc_of
        self.offsets = np.searchsorted(gram_of, np.arange(len(vocab) + 1))

        # each posting's TF-IDF weight divided by its text's norm, in 1/65,535ths: a text's
        # weights then need no norm at query time, and uint16 turns into floats faster than fp16
        def weight(a: int, b: int) -> np.ndarray:
            return tf[a:b] * self.idf[gram_of[a:b]].astype(np.float64)

        norms = np.zeros(self.size)
        for a, b in self._slices(len(tf)):  # float64 temporaries of every posting would cost ~200 MB
            norms += np.bincount(doc_of[a:b], weight(a, b) ** 2, minlength=self.size)
        norms = np.sqrt(np.maximum(norms, 1e-12))
        self.weights = np.empty(len(tf), dtype=np.uint16)
        for a, b in self._slices(len(tf)):
            self.weights[a:b] = np.rint(weight(a, b) / norms[doc_of[a:b]] * self.SCALE)

    def _slices(self, n: int) -> list[tuple[int, int]]:
        return [(a, min(a + self.SLICE, n)) for a in range(0, n, self.SLICE)]

    @staticmethod
    def _postings(texts: Sequence[str], first: int, vocab: dict[str, int]) -> tuple[np.ndarray, ...]:
        """(gram ids, doc ids, counts) of the distinct (gram, doc) pairs of `texts`, whose doc
        ids start at `first`, sorted by gram then doc; new n-grams are added to `vocab`."""
        docs, grams = array("i"), array("i")  # compact: a list of ints would cost ~100 MB at peak
        for doc, text in enumerate(texts, start=first):
            key = _key(text)
            for n in NGRAMS:
                for i in range(max(1, len(key) - n + 1)):
                    grams.append(vocab.setdefault(key[i : i + n], len(vocab)))
                    docs.append(doc)
        width = max(1, first + len(texts))
        pairs = np.frombuffer(grams, dtype=np.int32).astype(np.int64) * width
        pairs += np.frombuffer(docs, dtype=np.int32)
        unique, tf = np.unique(pairs, return_counts=True)
        gram_of, doc_of = np.divmod(unique, width)
        tf = np.minimum(tf, np.iinfo(np.uint16).max).astype(np.uint16)  # 65,535 repeats in one name: enough
        return gram_of.astype(np.int32), doc_of.astype(np.int32), tf

    def save(self, path: str | Path, *, key: str) -> None:
        """Write the index to one .npz file (atomically), tagged with `key` (what it was built
        from, e.g. the dictionary fingerprint). Loading it back avoids a second build and the
        heap fragmentation that building leaves behind."""
        grams = np.array(list(self.vocab), dtype=str)
        with atomic_file(path) as handle:  # streamed: a buffer and its copy cost ~300 MB at peak
            np.savez(
                handle,
                key=np.array(f"{FORMAT}|{key}"),
                size=np.array(self.size),
                grams=grams,
                **{name: getattr(self, name) for name in ARRAYS},
            )

    @classmethod
    def load(cls, path: str | Path, *, key: str) -> CharNgramIndex | None:
        """The index saved at `path` if it was built from `key`; None if it is missing,
        unreadable or built from something else."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != f"{FORMAT}|{key}":
                    return None
                index = cls([])
                index.size = int(data["size"])
                index.vocab = {gram: i for i, gram in enumerate(data["grams"].tolist())}
                for name in ARRAYS:
                    setattr(index, name, data[name])
        except (OSError, ValueError, KeyError, EOFError, NotImplementedError, zipfile.BadZipFile):
            return None  # missing, empty, damaged or of another format: build it again
        if len(index.offsets) != len(index.vocab) + 1 or len(index.doc_ids) != len(index.weights):
            return None
        return index

    def gram_idf(self, gram: str) -> float:
        """The IDF of an n-gram; one that no text has gets the IDF of a document frequency of 0."""
        if self.reference is not None:
            return self.reference.gram_idf(gram)
        g = self.vocab.get(gram)
        return float(self.idf[g]) if g is not None else math.log(1 + self.size) + 1.0

    def _query(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The query's n-grams that some text has (their ids) and their weights, scaled so that
        a text's cosine is the sum of these times its stored weights. The query's norm counts
        all its n-grams, those no text has included."""
        grams, weights, norm = [], [], 0.0
        for gram, tf in char_ngrams(query).items():
            weight = tf * self.gram_idf(gram)
            norm += weight * weight
            g = self.vocab.get(gram)
            if g is not None:
                grams.append(g)
                weights.append(weight)
        return np.array(grams, dtype=np.int64), np.array(weights, dtype=np.float64) / (
            self.SCALE * math.sqrt(norm)
        )

    def _accumulate(self, grams: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Σ weight × stored weight over the postings of `grams`, for every text (float64)."""
        starts, ends = self.offsets[grams], self.offsets[grams + 1]
        ids = np.concatenate([self.doc_ids[a:b] for a, b in zip(starts, ends)])
        stored = np.concatenate([self.weights[a:b] for a, b in zip(starts, ends)]).astype(np.float64)
        stored *= np.repeat(weights, ends - starts)
        return np.bincount(ids, stored, minlength=self.size)

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query to every text (zeros where nothing is shared)."""
        grams, weights = self._query(query)
        if not len(grams):
            return np.zeros(self.size, dtype=np.float32)
        scores = self._accumulate(grams, weights).astype(np.float32)
        return np.minimum(scores, 1.0, out=scores)  # rounding of the stored weights: up to ~1e-5 over

    def query(self, text: str, *, postings: int = 30_000) -> LexicalQuery:
        """A query against this index for a few texts' cosines (`LexicalQuery`), cheaper than
        `scores` when the query is long and shares common n-grams with most texts. (A budget
        of 30,000 postings instead of 100,000 took ~0.5 ms off a query of the benchmark on this
        project's 2-core VM; over 1,000 queries of the benchmark's kind no top hit changed,
        2 top-5 lists did, session 22.)"""
        return LexicalQuery(self, text, postings=postings)

    def top(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scores(query)
        k = min(k, self.size)
        best = np.argpartition(-scores, k - 1)[:k] if k < self.size else np.arange(self.size)
        best = best[np.argsort(-scores[best], kind="stable")]
        return best, scores[best]


class LexicalQuery:
    """One query against a CharNgramIndex: the texts near it and the cosines of chosen texts.

    Gathering the postings of every n-gram is most of the cost of `scores` for a long query:
    it shares a common n-gram ("on", "is") with most texts. Here the rarest n-grams, whose
    postings add up to `postings` (the rarest one at least), are scored for every text; the
    common rest only for the texts asked for, by binary search in their postings. A query
    whose postings all fit is scored in full at once.
    """

    def __init__(self, index: CharNgramIndex, text: str, *, postings: int) -> None:
        self.index = index
        grams, weights = index._query(text)
        lengths = index.offsets[grams + 1] - index.offsets[grams]
        order = np.argsort(lengths, kind="stable")
        rare = max(1, int(np.searchsorted(np.cumsum(lengths[order]), postings, side="right")))
        self.common = [(int(grams[i]), float(weights[i])) for i in order[rare:]]
        taken = order[:rare]
        self.partial = index._accumulate(grams[taken], weights[taken]) if len(grams) else np.zeros(index.size)

    def near(self, k: int) -> np.ndarray:
        """The (sorted) positions of the `k` texts of highest cosine, judged by the rare n-grams
        alone when there are common ones: a text that shares only common n-grams with the
        query scores low on them anyway, so this is nearly always the exact top k. Only texts
        that share an n-gram are ranked: numpy partitions slowly where most values tie (at 0),
        and ranking all 106k texts cost ~0.4 ms more a query on this project's 2-core VM."""
        shared = np.flatnonzero(self.partial > 0)
        if k < len(shared):
            shared = shared[np.argpartition(-self.partial[shared], k - 1)[:k]]
        return np.sort(shared)

    def scores(self, ids: np.ndarray) -> np.ndarray:
        """The exact cosines of the texts `ids` (a sorted array of distinct positions)."""
        index = self.index
        ids = np.asarray(ids, dtype=np.int64)
        total = self.partial[ids]
        for g, weight in self.common:
            a, b = index.offsets[g], index.offsets[g + 1]
            postings = index.doc_ids[a:b]
            at = np.minimum(np.searchsorted(postings, ids), b - a - 1)
            shared = postings[at] == ids
            total[shared] += weight * index.weights[a + at[shared]]
        return np.minimum(total, 1.0).astype(np.float32)  # rounding of the stored weights: up to ~1e-5 over
