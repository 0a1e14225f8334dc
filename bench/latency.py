"""End-to-end query latency of this checkout's search, as `python -m core bench` measures it
(the same 240 queries), without the rest of the benchmark: for A/B runs of two checkouts
on one machine, alternated, since a VM's speed drifts between days.

    python bench/latency.py [--repeat 2] [--dev-queries TSV] [--longtail-queries TSV]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets import KCD8  # noqa: E402
from core.bench import DEV_QUERIES, LONGTAIL_QUERIES, latency_queries, read_dev_sets, speed  # noqa: E402
from core.dictionary import load_dictionary  # noqa: E402
from core.evaluation import Names  # noqa: E402
from core.search import open_searcher  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dev-queries", type=Path, default=DEV_QUERIES)
    parser.add_argument("--longtail-queries", type=Path, default=LONGTAIL_QUERIES)
    args = parser.parse_args()
    paths = {"dev": args.dev_queries, "longtail": args.longtail_queries}
    for path in paths.values():
        if not path.is_file():
            parser.error(f"no dev queries at {path} (give --dev-queries / --longtail-queries)")
    dev = read_dev_sets(paths, curated=set(), imported=set())
    queries = latency_queries(Names.from_dictionary(load_dictionary(KCD8)), dev["dev"] + dev["longtail"])
    searcher = open_searcher()
    for _ in range(args.repeat):
        result = speed(searcher, queries)
        print(
            f"p50 {result['p50_ms']:.2f} ms  p95 {result['p95_ms']:.2f} ms  mean {result['mean_ms']:.2f} ms"
        )


if __name__ == "__main__":
    main()
