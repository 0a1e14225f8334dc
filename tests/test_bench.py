import numpy as np
import pytest

from core.bench import DevQuery, dev_accuracy, latency_queries, render
from core.evaluation import Names, rank_metrics, summarize


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
    assert summarize([1, 2, 0, 6])["mrr10"] == (1 + 0.5 + 1 / 6) / 4 * 100


def test_latency_queries_are_distinct_and_render_prints_tables():
    names = Names(
        [f"C{i}" for i in range(300)],
        [f"한국어 이름 {i} 번째" for i in range(300)],
        [f"english name {i} alpha" for i in range(300)],
    )
    queries = latency_queries(names, [DevQuery("당뇨", ("E14",), "ko")], count=200)
    assert len(queries) == len(set(queries)) == 200 and queries[0] == "당뇨"
    row = {t: {"acc1": 1.0, "acc5": 2.0, "mrr10": 1.5, "n": 1} for t in ("ko2en", "en2ko", "mixed")}
    row["dev"] = {"by_kind": {"overall": {"acc1": 50.0, "acc5": 75.0, "n": 4}}, "misses": []}
    text = render(
        {"name": "t", "machine": {"cpu": "cpu", "cores": 2}, "quality": {"model": row}, "speed": {}}
    )
    assert "ko2en" in text and "overall" in text
