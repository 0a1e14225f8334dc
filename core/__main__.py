"""`python -m core`: search the dictionary, build indexes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import InputError, LookupAppError
from .progress import ProgressBar

log = logging.getLogger("core")


def open_searcher(dictionary: str | None, format: str | None, model: str | None, *, quiet: bool = False):
    from .search import open_searcher as open_

    return open_(
        dictionary, format=format, model=model, progress=None if quiet else ProgressBar("building the index")
    )


def _print_table(query: str, hits, lang: str | None = None) -> None:
    """Results as a table; `lang` shows the names of one language only (matching is the same)."""
    print(f"query: {query}")
    names = {"ko": "Korean", "en": "English"}
    shown = [lang] if lang else ["ko", "en"]
    print(
        f"{'#':>2}  {'code':<8} {'score':>6}  {'match':<6} "
        + "  ".join(f"{names[x]:<28}" for x in shown)
        + "[matched]"
    )
    for rank, hit in enumerate(hits, start=1):
        columns = "  ".join(f"{(hit.name_ko if x == 'ko' else hit.name_en):<28}" for x in shown)
        print(
            f"{rank:>2}  {hit.code:<8} {hit.score:>6.3f}  {hit.match:<6} {hit.level:<6} {columns}[{hit.matched}]"
        )


def read_queries(path: str | Path) -> list[str]:
    """One query per line (LF or CRLF; no other character ends a line), blank lines kept so
    that output line N answers input line N. UTF-8, or cp949 as Korean Excel writes it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the query file ({exc.strerror or exc})") from None
    for encoding in ("utf-8-sig", "cp949"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InputError(f"{path}: neither UTF-8 nor cp949 text")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def cmd_search(args: argparse.Namespace) -> int:
    queries = read_queries(args.batch) if args.batch else None  # before the index: fail fast
    searcher = open_searcher(args.dictionary, args.format, args.model, quiet=args.json or bool(args.batch))
    if queries is not None:
        for query in queries:
            hits = searcher.search(query.strip(), args.k) if query.strip() else []
            verdict = searcher.verdict(query, hits) if query.strip() else None
            print(
                json.dumps(
                    {"query": query, "verdict": verdict, "results": [h.to_dict() for h in hits]},
                    ensure_ascii=False,
                )
            )
        return 0
    if not args.query:
        raise SystemExit("give a query, or --batch FILE")
    for query in args.query:
        hits = searcher.search(query, args.k)
        verdict = searcher.verdict(query, hits)
        if args.json:
            print(
                json.dumps(
                    {"query": query, "verdict": verdict, "results": [h.to_dict() for h in hits]},
                    ensure_ascii=False,
                )
            )
        else:
            _print_table(query, hits, args.lang)
            if verdict:
                print(f"   ({verdict})")
    return 0


def cmd_index_build(args: argparse.Namespace) -> int:
    searcher = open_searcher(args.dictionary, args.format, args.model)
    print(f"index ready: {len(searcher.table)} distinct terms, {len(searcher.dictionary)} concepts")
    return 0


def cmd_index_prebuild(args: argparse.Namespace) -> int:
    """Embed the dictionary's terms and store them in the bundle (int8) for fast first launches."""
    from .index import attach_prebuilt

    searcher = open_searcher(args.dictionary, args.format, args.model)
    vectors = searcher.index.vectors()
    attach_prebuilt(searcher.embedder.directory, texts=searcher.table.texts, vectors=vectors)
    print(f"stored {len(vectors)} vectors in {searcher.embedder.directory}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the bundle's confidence calibration on queries generated from the dictionary."""
    from .confidence import calibrate

    searcher = open_searcher(args.dictionary, args.format, args.model)
    report = calibrate(searcher, queries=args.queries, progress=ProgressBar("calibrating"))
    print(json.dumps(report, indent=2))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import DEV_QUERIES, LONGTAIL_QUERIES, ROOT, run_benchmark

    baselines = {}
    for item in args.baseline:
        label, _, path = item.partition("=")
        baselines[label] = Path(path)
    run_benchmark(
        name=args.name,
        model=Path(args.model) if args.model else None,
        baselines=baselines,
        dev_paths={
            "dev": Path(args.dev_queries or DEV_QUERIES),
            "longtail": Path(args.longtail_queries or LONGTAIL_QUERIES),
        },
        out_dir=ROOT / "bench" / "results",
        build=not args.no_build,
        quality=not args.speed_only,
        ablate_curated=args.ablate_curated,
        ablate_bank=args.ablate_bank,
        log=lambda m: print(m, file=sys.stderr),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dictionary", help="dictionary file (default: the bundled KCD-8)")
        p.add_argument("--format", choices=["kcd", "kostom", "table", "mrconso"], help="default: detect")
        p.add_argument("--model", help="model bundle directory (default: assets/model)")

    search = sub.add_parser("search", help="search concepts")
    search.add_argument("query", nargs="*")
    search.add_argument("-k", type=positive, default=10, help="concepts per query (default 10)")
    search.add_argument(
        "--lang", choices=["ko", "en"], help="show names of one language only (matching uses all)"
    )
    search.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    search.add_argument("--batch", help="file of queries, one per line; JSON lines out")
    common(search)
    search.set_defaults(run=cmd_search)

    index = sub.add_parser("index", help="index commands")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    build = index_sub.add_parser("build", help="build (or verify) the cached index")
    common(build)
    build.set_defaults(run=cmd_index_build)
    prebuild = index_sub.add_parser("prebuild", help="store the dictionary's vectors in the model bundle")
    common(prebuild)
    prebuild.set_defaults(run=cmd_index_prebuild)

    calibrate = sub.add_parser("calibrate", help="fit the bundle's confidence levels on generated queries")
    calibrate.add_argument(
        "--queries", type=positive, default=3000, help="damaged names and nonsense strings, each"
    )
    calibrate.add_argument("--report", help="also write the reliability report (JSON) here")
    common(calibrate)
    calibrate.set_defaults(run=cmd_calibrate)

    bench = sub.add_parser("bench", help="the benchmark (../shared/BENCHMARK.md sections 1-2)")
    bench.add_argument("--name", required=True, help="results go to bench/results/NAME.json")
    bench.add_argument("--model", help="bundle under test (default: assets/model)")
    bench.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="another bundle to compare, e.g. zero-shot=DIR",
    )
    bench.add_argument("--dev-queries", help="default: ../shared/data/dev_queries.tsv")
    bench.add_argument("--longtail-queries", help="default: ../shared/data/dev_queries_longtail.tsv")
    bench.add_argument(
        "--ablate-bank",
        action="store_true",
        help="also run the dev queries of the model and each baseline without the open synonym bank",
    )
    bench.add_argument(
        "--no-build",
        action="store_true",
        help="skip timing index builds and a first launch on an empty cache",
    )
    bench.add_argument(
        "--ablate-curated",
        action="store_true",
        help="also run the dev queries without the curated synonym list",
    )
    bench.add_argument("--speed-only", action="store_true", help="skip the quality section")
    bench.set_defaults(run=cmd_bench)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.run(args)
    except LookupAppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
