import numpy as np
import pytest

from core.bench import DevQuery, dev_accuracy, latency_queries, render
from core.evaluation import Names, format_table, rank_metrics, summarize


def test_dev_accuracy_by_kind_with_category_prefixes():
    queries = [
        DevQuery("당뇨", ("E10", "E11", "E14"), "ko"),
        DevQuery("MI", ("I21",), "abbrev", listed=True),
        DevQuery("x", ("A00",), "abbrev"),
    ]
    ranked = {"당뇨": ["E11.9", "E14"], "MI": ["I25", "I21.0"], "x": []}
    result = dev_accuracy(queries, lambda q: ranked[q])
    kinds = result["by_kind"]
    assert kinds["ko"] == {"acc1": 100.0, "acc5": 100.0, "n": 1}
    assert kinds["abbrev"]["acc1"] == 0.0 and kinds["abbrev"]["acc5"] == 50.0
    assert kinds["overall"]["acc5"] == pytest.approx(200 / 3)
    assert kinds["unlisted"] == {"acc1": 50.0, "acc5": 50.0, "n": 2}  # MI is named by the curated list
    assert [m["query"] for m in result["misses"]] == ["MI", "x"]


def test_rank_metrics_code_or_exact_text_and_exclusion():
    candidates = np.eye(3, dtype=np.float32)
    queries = np.array([[0.1, 1, 0], [1, 0.5, 0]], dtype=np.float32)
    m = rank_metrics(queries, ["B", "C"], ["b", "same"], candidates, ["A", "B", "C"], ["a", "b", "same"])
    assert m["acc1"] == 50.0 and m["acc5"] == 100.0  # second query: C ranks third
    excluded = rank_metrics(
        queries,
        ["B", "C"],
        ["b", "same"],
        candidates,
        ["A", "B", "C"],
        ["a", "b", "same"],
        exclude_texts=["b", "x"],
    )
    assert excluded["acc1"] == 0.0  # the only gold candidate of query 1 was excluded
    # queries go through in chunks: one at a time, the same figures over the same two queries
    one_by_one = rank_metrics(
        queries, ["B", "C"], ["b", "same"], candidates, ["A", "B", "C"], ["a", "b", "same"], chunk=1
    )
    assert one_by_one == m
    assert summarize([1, 2, 0, 6])["mrr10"] == (1 + 0.5 + 1 / 6) / 4 * 100


def test_ranks_miss_beyond_ten_keep_ties_in_candidate_order_and_leave_the_scores_alone():
    from core.evaluation import ranks_from_scores

    codes = np.array([f"C{i}" for i in range(40)], dtype=object)
    texts = np.array([f"t{i}" for i in range(40)], dtype=object)
    scores = np.linspace(1.0, 0.0, 40, dtype=np.float32)[None, :].repeat(3, axis=0)
    scores[2] = 0.5  # every candidate tied
    before = scores.copy()
    ranks = ranks_from_scores(
        scores, ["C10", "C3", "C25"], ["-", "-", "-"], codes, texts, exclude_texts=["t0", "x", "x"]
    )
    # C10 is 11th, 10th once t0 is excluded; C3 4th; in a 40-way tie C25 keeps its place (26th: a miss)
    assert ranks == [10, 4, 0]
    assert ranks_from_scores(scores[:1], ["C10"], ["-"], codes, texts) == [0]  # 11th: not in the top 10
    # many candidates in two tied groups (a quicksort reorders them): C4 is the third of the first
    many = np.array([[1.0, 0.5] * 150], dtype=np.float32)
    codes, texts = (np.array([f"{p}{i}" for i in range(300)], dtype=object) for p in "Ct")
    assert ranks_from_scores(many, ["C4"], ["-"], codes, texts) == [3]
    tied = ranks_from_scores(scores[2:], ["C7"], ["-"], codes, texts)
    assert tied == [8]  # a stable sort: ties in candidate order
    np.testing.assert_array_equal(scores, before)  # the caller's array is not written to


def test_summarize_counts_acc5_up_to_rank_five_and_never_a_miss():
    result = summarize([5, 6, 0, 1])
    assert result == {
        "acc1": 25.0,
        "acc5": 50.0,
        "mrr10": pytest.approx((1 / 5 + 1 / 6 + 1) / 4 * 100),
        "n": 4,
    }


def test_linking_candidates_can_be_restricted():
    from core.evaluation import evaluate_linking

    names = Names(["A", "B"], ["가", "나"], ["a", "b"])
    vectors = {
        "가": [1, 0],
        "나": [0, 1],
        "a": [0, 1],
        "b": [1, 0],
    }  # each Korean name nearer the other's English
    encode = lambda texts: np.array([vectors[t] for t in texts], dtype=np.float32)  # noqa: E731
    full = evaluate_linking(encode, names, queries=lambda code: code == "A", tasks=["ko2en"])
    alone = evaluate_linking(
        encode, names, queries=lambda code: code == "A", tasks=["ko2en"], candidates=lambda code: code == "A"
    )
    assert full["ko2en"]["acc1"] == 0.0 and alone["ko2en"]["acc1"] == 100.0


def test_each_linking_task_on_a_hand_made_dictionary():
    """Three codes; A and B share the Korean name 가. Ranks worked out by hand (ties keep the
    candidate order: Korean names first, then English)."""
    from core.evaluation import evaluate_linking

    vectors = {
        "가": [1, 0, 0],
        "다": [0, 0, 1],
        "a-en": [0.6, 0.8, 0],
        "b-en": [0.8, 0.6, 0],
        "c-en": [0, 1, 0],
    }
    names = Names(["A", "B", "C"], ["가", "가", "다"], ["a-en", "b-en", "c-en"])
    encode = lambda texts: np.array([vectors[t] for t in texts], dtype=np.float32)  # noqa: E731
    result = evaluate_linking(encode, names, queries=lambda code: True)
    # ko2en: A → b-en, a-en (rank 2); B → b-en (1); C → a-en, b-en, c-en (3)
    assert result["ko2en"]["acc1"] == pytest.approx(100 / 3) and result["ko2en"]["mrr10"] == pytest.approx(
        (1 / 2 + 1 + 1 / 3) / 3 * 100
    )
    # en2ko: a-en → 가(A) (1); b-en → 가(A) has B's text 가 too (1); c-en → all 0.6/0/0: 가(A) … 다 (3)
    assert result["en2ko"]["acc1"] == pytest.approx(200 / 3)
    # mixed: the query's own text 가 / 다 is never a candidate: A → b-en (2), B → b-en (1),
    # C → every remaining candidate scores 0 and c-en comes fifth
    assert result["mixed"]["acc1"] == pytest.approx(100 / 3)
    assert result["mixed"]["mrr10"] == pytest.approx((1 / 2 + 1 + 1 / 5) / 3 * 100)


def test_latency_queries_are_distinct_and_render_prints_tables():
    names = Names(
        [f"C{i}" for i in range(300)],
        [f"한국어 이름 {i} 번째" for i in range(300)],
        [f"english name {i} alpha" for i in range(300)],
    )
    queries = latency_queries(names, [DevQuery("당뇨", ("E14",), "ko")], count=200)
    assert len(queries) == len(set(queries)) == 200 and queries[0] == "당뇨"
    # names cut short, so that they take the dense path: the last word dropped, or a
    # name of two words or fewer cut to 70 %
    assert all(q.startswith(("english name ", "한국어 이름 ")) and len(q.split()) == 3 for q in queries[1:])
    short = Names(["A", "B"], ["간의 섬유증", "충수염"], ["chronic liver fibrosis", "appendicitis"])
    assert set(latency_queries(short, [], count=4)) == {"chronic liver", "충수"}  # one name a code, ko or en
    row = {t: {"acc1": 1.0, "acc5": 2.0, "mrr10": 1.5, "n": 1} for t in ("ko2en", "en2ko", "mixed")}
    row["dev"] = {"dev": {"by_kind": {"overall": {"acc1": 50.0, "acc5": 75.0, "n": 4}}, "misses": []}}
    text = render(
        {"name": "t", "machine": {"cpu": "cpu", "cores": 2}, "quality": {"model": row}, "speed": {}}
    )
    assert "ko2en" in text and "overall" in text
    # a kind that one row lacks (a baseline run on another query file) shows a dash, aligned
    other = {**row, "dev": {"dev": {"by_kind": {"typo": {"acc1": 25.0, "acc5": 50.0, "n": 4}}}}}
    lines = render(
        {"name": "t", "machine": {"cpu": "cpu", "cores": 2}, "quality": {"model": row, "zero": other}}
    ).splitlines()
    confidence = {
        "nonsense": {"no_good_match": 0.966, "n": 10000},
        "dev": {"above_low": 1.0, "right_at_1": 40},
        "longtail": {"above_low": None, "right_at_1": 0},
    }
    text = render(
        {"name": "t", "machine": {"cpu": "cpu", "cores": 2}, "quality": {}, "confidence": confidence}
    )
    assert text.splitlines()[-2:] == [
        "Confidence: 'no good match' for 96.6 % of 10000 random strings",
        "  dev: 100.0 % of 40 right answers at rank 1 above 'low'",
    ]
    header = lines.index(f"{'model':<24}{'typo':>15}{'overall':>15}")
    assert lines[header + 1 : header + 3] == [
        f"{'model':<24}{'-':>15}{50.0:>9.1f}{75.0:>6.1f}",
        f"{'zero':<24}{25.0:>9.1f}{50.0:>6.1f}{'-':>15}",
    ]


def test_the_linking_table_aligns_its_columns_and_marks_a_task_a_row_lacks():
    full = {"acc1": 63.54, "acc5": 84.7, "mrr10": 72.46, "n": 10}  # one decimal shown
    table = format_table(
        {"model": {"ko2en": full, "mixed": full}, "zero-shot": {"ko2en": {**full, "acc1": 5.0}}}
    )
    header = "model".ljust(28) + "ko2en @1/@5/MRR".rjust(24) + "mixed @1/@5/MRR".rjust(24)
    assert table.split("\n") == [
        header,
        "-" * 76,
        "model".ljust(28) + "      63.5   84.7   72.5" * 2,
        "zero-shot".ljust(28) + "       5.0   84.7   72.5" + "-".rjust(24),
    ]


def test_linking_names_are_each_codes_korean_and_english_name_codes_lacking_one_left_out():
    from core.dictionary import Concept, Dictionary, Term

    def concept(code, *terms):
        return Concept(code, "kcd", terms=[Term(text, lang) for text, lang in terms])

    dictionary = Dictionary(
        "d",
        {
            "A": concept("A", ("alpha", "en"), ("알파", "ko")),
            "B": concept("B", ("베타", "ko")),
            "C": concept("C", ("gamma", "en")),
            "D": concept("D", ("델타", "ko"), ("delta", "en")),
        },
    )
    names = Names.from_dictionary(dictionary)
    assert (names.codes, names.ko, names.en) == (["A", "D"], ["알파", "델타"], ["alpha", "delta"])


def _bench_tool(name: str = "heldout"):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_tool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_heldout_tool_reads_stored_vectors_and_embeds_the_rest(small_kcd, tiny_bundle, tmp_path):
    import json
    import shutil

    from core.bundle import Embedder
    from core.dictionary import load_dictionary
    from core.evaluation import evaluate_linking
    from core.index import attach_prebuilt
    from core.text import normalize

    tool = _bench_tool()
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    names = Names.from_dictionary(load_dictionary(small_kcd, "kcd"))
    out = tmp_path / "heldout.json"

    # no stored vectors: every name is embedded, as the benchmark would
    assert tool.main([str(bundle), "--kcd", str(small_kcd), "--out", str(out)]) == 0
    embedded = evaluate_linking(Embedder(bundle).encode, names)
    result = json.loads(out.read_text())
    for task, metrics in embedded.items():
        assert result["held_out"][str(bundle)][task] == pytest.approx(metrics)
    assert embedded["ko2en"]["n"] > 0 and embedded["ko2en"]["acc1"] < 100  # a tiny random model
    assert set(result["machine"]) >= {"git_commit", "git_dirty"} and result["bundles_sha256"][str(bundle)]

    # stored vectors that give each code's two names one random vector: read, they link perfectly
    rng = np.random.default_rng(0)
    dim = Embedder(bundle).encode(["x"]).shape[1]
    by_code = {code: rng.normal(size=dim) for code in names.codes}
    vectors = np.array([by_code[c] / np.linalg.norm(by_code[c]) for c in names.codes * 2], dtype=np.float32)
    attach_prebuilt(bundle, texts=[normalize(t) for t in names.ko + names.en], vectors=vectors)
    assert tool.main([str(bundle), "--kcd", str(small_kcd), "--out", str(out)]) == 0
    stored = json.loads(out.read_text())["held_out"][str(bundle)]
    assert {task: (m["acc1"], m["acc5"]) for task, m in stored.items()} == {
        "ko2en": (100.0, 100.0),
        "en2ko": (100.0, 100.0),
        "mixed": (100.0, 100.0),
    }

    # --dev: the dev sets through the product's search over the same dictionary, as scored directly
    from core.bench import dev_sets_accuracy, read_dev_sets
    from core.search import open_searcher

    dev, longtail = tmp_path / "dev.tsv", tmp_path / "longtail.tsv"
    dev.write_text("query\taccept\tkind\n간경변증\tK74\tko-formal\nK35\tK35\tcode\n", encoding="utf-8")
    longtail.write_text("query\taccept\tkind\nliver fibrosis\tK74\ten\n", encoding="utf-8")
    files = ["--dev-queries", str(dev), "--longtail-queries", str(longtail)]
    assert tool.main([str(bundle), "--kcd", str(small_kcd), "--out", str(out), "--dev", *files]) == 0
    scored = json.loads(out.read_text())["dev"][str(bundle)]
    sets = read_dev_sets({"dev": dev, "longtail": longtail}, curated=set(), imported=set())
    searcher = open_searcher(small_kcd, model=bundle, user_synonyms=tmp_path / "none.tsv", cache=tmp_path)
    direct = dev_sets_accuracy(sets, searcher)
    assert scored["dev"]["by_kind"]["overall"] == direct["dev"]["by_kind"]["overall"]
    assert scored["longtail"]["by_kind"]["overall"] == direct["longtail"]["by_kind"]["overall"]
    assert scored["dev"]["by_kind"]["code"]["acc1"] == 100.0  # a code finds itself
    assert [set_name for set_name in scored] == ["dev", "longtail"]


def test_machine_records_this_checkout_s_commit_its_state_and_the_cpu():
    """A results file's provenance: the commit, whether the tree was dirty, the CPU model."""
    import subprocess
    from pathlib import Path

    from core.bench import ROOT, machine

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    recorded = machine()
    head = git("rev-parse", "HEAD")
    if not head:
        pytest.skip("not a git checkout")
    assert recorded["git_commit"] == head
    assert recorded["git_dirty"] == bool(git("status", "--porcelain", "--untracked-files=no"))
    cpuinfo = Path("/proc/cpuinfo")
    models = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
    if models:
        assert recorded["cpu"] == models[0].split(":", 1)[1].strip()


def test_confidence_check_counts_rejected_nonsense_and_right_answers_above_low(calibrated):
    import random

    from core.bench import confidence_check
    from core.confidence import nonsense

    searcher, _ = calibrated
    dev = {
        "dev": [
            DevQuery("간의 기타 및 상세불명의 경변증", ("K74.6",), "ko-formal"),  # an exact name: certain
            DevQuery("Acute appendicitis", ("D13",), "en"),  # answered, but not by D13: not counted
        ]
    }
    result = confidence_check(searcher, dev, nonsense_n=30)
    rng = random.Random(12345)  # the same strings, judged one by one here
    strings = [nonsense(rng) for _ in range(30)]
    rejected = [searcher.verdict(s, searcher.search(s, 5)) == "no good match" for s in strings]
    assert result["nonsense"] == {"n": 30, "no_good_match": sum(rejected) / 30}
    assert result["dev"] == {"right_at_1": 1, "above_low": 1.0}


def test_mutation_sample_is_seeded_reads_mutmut_s_results_and_scores_per_module(tmp_path):
    import json

    pytest.importorskip("mutmut")
    tool = _bench_tool("mutation_sample")
    (tmp_path / "core").mkdir()
    codes = {f"core.a.x_f__mutmut_{i}": (1 if i < 6 else 0 if i < 8 else None) for i in range(10)}
    codes |= {"core.b.x_g__mutmut_1": 36}  # a timeout: detected
    (tmp_path / "core" / "a.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))
    results = tool.mutant_results(tmp_path)
    assert len(results) == 11 and results["core.a.x_f__mutmut_9"] is None
    chosen = tool.sample(list(results), 11, seed=1)
    assert chosen == sorted(results) and tool.sample(list(results), 4, 3) == tool.sample(
        list(reversed(results)), 4, 3
    )
    report = tool.score(results, chosen).splitlines()
    assert report[:2] == ["core.a                         6 / 8  ", "core.b                         1 / 1  "]
    assert report[2].startswith("all                            7 / 9   (95 % interval 45–94 %; 2 not run)")
    assert report[3:] == [
        "  survived: core.a.x_f__mutmut_6",
        "  survived: core.a.x_f__mutmut_7",
        "  timeout: core.b.x_g__mutmut_1",
    ]
    low, high = tool.wilson(70, 100)
    assert round(low, 3) == 0.604 and round(high, 3) == 0.781  # the interval of the 100-mutant sample
    # an earlier run's results cleared for the named mutants alone: mutmut runs them again
    assert tool.reset({"core.a.x_f__mutmut_6", "core.b.x_g__mutmut_1", "core.c.gone"}, tmp_path) == 2
    again = tool.mutant_results(tmp_path)
    assert again == {**results, "core.a.x_f__mutmut_6": None, "core.b.x_g__mutmut_1": None}


def test_table_vectors_come_from_the_index_and_a_name_it_lacks_is_embedded(small_kcd, tiny_bundle, cache):
    from core.bench import _table_vectors
    from core.bundle import Embedder
    from core.dictionary import load_dictionary
    from core.search import Searcher

    searcher = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache)
    known, unknown = searcher.table.texts[3], "a name no dictionary has"
    vectors = _table_vectors(searcher, [unknown, known.upper()])  # (looked up normalised)
    assert np.array_equal(vectors[1], searcher.index.vectors([3])[0])
    assert np.allclose(vectors[0], searcher.embedder.encode(unknown), atol=1e-6)


def test_peak_rss_is_the_process_image_s_high_water_mark_and_ru_maxrss_without_proc(tmp_path):
    import resource

    from core.bench import peak_rss_mb

    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 9999999 kB\nVmHWM:\t  524288 kB\nVmRSS:\t 1024 kB\n")
    assert peak_rss_mb(status) == 512.0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fallback = peak_rss_mb(tmp_path / "absent")
    assert before <= fallback <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_acronym_check_hides_each_abbreviation_and_compares_the_rule(tmp_path, tiny_bundle, cache):
    from core.search import open_searcher

    table = tmp_path / "terms.tsv"
    rows = [
        ("D59", "Atypical hemolytic uremic syndrome"),
        ("D59", "AHUS"),
        ("J80", "Acute respiratory distress syndrome"),
        ("J80", "ARDS"),
        ("X1", "Zebra stripes"),
        ("X2", "Hemolysis"),
    ]
    table.write_text("code\tterm\n" + "".join(f"{c}\t{t}\n" for c, t in rows), encoding="utf-8")
    searcher = open_searcher(table, model=tiny_bundle, cache=cache, user_synonyms=tmp_path / "none.tsv")
    result = _bench_tool("acronym_check").check(searcher, [("D59", "AHUS"), ("J80", "ARDS")])
    # the abbreviations' own names are hidden: found through the initials of the other name
    assert result["queries"] == 2 and result["with_rule"]["acc1"] == 100.0
    assert all(h.matched not in ("AHUS", "ARDS") for h in searcher.search("AHUS", 6))
    assert not searcher.acronyms.match("AHUS") and searcher.expansions == {}  # the rule is off after
    assert result["without_rule"]["n"] == 2


def test_latency_tool_names_a_missing_dev_set(tmp_path, monkeypatch, capsys):
    """Run from a checkout without ../shared beside it, it says which file is missing (it
    raised a bare KeyError) and that the paths can be given."""
    import sys

    missing = tmp_path / "dev_queries.tsv"
    monkeypatch.setattr(sys, "argv", ["latency.py", "--dev-queries", str(missing)])
    with pytest.raises(SystemExit) as stopped:
        _bench_tool("latency").main()
    assert stopped.value.code == 2
    assert f"no dev queries at {missing}" in capsys.readouterr().err
