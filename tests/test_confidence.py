"""Confidence: fitted on generated queries, stored in the bundle, read into every result."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from core.bundle import Embedder, read_manifest
from core.confidence import Calibration, calibrate, damaged, nonsense, top_features
from core.dictionary import load_dictionary
from core.search import Searcher


@pytest.fixture()
def calibrated(small_kcd, tiny_bundle, cache, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    searcher = Searcher(load_dictionary(small_kcd), Embedder(bundle), cache=cache)
    report = calibrate(searcher, queries=150)
    assert searcher.calibration is not None  # in use at once
    return Searcher(load_dictionary(small_kcd), Embedder(bundle), cache=cache), report


def test_calibration_is_stored_in_the_bundle_and_read_back(calibrated):
    searcher, report = calibrated
    assert "calibration.json" in read_manifest(searcher.embedder.directory).files  # covered by its sha256
    assert searcher.calibration is not None
    assert report["queries"]["nonsense"] > 100 and sum(b["n"] for b in report["reliability"]) > 200
    hits = searcher.search("cirrhosis of liver alcoholic", 5)
    assert all(0.0 <= h.confidence <= 1.0 and h.level in ("high", "medium", "low", "none") for h in hits)
    assert hits[0].to_dict()["level"] == hits[0].level


def test_exact_and_code_matches_are_certain_and_missing_codes_are_said(calibrated):
    searcher, _ = calibrated
    exact = searcher.search("간의 기타 및 상세불명의 경변증", 3)[0]
    assert (exact.match, exact.confidence, exact.level) == ("exact", 1.0, "high")
    assert searcher.verdict("K74.6", searcher.search("K74.6", 3)) is None
    assert searcher.verdict("Z99.99", searcher.search("Z99.99", 3)) == "code not found"


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
