"""The benchmark's fixed KCD-8 split and its cross-lingual linking metrics (numpy only).

See ../shared/BENCHMARK.md: a code is held out iff sha1(category) % 10 == 0, category
being the first three characters of the code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .dictionary import Dictionary

Encode = Callable[[list[str]], np.ndarray]
TASKS = ("ko2en", "en2ko", "mixed")


def held_out(code: str) -> bool:
    """True for codes of the benchmark's held-out categories (never in training pairs)."""
    return int(hashlib.sha1(code[:3].encode()).hexdigest(), 16) % 10 == 0


@dataclass(frozen=True)
class Names:
    """One preferred Korean and English name per code (codes that have both), in file order."""

    codes: list[str]
    ko: list[str]
    en: list[str]

    @classmethod
    def from_dictionary(cls, dictionary: Dictionary) -> Names:
        concepts = [c for c in dictionary.concepts.values() if c.name("ko") and c.name("en")]
        return cls(
            [c.code for c in concepts], [c.name("ko") for c in concepts], [c.name("en") for c in concepts]
        )

    def subset(self, keep: Callable[[str], bool]) -> Names:
        rows = [i for i, code in enumerate(self.codes) if keep(code)]
        return Names([self.codes[i] for i in rows], [self.ko[i] for i in rows], [self.en[i] for i in rows])


def ranks_from_scores(
    scores: np.ndarray,
    gold_codes: Sequence[str],
    gold_texts: Sequence[str],
    cand_codes: np.ndarray,
    cand_texts: np.ndarray,
    *,
    exclude_texts: Sequence[str] | None = None,
) -> list[int]:
    """1-based rank of the first hit in the top 10 of each row of `scores`, 0 if none.

    A candidate is a hit if it has the gold code or exactly the gold text. With
    `exclude_texts`, candidates whose text equals the row's entry there are skipped.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude_texts is not None:
        for row, text in enumerate(exclude_texts):
            scores[row, cand_texts == text] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    ranks = []
    for row, order in enumerate(top):
        hit = (cand_codes[order] == gold_codes[row]) | (cand_texts[order] == gold_texts[row])
        ranks.append(int(np.argmax(hit)) + 1 if hit.any() else 0)
    return ranks


def summarize(ranks: Sequence[int]) -> dict[str, float]:
    """Acc@1, Acc@5 and MRR@10 (in percent) from 1-based ranks (0 = not in the top 10)."""
    r = np.asarray(ranks)
    found = r > 0
    return {
        "acc1": float(np.mean(r == 1)) * 100,
        "acc5": float(np.mean(found & (r <= 5))) * 100,
        "mrr10": float(np.mean(np.where(found, 1.0 / np.maximum(r, 1), 0.0))) * 100,
        "n": len(r),
    }


def rank_metrics(
    queries: np.ndarray,
    gold_codes: Sequence[str],
    gold_texts: Sequence[str],
    candidates: np.ndarray,
    cand_codes: Sequence[str],
    cand_texts: Sequence[str],
    *,
    exclude_texts: Sequence[str] | None = None,
    chunk: int = 512,
) -> dict[str, float]:
    """Acc@1, Acc@5 and MRR@10 of linking each query vector to its gold code (see `ranks_from_scores`)."""
    codes = np.asarray(cand_codes, dtype=object)
    texts = np.asarray(cand_texts, dtype=object)
    ranks: list[int] = []
    for start in range(0, len(queries), chunk):
        end = start + chunk
        ranks += ranks_from_scores(
            queries[start:end] @ candidates.T,
            gold_codes[start:end],
            gold_texts[start:end],
            codes,
            texts,
            exclude_texts=None if exclude_texts is None else exclude_texts[start:end],
        )
    return summarize(ranks)


def evaluate_linking(
    encode: Encode,
    names: Names,
    *,
    queries: Callable[[str], bool] = held_out,
    tasks: Sequence[str] = TASKS,
    candidates: Callable[[str], bool] | None = None,
) -> dict[str, dict[str, float]]:
    """The benchmark's ko2en / en2ko / mixed tasks over the codes `queries` selects.

    Candidates are the names of every code (or those `candidates` selects, for a quick
    evaluation during training).
    """
    pool = names.subset(candidates) if candidates else names
    gold = names.subset(queries)
    ko_pool, en_pool = encode(pool.ko), encode(pool.en)
    ko_gold, en_gold = encode(gold.ko), encode(gold.en)
    results = {}
    if "ko2en" in tasks:
        results["ko2en"] = rank_metrics(ko_gold, gold.codes, gold.en, en_pool, pool.codes, pool.en)
    if "en2ko" in tasks:
        results["en2ko"] = rank_metrics(en_gold, gold.codes, gold.ko, ko_pool, pool.codes, pool.ko)
    if "mixed" in tasks:
        both = np.concatenate([ko_pool, en_pool])
        results["mixed"] = rank_metrics(
            ko_gold, gold.codes, gold.en, both, pool.codes * 2, pool.ko + pool.en, exclude_texts=gold.ko
        )
    return results


def format_table(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    """A text table: one row per model, Acc@1 / Acc@5 / MRR@10 per task."""
    tasks = [t for t in TASKS if any(t in r for r in rows.values())]
    header = f"{'model':<28}" + "".join(f"{t + ' @1/@5/MRR':>24}" for t in tasks)
    lines = [header, "-" * len(header)]
    for name, result in rows.items():
        cells = "".join(
            f"{result[t]['acc1']:>10.1f}{result[t]['acc5']:>7.1f}{result[t]['mrr10']:>7.1f}"
            if t in result
            else f"{'-':>24}"
            for t in tasks
        )
        lines.append(f"{name:<28}{cells}")
    return "\n".join(lines)
