"""Throughput and peak memory of `python -m core map` (suggestions for a whole term list) on
generated terms: damaged KCD-8 names (seeded), so every row is a real search. Each size runs in
a fresh process (after one that builds the index cache); peak memory is that process's
maximum resident set, as it reports it. Memory must not grow
with the list: suggestions are written in batches and nothing keeps the rows.

    python bench/map_throughput.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets import KCD8  # noqa: E402
from core.bench import machine  # noqa: E402
from core.dictionary import load_dictionary  # noqa: E402


def generate(count: int, seed: int = 0) -> list[str]:
    """`count` terms: KCD-8 names with a dropped or swapped character or a cut word."""
    rng = random.Random(seed)
    names = [t.text for _, t in load_dictionary(KCD8).terms()]
    terms = []
    for _ in range(count):
        name = rng.choice(names)
        kind = rng.random()
        if kind < 0.3 and len(name) > 3:
            i = rng.randrange(len(name) - 1)
            name = name[:i] + name[i + 1 :]
        elif kind < 0.6 and len(name) > 3:
            i = rng.randrange(len(name) - 1)
            name = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        elif kind < 0.8 and " " in name:
            name = name.rsplit(" ", 1)[0]
        terms.append(name.replace("\n", " "))
    return terms


def run(size: int, workdir: Path) -> dict:
    terms = workdir / f"terms-{size}.txt"
    terms.write_text("".join(t + "\n" for t in generate(size)), encoding="utf-8")
    project = workdir / f"terms-{size}.map"
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "core", "map", str(terms), "--out", str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(process.stderr)
    report = json.loads(process.stdout.splitlines()[-1])
    return {
        "terms": size,
        "terms_per_s": report["terms_per_s"],
        "suggest_seconds": report["seconds"],
        "wall_seconds_with_start": round(wall, 1),
        "peak_rss_mb": report["peak_rss_mb"],
        "project_mb": round(project.stat().st_size / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "map-throughput.json")
    args = parser.parse_args(argv)
    results = []
    # the index is built (or checked) once first, so no size pays for a first launch
    subprocess.run(
        [sys.executable, "-m", "core", "index", "build"], cwd=ROOT, check=True, capture_output=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in sorted(args.sizes):
            results.append(run(size, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
    args.out.write_text(json.dumps({"machine": machine(), "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
