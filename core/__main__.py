"""`python -m core`: search the dictionary, build indexes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import unicodedata
from pathlib import Path

from .chapters import parse_range
from .dictionary import FORMATS
from .errors import InputError, LookupAppError
from .mapping import EXPORTS
from .progress import ProgressBar

log = logging.getLogger("core")


def open_searcher(args: argparse.Namespace, *, quiet: bool = False):
    """The Searcher the common options (`--dictionary`, `--format`, `--model`, the OMOP
    filters) describe."""
    from .search import open_searcher as open_

    options = {}
    if args.vocabulary or args.domain or args.standard_only:
        options = {
            "vocabularies": args.vocabulary,
            "domains": args.domain,
            "standard_only": args.standard_only,
        }
    return open_(
        args.dictionary,
        format=args.format,
        model=args.model,
        progress=None if quiet else ProgressBar("building the index"),
        dictionary_options=options,
    )


def dictionary_options(args: argparse.Namespace) -> dict:
    """The OMOP filters given on the command line, as load_athena's keyword arguments."""
    if args.vocabulary or args.domain or args.standard_only:
        return {"vocabularies": args.vocabulary, "domains": args.domain, "standard_only": args.standard_only}
    return {}


def _pad(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns (a Hangul syllable takes two)."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - columns)


def _print_table(query: str, hits, lang: str | None = None) -> None:
    """Results as a table; `lang` shows the names of one language only (matching is the same).
    A code that has more specific codes under it is marked ▸, as in the app."""
    print(f"query: {query}")
    names = {"ko": "Korean", "en": "English"}
    shown = [lang] if lang else ["ko", "en"]
    print(
        f"{'#':>2}  {'code':<10} {'score':>6}  {'match':<6} {'level':<6} "
        + "  ".join(_pad(names[x], 40) for x in shown)
        + "  [matched]"
    )
    for rank, hit in enumerate(hits, start=1):
        code = hit.code + (" ▸" if hit.children else "")
        columns = "  ".join(_pad(hit.name_ko if x == "ko" else hit.name_en, 40) for x in shown)
        print(
            f"{rank:>2}  {code:<10} {hit.score:>6.3f}  {hit.match:<6} {hit.level:<6} {columns}  [{hit.matched}]"
        )
    if any(hit.children for hit in hits):
        print("   ▸ not the most specific level: more specific codes exist (--json lists them)")


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
    within = parse_range(args.within) if args.within else None
    searcher = open_searcher(args, quiet=args.json or bool(args.batch))
    if queries is not None:
        for query in queries:
            hits = searcher.search(query.strip(), args.k, within=within) if query.strip() else []
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
        hits = searcher.search(query, args.k, within=within)
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
    searcher = open_searcher(args)
    print(f"index ready: {len(searcher.table)} distinct terms, {len(searcher.dictionary)} concepts")
    return 0


def cmd_index_prebuild(args: argparse.Namespace) -> int:
    """Embed the dictionary's terms and store them in the bundle (int8) for fast first launches."""
    from .index import attach_prebuilt

    searcher = open_searcher(args)
    vectors = searcher.index.vectors()
    attach_prebuilt(searcher.embedder.directory, texts=searcher.table.texts, vectors=vectors)
    print(f"stored {len(vectors)} vectors in {searcher.embedder.directory}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the bundle's confidence calibration on queries generated from the dictionary."""
    from .confidence import calibrate

    searcher = open_searcher(args)
    report = calibrate(searcher, queries=args.queries, progress=ProgressBar("calibrating"))
    print(json.dumps(report, indent=2))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    """Import a term list into a mapping project (or continue one) and suggest concepts for
    every row that has none; decided rows are never touched."""
    from .mapping import MappingProject, read_source

    out = Path(args.out)
    if out.exists():
        project = MappingProject(out)
        print(f"{out}: continuing ({len(project)} rows)", file=sys.stderr)
    else:
        source = read_source(
            args.source,
            header=args.header,
            term_column=args.column,
            code_column=args.code_column,
            frequency_column=args.frequency_column,
        )
        named = lambda i: "none" if i is None else repr(source.columns[i])  # noqa: E731
        print(
            f"{source.path}: {len(source.columns)} columns, {source.encoding}, "
            f"{'a header row' if source.header else 'no header'}; term column {named(source.term_column)}, "
            f"code column {named(source.code_column)}, frequency column {named(source.frequency_column)}",
            file=sys.stderr,
        )
        project = MappingProject.create(out, source)
    try:
        searcher = open_searcher(args)
        used = {
            "path": args.dictionary or "",
            "format": args.format or "",
            "options": dictionary_options(args),
        }
        project.set_meta("dictionary", json.dumps(used))
        fingerprint = f"{searcher.dictionary.fingerprint()[:16]}:{searcher.embedder.fingerprint()[:16]}"
        before = project.meta("suggested_with")
        if before and before != fingerprint and not args.redo:
            print(
                "note: the dictionary or model changed since the last suggestions; "
                "--redo refreshes the undecided rows",
                file=sys.stderr,
            )
        started = time.perf_counter()
        done = project.suggest(
            searcher.search_many,
            k=args.k,
            redo=args.redo,
            fingerprint=fingerprint,
            progress=ProgressBar("suggesting"),
        )
        seconds = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "project": str(out),
                    "rows": len(project),
                    **project.counts(),
                    "suggested_now": done,
                    "seconds": round(seconds, 2),
                    "terms_per_s": round(done / seconds, 1) if done and seconds else None,
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                }
            )
        )
    finally:
        project.close()
    return 0


def cmd_map_export(args: argparse.Namespace) -> int:
    """Write a mapping project out: csv (the source columns + decisions), stcm (OMOP
    source_to_concept_map, approved rows) or usagi (Usagi's CSV)."""
    from .dictionary import load_dictionary
    from .mapping import MappingProject, export_project

    project = MappingProject(args.project)
    try:
        used = json.loads(project.meta("dictionary") or "{}")
        path = args.dictionary or used.get("path") or _bundled_kcd()
        dictionary = load_dictionary(
            path, args.format or used.get("format") or None, **used.get("options", {})
        )
        count = export_project(
            project, args.out, args.export_format, dictionary, source_vocabulary=args.source_vocabulary
        )
    finally:
        project.close()
    print(f"wrote {count} rows to {args.out}", file=sys.stderr)
    return 0


def peak_rss_mb() -> float:
    """This process's largest resident set so far (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _bundled_kcd() -> Path:
    from assets import KCD8

    return KCD8


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import DEV_QUERIES, LONGTAIL_QUERIES, ROOT, run_benchmark

    for given in (args.dev_queries, args.longtail_queries):  # --kcd: load_dictionary says so
        if given and not Path(given).is_file():
            raise InputError(f"{given}: no such file")
    baselines = {}
    for item in args.baseline:
        label, _, path = item.partition("=")
        if not label or not (Path(path) / "manifest.json").is_file():
            raise InputError(f"--baseline {item}: expected LABEL=DIR, DIR a model bundle")
        baselines[label] = Path(path)
    run_benchmark(
        name=args.name,
        model=Path(args.model) if args.model else None,
        baselines=baselines,
        dev_paths={
            "dev": Path(args.dev_queries or DEV_QUERIES),
            "longtail": Path(args.longtail_queries or LONGTAIL_QUERIES),
        },
        out_dir=Path(args.results) if args.results else ROOT / "bench" / "results",
        build=not args.no_build,
        quality=not args.speed_only,
        ablate_curated=args.ablate_curated,
        ablate_bank=args.ablate_bank,
        kcd=Path(args.kcd) if args.kcd else None,
        log=lambda m: print(m, file=sys.stderr),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dictionary", help="dictionary file (default: the bundled KCD-8)")
        p.add_argument("--format", choices=FORMATS, help="default: detect")
        p.add_argument("--model", help="model bundle directory (default: assets/model)")
        omop = p.add_argument_group("OMOP vocabularies (--format athena: a folder with CONCEPT.csv)")
        omop.add_argument(
            "--vocabulary", action="append", default=[], help="keep this vocabulary_id (repeat)"
        )
        omop.add_argument("--domain", action="append", default=[], help="keep this domain_id (repeat)")
        omop.add_argument(
            "--standard-only", action="store_true", help="standard and classification concepts only"
        )

    search = sub.add_parser("search", help="search concepts")
    search.add_argument("query", nargs="*")
    search.add_argument("-k", type=positive, default=10, help="concepts per query (default 10)")
    search.add_argument(
        "--lang", choices=["ko", "en"], help="show names of one language only (matching uses all)"
    )
    search.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    search.add_argument("--within", help="only codes in a KCD chapter (IX) or category range (I20-I25)")
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
        "--queries",
        type=positive,
        default=3000,
        help="generated names (damaged or hidden) and nonsense strings, each",
    )
    calibrate.add_argument("--report", help="also write the reliability report (JSON) here")
    common(calibrate)
    calibrate.set_defaults(run=cmd_calibrate)

    mapping = sub.add_parser(
        "map",
        help="mapping project: import a term list and suggest concepts ('map export PROJECT' writes it out)",
    )
    mapping.add_argument("source", help="CSV / TSV / TXT / XLSX term list (UTF-8 or cp949)")
    mapping.add_argument("--out", required=True, help="the project file (continued when it exists)")
    mapping.add_argument("--column", help="the term column (header name or 1-based number; default: guessed)")
    mapping.add_argument("--code-column", help="the source code column (default: guessed)")
    mapping.add_argument("--frequency-column", help="the frequency column (default: guessed)")
    header = mapping.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None)
    header.add_argument("--no-header", dest="header", action="store_false")
    mapping.add_argument("-k", type=positive, default=5, help="suggestions per row (default 5)")
    mapping.add_argument(
        "--redo", action="store_true", help="refresh the suggestions of undecided rows (after a model change)"
    )
    common(mapping)
    mapping.set_defaults(run=cmd_map)

    bench = sub.add_parser("bench", help="the benchmark (../shared/BENCHMARK.md sections 1-2)")
    bench.add_argument("--name", required=True, help="results go to bench/results/NAME.json")
    bench.add_argument("--results", help="the folder of NAME.json instead of bench/results")
    bench.add_argument(
        "--kcd", help="a table in the KCD-8's format instead of it (a subset: a quick smoke run)"
    )
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

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["map", "export"]:  # `map export PROJECT`: its own parser
        export = argparse.ArgumentParser(prog="python -m core map export", description=cmd_map_export.__doc__)
        export.add_argument("project")
        export.add_argument("--format", dest="export_format", choices=EXPORTS, default="csv")
        export.add_argument("--out", required=True)
        export.add_argument("--dictionary", help="default: the dictionary the project was suggested from")
        export.add_argument("--dictionary-format", dest="format", choices=FORMATS)
        export.add_argument(
            "--source-vocabulary", default="LOCAL", help="stcm: source_vocabulary_id (default LOCAL)"
        )
        export.set_defaults(run=cmd_map_export, verbose=False)
        args = export.parse_args(argv[2:])
    else:
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
