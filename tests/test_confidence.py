"""Confidence: fitted on generated queries, stored in the bundle, read into every result."""

from __future__ import annotations

import dataclasses
import random
import shutil

import numpy as np
import pytest

from core.bundle import Embedder, read_manifest
from core.confidence import Calibration, damaged, nonsense, top_features
from core.dictionary import load_dictionary
from core.search import Searcher


def test_calibration_is_stored_in_the_bundle_and_read_back(calibrated):
    searcher, report = calibrated
    assert "calibration.json" in read_manifest(searcher.embedder.directory).files  # covered by its sha256
    assert searcher.calibration is not None
    queries = report["queries"]
    assert queries["nonsense"] > 100  # the reliability diagram is that of the queries naming something
    assert sum(b["n"] for b in report["reliability"]) == queries["hidden"] + queries["damaged"]
    hits = searcher.search("cirrhosis of liver alcoholic", 5)
    assert all(0.0 <= h.confidence <= 1.0 and h.level in ("high", "medium", "low", "none") for h in hits)
    assert hits[0].to_dict()["level"] == hits[0].level


def test_exact_and_code_matches_are_certain_and_missing_codes_are_said(calibrated):
    searcher, _ = calibrated
    exact = searcher.search("간의 기타 및 상세불명의 경변증", 3)[0]
    assert (exact.match, exact.confidence, exact.level) == ("exact", 1.0, "high")
    assert searcher.verdict("K74.6", searcher.search("K74.6", 3)) is None
    assert searcher.verdict("Z99.99", searcher.search("Z99.99", 3)) == "code not found"


def test_a_text_that_names_concepts_of_several_categories_is_not_certain(calibrated, small_kcd, cache):
    """An exact match was certain (1.0, "high") even when its text names concepts of several
    categories (당뇨: diabetes in clinicians' usage, glycosuria in KCD-8's): each now gets 1 / n."""
    searcher, _ = calibrated
    dictionary = load_dictionary(small_kcd)
    dictionary.add_synonyms(
        [("K74.6", "hepatofibrous knot"), ("K74.60", "hepatofibrous knot")], source="curated"
    )
    dictionary.add_synonyms([("I10", "hepatofibrous knot"), ("E11.9", "sclerohepatic knot")], source="kmed")
    dictionary.add_synonyms([("J18.9", "sclerohepatic knot"), ("A00.0", "sclerohepatic knot")], source="kmed")
    ambiguous = Searcher(dictionary, Embedder(searcher.embedder.directory), cache=cache)
    two = [h for h in ambiguous.search("hepatofibrous knot", 5) if h.match == "exact"]
    assert sorted(h.code for h in two) == ["I10", "K74.6", "K74.60"]  # two categories
    assert {(h.confidence, h.level) for h in two} == {(0.5, "medium")}
    three = [h for h in ambiguous.search("sclerohepatic knot", 5) if h.match == "exact"]
    assert len(three) == 3 and {(round(h.confidence, 6), h.level) for h in three} == {(0.333333, "low")}
    assert ambiguous.verdict("sclerohepatic knot", three) is None  # not "no good match"
    single = ambiguous.search("간의 기타 및 상세불명의 경변증", 3)[0]
    assert (single.confidence, single.level) == (1.0, "high")


def test_the_last_hit_shown_is_scored_against_the_next_one_unseen(calibrated):
    """A hit's margin is over the next concept even when that one is not shown: the k-th of k
    results has the confidence it has among more (mutation testing: the search stopped at k)."""
    searcher, _ = calibrated
    query = "cirrhosis of liver alcoholic"
    many = searcher.search(query, 10)
    for k in (2, 3, 5):
        few = searcher.search(query, k)
        assert [h.code for h in few] == [h.code for h in many[:k]]
        assert few[-1].confidence == pytest.approx(many[k - 1].confidence)


def _margin(hits, i):
    """The rule, written out: the first hit leads the second, every other one trails the first."""
    return hits[i].score - (hits[1].score if i == 0 else hits[0].score)


def test_each_hit_gets_the_probability_of_its_own_features(calibrated):
    """A dense hit's confidence is the calibration's probability of its score, its margin over
    the best other hit, its two signals and the query's shape; code and exact matches are certain (mutation testing: each feature dropped, the margin's
    sign or rival, code matches scored like dense ones)."""
    from core.confidence import features, query_shape

    searcher, _ = calibrated
    query = "cirrhosis of liver alcoholic"
    shape = query_shape(query, searcher.embedder)

    def expected(hit, margin):
        return searcher.calibration.probability(features(hit.score, margin, hit.dense, hit.lexical, shape))

    hits = searcher.search(query, 10)
    checked = [(h, _margin(hits, i)) for i, h in enumerate(hits) if h.match == "dense"]
    assert len(checked) == 10 and checked[0][1] > 0 > checked[-1][1]
    for hit, margin in checked:
        assert hit.margin == pytest.approx(margin)
        assert hit.confidence == pytest.approx(expected(hit, margin))
        assert hit.level == searcher.calibration.level(hit.confidence)
    code = searcher.search("K74.6", 3)[0]
    assert (code.match, code.confidence, code.level) == ("code", 1.0, "high")


def test_no_hit_leads_more_than_the_first_whatever_follows_it():
    """asdfgh matched "ASD" for three concepts at one score; the third read "high" for its lead
    over an unrelated fourth. Now each hit but the first is measured against the first."""
    from core.confidence import margins

    assert margins([0.72, 0.72, 0.72, 0.62]) == pytest.approx([0.0, 0.0, 0.0, -0.1])
    assert margins([0.9, 0.8, 0.5]) == pytest.approx([0.1, -0.1, -0.4])
    assert margins([0.7]) == pytest.approx([0.7])
    assert margins([]) == []


def test_no_good_match_is_said_when_the_best_hit_is_below_the_threshold(calibrated):
    from dataclasses import replace

    searcher, _ = calibrated
    first, second = searcher.search("cirrhosis of liver alcoholic", 2)
    good, poor = replace(first, level="high"), replace(second, level="none")
    assert searcher.verdict("liver", []) == "no good match"
    assert searcher.verdict("liver", [poor, good]) == "no good match"
    assert searcher.verdict("liver", [good, poor]) is None  # only the best one decides


def test_levels_follow_the_thresholds():
    calibration = Calibration((1.0,) * 6, 0.0, (0.0,) * 6, (1.0,) * 6, none_below=0.2)
    assert [calibration.level(p) for p in (0.1, 0.3, 0.5, 0.9)] == ["none", "low", "medium", "high"]
    low, high = (calibration.probability(np.full(6, v)) for v in (-1.0, 1.0))
    assert low < 0.5 < high


def test_generated_queries_are_damaged_names_and_nonsense():
    rng = random.Random(0)
    name = "other and unspecified cirrhosis of liver"
    variants = {damaged(name, rng) for _ in range(50)}
    assert name not in variants and len(variants) > 10
    assert all(1 <= len(nonsense(rng)) <= 12 for _ in range(50))


def test_a_hidden_name_is_searched_as_an_unseen_synonym(small_kcd, tiny_bundle, cache):
    searcher = Searcher(load_dictionary(small_kcd), Embedder(bundle := tiny_bundle), cache=cache)
    name = "알콜성 간경변증"  # K70.3
    assert top_features(searcher, name) is None  # an exact match: nothing to calibrate
    x, code = top_features(searcher, name, hide=True)
    own = searcher.table.texts.index(name)
    vector = Embedder(bundle).encode(name)
    assert float(x[2]) < float(searcher.index.vectors([own])[0] @ vector) - 1e-3  # not its own vector
    assert searcher.hidden == frozenset() and searcher.search(name, 1)[0].match == "exact"
    searcher.hidden = frozenset([own])  # neither index may offer the hidden text as a candidate
    pool, *_ = searcher._dense_candidates(name, [name], 0)
    assert len(pool) > 0 and own not in pool.tolist()


def test_the_report_counts_each_kind_of_generated_query(calibrated):
    _, report = calibrated
    assert report["queries"]["hidden"] > 50 and report["queries"]["damaged"] > 50
    assert 0.0 <= report["hidden_right_above_low"] <= 1.0


def test_query_shape_counts_word_pieces_and_hangul_per_character(tiny_bundle):
    from tokenizers import Tokenizer

    from core.confidence import query_shape

    embedder = Embedder(tiny_bundle)
    tokenizer = Tokenizer.from_file(str(tiny_bundle / "tokenizer.json"))
    assert query_shape(" . ", embedder) == (0.0, 0.0)  # nothing to read
    pieces = len(tokenizer.encode("liver", add_special_tokens=False).ids)
    assert query_shape("liver", embedder) == (pieces / 5, 0.0)
    assert query_shape("가힣 ㄱㅣ", embedder)[1] == 1.0  # the ends of the syllable and jamo blocks
    assert query_shape("liver 간", embedder)[1] == 1 / 6  # spacing does not count
    embedder.encode(["LIVER", "kidney failure"])  # counted while embedding (normalised): the same
    assert query_shape("liver", embedder) == (pieces / 5, 0.0)
    failure = len(tokenizer.encode("kidney failure", add_special_tokens=False).ids)
    assert embedder.pieces("kidney failure") == failure


def test_probability_standardises_the_features_and_levels_start_at_their_thresholds():
    calibration = Calibration((1.0, -2.0), 0.5, (1.0, 2.0), (2.0, 4.0), none_below=0.2)
    z = (3.0 - 1.0) / 2.0 * 1.0 + (0.0 - 2.0) / 4.0 * -2.0 + 0.5  # 2.5
    assert calibration.probability(np.array([3.0, 0.0])) == pytest.approx(1 / (1 + np.exp(-z)))
    assert calibration.probability(np.array([1e9, 0.0])) == 1.0  # clipped, no overflow
    edges = (calibration.high_from, calibration.medium_from, calibration.none_below)
    assert [calibration.level(p) for p in edges] == ["high", "medium", "low"]
    # with a model of whether the query names anything: below its threshold, probability 0
    two = dataclasses.replace(calibration, real_weights=(0.0, 1.0), real_bias=0.0, real_below=0.5)
    assert two.probability(np.array([3.0, 0.0])) == 0.0  # realness 1 / (1 + e^0.5) < 0.5
    z = (3.0 - 1.0) / 2.0 * 1.0 + (4.0 - 2.0) / 4.0 * -2.0 + 0.5  # 0.5; realness 1 / (1 + e^-0.5)
    assert two.probability(np.array([3.0, 4.0])) == pytest.approx(1 / (1 + np.exp(-z)))


def test_a_calibration_reads_back_equal_and_a_damaged_file_names_itself(tmp_path, tiny_bundle):
    import json

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    calibration = Calibration(
        (1.0, 2.0), 0.5, (0.0, 1.0), (1.0, 2.0), none_below=0.2, real_weights=(0.5, 0.5), real_below=0.3
    )
    calibration.save(bundle, report={"queries": {}})
    assert Calibration.load(bundle) == calibration  # tuples, not lists
    data = json.loads((bundle / "calibration.json").read_text())
    del data["report"]
    (bundle / "calibration.json").write_text(json.dumps(data))
    assert Calibration.load(bundle) == calibration  # the report is optional
    (bundle / "calibration.json").write_text("{")
    with pytest.raises(ValueError, match="calibration.json: unreadable"):
        Calibration.load(bundle)


def test_each_damaged_form_is_one_of_the_four_slips():
    rng = random.Random(1)
    name = "other and unspecified cirrhosis"
    words = name.split()
    dropped = {" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))}
    prefixes = {" ".join(words[:n]) for n in range(2, len(words))}
    kinds = set()
    for _ in range(300):
        form = damaged(name, rng)
        if form in dropped:
            kinds.add("dropped")
        elif form in prefixes:
            kinds.add("prefix")
        elif form == name.replace(" ", ""):
            kinds.add("spacing")
        else:  # one letter replaced by another lower-case one
            assert len(form) == len(name)
            (i,) = [i for i, (a, b) in enumerate(zip(form, name)) if a != b]
            assert form[i] in "aeioulnrst" and name[i].isalpha()
            kinds.add("slip")
    assert kinds == {"dropped", "prefix", "spacing", "slip"}
    korean = {damaged("간경화", rng) for _ in range(30)}
    assert all(len(f) == 3 and sum(a != b for a, b in zip(f, "간경화")) == 1 for f in korean)
    assert all(set(f) - set("간경화") <= set("가나다라마바사아자차") for f in korean)
    assert damaged("12", rng) == "122"  # no letter to slip: the last character doubled
    assert damaged("123", rng) == "1233"
    # a name of three words is cut to its first two as often as it loses a word (a fifth of the
    # time each): spacing is lost a tenth of the time, not three tenths
    three = [damaged("alcoholic liver cirrhosis", rng) for _ in range(1000)]
    assert 0.05 < three.count("alcoholiclivercirrhosis") / 1000 < 0.15
    # a word is dropped from names of three words or more, never from two
    assert "cirrhosis" not in {damaged("liver cirrhosis", rng) for _ in range(100)}
    assert "liver cirrhosis" in {damaged("alcoholic liver cirrhosis", rng) for _ in range(100)}


def test_nonsense_strings_mix_one_or_two_alphabets_of_2_to_12_characters():
    from core.confidence import _NOISE_ALPHABETS

    rng = random.Random(3)
    strings = [nonsense(rng) for _ in range(2000)]
    assert {len(s) for s in strings} == set(range(2, 13))
    mixed = [sum(bool(set(s) & set(a)) for a in _NOISE_ALPHABETS) for s in strings]
    assert set(mixed) == {1, 2}
    assert all(set(s) <= set("".join(_NOISE_ALPHABETS)) for s in strings)


def test_top_features_are_those_of_the_best_dense_hit(small_kcd, tiny_bundle, cache):
    from core.confidence import features, query_shape

    searcher = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache)
    query = "cirrhosis of liver alcoholic"
    hits = searcher.search(query, 10)
    first = hits[0]
    assert first.match == "dense"
    x, code = top_features(searcher, query)
    shape = query_shape(query, searcher.embedder)
    expected = features(first.score, first.score - hits[1].score, first.dense, first.lexical, shape)
    assert code == first.code and np.allclose(x, expected) and x[1] > 0


def _scored_top(query, hide):
    """A stand-in for `top_features`: a name's result is right about as often as its score
    says; nonsense (no "#") scores lower and has more word pieces per character."""
    from core.confidence import features

    draw = random.Random(query)
    if "#" not in query:
        score = draw.uniform(0.4, 0.8)
        return features(score, 0.1, score, 0.5, (draw.uniform(0.3, 1.0), 0.0)), "C00"
    score = draw.uniform(0.5, 1.0)
    code = "A00.9" if draw.random() < score else "B00.0"  # right: the name's category (A00.0's)
    return features(score, 0.1, score, 0.5, (draw.uniform(0.2, 0.6), 0.0)), code


SCORED_NAMES = [("A00.0", f"#{i} #{i * 7}") for i in range(600)]


def test_a_results_probability_does_not_depend_on_how_much_nonsense_was_generated():
    """The probability that a result is right is learned from queries that name something;
    fitted together with the nonsense, it fell for every name as more nonsense was generated."""
    from core.confidence import features, fit

    few, _ = fit(_scored_top, SCORED_NAMES, positives=600, negatives=100)
    many, _ = fit(_scored_top, SCORED_NAMES, positives=600, negatives=2000)
    name = features(0.75, 0.1, 0.75, 0.5, (0.3, 0.0))
    assert few.probability(name) == pytest.approx(0.75, abs=0.05)
    assert many.probability(name) == pytest.approx(few.probability(name), abs=0.02)  # was 0.80 → 0.61
    assert many.level(many.probability(features(0.5, 0.1, 0.5, 0.5, (0.9, 0.0)))) == "none"


def test_the_fit_hides_every_other_name_follows_the_score_reports_progress_and_is_reproducible():
    from core.confidence import features, fit

    hides, progress = [], []

    def top(query, hide):
        hides.append(hide)
        return _scored_top(query, hide)

    first, report = fit(
        top, SCORED_NAMES, positives=600, negatives=250, progress=lambda *a: progress.append(a)
    )
    assert hides[:600] == [False, True] * 300 and not any(hides[600:])  # damaged, hidden; nonsense
    every_100 = (100, 200, 300, 400, 500, 600, 600, 700, 800)  # names, then nonsense from 600 on
    assert progress == [(done, 850) for done in every_100]
    assert fit(_scored_top, SCORED_NAMES, positives=600, negatives=250)[0] == first  # seeded
    low, high = (first.probability(features(s, 0.1, s, 0.5, (0.25, 0.0))) for s in (0.7, 0.95))
    assert low == pytest.approx(0.7, abs=0.05) and high == pytest.approx(0.93, abs=0.05)
    # the threshold leaves 97 % of the nonsense under it; the diagram has ten bands of 0.1
    assert report["nonsense_no_good_match"] == pytest.approx(0.97, abs=0.01)
    bands = report["reliability"]
    assert [b["bin"] for b in bands] == [f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)]
    assert all(i / 10 <= b["predicted"] <= (i + 1) / 10 for i, b in enumerate(bands) if b["n"])


def test_the_fit_refuses_generated_queries_of_one_kind():
    from core.confidence import fit

    def only(names: bool):  # a dense result for the names alone, or for the nonsense alone
        return lambda query, hide: _scored_top(query, hide) if ("#" in query) == names else None

    message = "^the calibration needs results of names and of nonsense strings$"
    for top in (only(names=True), only(names=False)):
        with pytest.raises(ValueError, match=message):
            fit(top, SCORED_NAMES, positives=100, negatives=100)


def test_the_fit_report_is_what_the_fitted_calibration_says_about_the_generated_queries():
    """Recomputed here from each generated query's features, kind and answer."""
    from core.confidence import FEATURES, fit

    calls = []

    def top(query, hide):
        calls.append((hide, *_scored_top(query, hide)))
        return calls[-1][1:]

    calibration, report = fit(top, SCORED_NAMES, positives=600, negatives=250)
    kinds = ["hidden" if hide else "damaged" for hide, _, _ in calls[:600]] + ["nonsense"] * 250
    p = np.array([calibration.probability(x) for _, x, _ in calls])
    right = np.array([code.startswith("A00") for _, _, code in calls])
    names, kinds = np.arange(850) < 600, np.array(kinds)
    band = np.minimum((p * 10).astype(int), 9)
    expected_bands = [
        {
            "bin": f"{i / 10:.1f}-{(i + 1) / 10:.1f}",
            "n": int((names & (band == i)).sum()),
            "predicted": p[names & (band == i)].mean() if (names & (band == i)).any() else None,
            "observed": right[names & (band == i)].mean() if (names & (band == i)).any() else None,
        }
        for i in range(10)
    ]
    assert report == {
        "queries": {"damaged": 300, "hidden": 300, "nonsense": 250},
        "features": list(FEATURES),
        "reliability": [pytest.approx(band) for band in expected_bands],
        "nonsense_no_good_match": pytest.approx((p[~names] < 0.05).mean()),
        "names_no_good_match": pytest.approx((p[names] < 0.05).mean()),
        "damaged_right_above_low": pytest.approx((p[(kinds == "damaged") & right] >= 0.35).mean()),
        "hidden_right_above_low": pytest.approx((p[(kinds == "hidden") & right] >= 0.35).mean()),
    }
    assert 0 < report["names_no_good_match"] < 1 and expected_bands[0]["n"] > 0  # not all alike


def test_the_report_leaves_out_a_kind_of_name_that_never_found_its_concept():
    from core.confidence import fit

    def hidden_always_wrong(query, hide):
        x, code = _scored_top(query, hide)
        return x, "B00.0" if hide else code

    _, report = fit(hidden_always_wrong, SCORED_NAMES, positives=200, negatives=100)
    assert "damaged_right_above_low" in report and "hidden_right_above_low" not in report
