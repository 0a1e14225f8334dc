"""The benchmark of ../shared/BENCHMARK.md, sections 1 and 2 (CPU, ONNX Runtime).

    python -m core bench --name NAME [--model DIR] [--baseline zero-shot=DIR ...]

Quality (ko2en, en2ko, mixed; dev queries by kind) for the model under test, each
baseline bundle and a lexical character n-gram baseline; then speed, size and memory of
the model under test. Writes bench/results/NAME.json and prints the tables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dictionary import load_dictionary, read_bank, read_synonyms
from .errors import InputError
from .evaluation import Names, evaluate_linking, format_table, held_out, ranks_from_scores, summarize
from .fsutil import sha256_file
from .index import cache_dir
from .lexical import CharNgramIndex
from .search import Searcher, TermTable, load_searched, open_index, open_searcher
from .text import compact, normalize

ROOT = Path(__file__).resolve().parents[1]
DEV_QUERIES = ROOT.parent / "shared" / "data" / "dev_queries.tsv"
LONGTAIL_QUERIES = ROOT.parent / "shared" / "data" / "dev_queries_longtail.tsv"


@dataclass(frozen=True)
class DevQuery:
    query: str
    accept: tuple[str, ...]
    kind: str
    listed: bool = False  # named verbatim by the curated synonym list (so found by exact match)


def read_dev_queries(path: str | Path) -> list[DevQuery]:
    """A dev set: a header, then `query<TAB>accepted code prefixes (comma-separated)<TAB>kind`."""
    queries = []
    for number, row in enumerate(Path(path).read_text(encoding="utf-8").splitlines()[1:], start=2):
        if not row.strip():
            continue
        fields = row.split("\t")
        if len(fields) != 3:
            raise InputError(
                f"{path}:{number}: expected 3 tab-separated columns (query, accept, kind), found {len(fields)}"
            )
        query, accept, kind = fields
        queries.append(DevQuery(query, tuple(accept.split(",")), kind))
    return queries


def dev_accuracy(
    queries: Sequence[DevQuery], search: Callable[[str], list[str]]
) -> dict[str, dict[str, float]]:
    """Acc@1 / Acc@5 per kind, over the queries the curated list does not name ("unlisted")
    and overall; `search` returns ranked concept codes."""
    ranks: dict[str, list[int]] = {}
    misses = []
    for q in queries:
        codes = search(q.query)[:5]
        rank = next((i + 1 for i, c in enumerate(codes) if c.startswith(q.accept)), 0)
        for kind in (q.kind, "overall") if q.listed else (q.kind, "unlisted", "overall"):
            ranks.setdefault(kind, []).append(rank)
        if rank != 1:
            misses.append({"query": q.query, "accept": q.accept, "top5": codes, "rank": rank})
    table = {
        k: {
            "acc1": 100 * float(np.mean(np.array(r) == 1)),
            "acc5": 100 * float(np.mean((np.array(r) >= 1) & (np.array(r) <= 5))),
            "n": len(r),
        }
        for k, r in ranks.items()
    }
    return {"by_kind": table, "misses": misses}


def _table_vectors(searcher: Searcher, texts: Sequence[str]) -> np.ndarray:
    """Vectors of dictionary names, taken from the index (they were embedded to build it)."""
    position = {t: i for i, t in enumerate(searcher.table.texts)}
    rows = [position.get(normalize(t)) for t in texts]
    missing = [texts[i] for i, r in enumerate(rows) if r is None]
    out = searcher.index.vectors([r if r is not None else 0 for r in rows])
    if missing:
        fresh = searcher.embedder.encode(missing)
        out[[i for i, r in enumerate(rows) if r is None]] = fresh
    return out


def dev_sets_accuracy(dev_sets: dict[str, Sequence[DevQuery]], searcher: Searcher) -> dict:
    """Each dev set through the product's search (concepts, deduplicated by code)."""
    return {
        name: dev_accuracy(queries, lambda q: [h.code for h in searcher.search(q, 5)])
        for name, queries in dev_sets.items()
    }


def quality_dense(searcher: Searcher, names: Names, dev_sets: dict[str, Sequence[DevQuery]]) -> dict:
    encode = lambda texts: _table_vectors(searcher, texts)  # noqa: E731
    result = evaluate_linking(encode, names)
    result["dev"] = dev_sets_accuracy(dev_sets, searcher)
    return result


def quality_lexical(names: Names, table: TermTable, dev_sets: dict[str, Sequence[DevQuery]]) -> dict:
    """The character n-gram baseline on the same tasks (exact candidate sets, exact ranks)."""
    gold = names.subset(held_out)
    results = {}
    for task, queries, gold_texts, pool_texts, pool_codes, exclude in (
        ("ko2en", gold.ko, gold.en, names.en, names.codes, None),
        ("en2ko", gold.en, gold.ko, names.ko, names.codes, None),
        ("mixed", gold.ko, gold.en, names.ko + names.en, names.codes * 2, gold.ko),
    ):
        index = CharNgramIndex(pool_texts)
        codes, texts = np.asarray(pool_codes, dtype=object), np.asarray(pool_texts, dtype=object)
        ranks: list[int] = []
        for start in range(0, len(queries), 256):
            end = start + 256
            scores = np.stack([index.scores(q) for q in queries[start:end]])
            ranks += ranks_from_scores(
                scores,
                gold.codes[start:end],
                gold_texts[start:end],
                codes,
                texts,
                exclude_texts=None if exclude is None else exclude[start:end],
            )
        results[task] = summarize(ranks)
    lexical = CharNgramIndex(table.texts)

    def search(query: str) -> list[str]:
        ids, _ = lexical.top(query, 50)
        codes: list[str] = []
        for i in ids:
            for code, _term in table.owners[i]:
                if code not in codes:
                    codes.append(code)
        return codes

    results["dev"] = {name: dev_accuracy(queries, search) for name, queries in dev_sets.items()}
    return results


def latency_queries(names: Names, dev: Sequence[DevQuery], count: int = 240) -> list[str]:
    """`count` different, realistic queries: the dev queries, then dictionary names cut short
    (so that they take the dense path rather than the exact-match shortcut)."""
    queries = list(dict.fromkeys(q.query for q in dev))
    seen = set(queries)
    for i, row in enumerate(np.random.default_rng(0).permutation(len(names.codes))):
        if len(queries) >= count:
            break
        name = (names.ko if i % 2 else names.en)[row]
        words = name.split()
        query = " ".join(words[:-1]) if len(words) > 2 else name[: max(2, int(len(name) * 0.7))]
        if query not in seen:
            seen.add(query)
            queries.append(query)
    return queries[:count]


def speed(searcher: Searcher, queries: Sequence[str]) -> dict:
    """End-to-end latency of single queries, at steady state: every query is searched once
    untimed first (right after the quality sections' large matrices, a pass ran ~15 % slower
    than the next one), then timed."""
    for query in queries:
        searcher.search(query, 10)  # warm-up
    times = []
    for query in queries:
        started = time.perf_counter()
        searcher.search(query, 10)
        times.append((time.perf_counter() - started) * 1000)
    # recall@10 of the hnswlib index against brute force, for the same queries' vectors
    vectors = searcher.embedder.encode(list(queries))
    matrix = searcher.index.vectors()
    recall = []
    for vector in vectors:
        exact = set(np.argsort(-(matrix @ vector))[:10].tolist())
        labels, _ = searcher.index.knn(vector, 10)
        recall.append(len(exact & set(labels.tolist())) / 10)
    return {
        "queries": len(times),
        "warmup": "one untimed pass of the same queries",
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "mean_ms": float(np.mean(times)),
        "hnsw_recall_at_10": float(np.mean(recall)),
    }


def peak_rss_mb(status: Path = Path("/proc/self/status")) -> float:
    """This process's peak resident memory. Linux's VmHWM belongs to the process image, while
    ru_maxrss carries the parent's peak across fork + exec (a child started by a benchmark
    that had built an index would report the benchmark's peak); ru_maxrss only where there is
    no `status` file (not Linux)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_and_startup(model: Path, cache: Path, kcd: Path | None = None) -> dict:
    """Peak RSS and time to the first result of a fresh process (warm index cache)."""
    code = (
        "import time, json; t=time.perf_counter()\n"
        "from core.search import open_searcher\n"
        "from core.bench import peak_rss_mb\n"
        f"s=open_searcher({kcd and str(kcd)!r}, model={str(model)!r}, cache=__import__('pathlib').Path({str(cache)!r}))\n"
        "s.search('간경화', 10); first=time.perf_counter()-t\n"
        "for q in ['liver cirrhosis','당뇨','K74.6','급성 appendicitis','copd']*10: s.search(q, 10)\n"
        "peak=peak_rss_mb()\n"
        "print(json.dumps({'first_result_s': first, 'peak_rss_mb': peak}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    """The CPU's model name (Linux), or the platform's word for it: this project's VMs change
    CPU between sessions, and every timing depends on it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    cpu = cpu_name()
    import onnxruntime

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "git_commit": commit,
        "git_dirty": dirty,  # uncommitted changes to tracked files when the benchmark ran
        "providers": onnxruntime.get_available_providers(),
    }


def confidence_check(
    searcher: Searcher, dev_sets: dict[str, Sequence[DevQuery]], *, nonsense_n: int = 10_000
) -> dict:
    """How the confidence levels behave: the share of random strings (a seed the calibration
    never saw) that get "no good match", and the share of each dev set's right answers at
    rank 1 whose level is above "low"."""
    import random

    from .confidence import nonsense

    if searcher.calibration is None:
        return {}
    rng = random.Random(12345)
    rejected = 0
    for _ in range(nonsense_n):
        query = nonsense(rng)
        if searcher.verdict(query, searcher.search(query, 5)) == "no good match":
            rejected += 1
    result: dict = {"nonsense": {"n": nonsense_n, "no_good_match": rejected / nonsense_n}}
    for name, queries in dev_sets.items():
        right = []
        for q in queries:
            hits = searcher.search(q.query, 5)
            if hits and hits[0].code.startswith(q.accept):
                right.append(hits[0].level in ("medium", "high"))
        result[name] = {"right_at_1": len(right), "above_low": float(np.mean(right)) if right else None}
    return result


def curated_keys() -> set[str]:
    """The compact forms of the curated list's names: a dev query among them is `listed`."""
    from assets import CURATED_SYNONYMS

    return {compact(term) for _, term in read_synonyms(CURATED_SYNONYMS)}


def read_dev_sets(
    paths: dict[str, Path], *, curated: set[str], imported: set[str]
) -> dict[str, list[DevQuery]]:
    """The dev sets, each query marked `listed` when the curated list names it verbatim
    (compact form); `imported` (the bank's terms) is only counted, never used to filter."""
    return {
        name: [dataclasses.replace(q, listed=compact(q.query) in curated) for q in read_dev_queries(path)]
        for name, path in paths.items()
        if Path(path).is_file()
    }


def run_benchmark(
    *,
    name: str,
    model: Path | None,
    baselines: dict[str, Path],
    dev_paths: dict[str, Path],
    out_dir: Path,
    build: bool = True,
    quality: bool = True,
    ablate_curated: bool = False,
    ablate_bank: bool = False,
    kcd: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """The benchmark of `model` (and each baseline) on the KCD-8, or on `kcd`, a table in its
    format (a subset makes a quick smoke run: the curated list and the bank join the KCD-8
    only); writes `out_dir/NAME.json` and returns it."""
    from assets import BANK, DEFAULT_MODEL, KCD8

    model = Path(model or DEFAULT_MODEL)
    kcd = Path(kcd or KCD8)
    dictionary = load_dictionary(kcd, "kcd")
    names = Names.from_dictionary(dictionary)
    listed = curated_keys()
    bank = read_bank(BANK)
    imported = {compact(term) for _, term, _ in bank}
    dev_sets = read_dev_sets(dev_paths, curated=listed, imported=imported)
    skipped = {label: str(path) for label, path in dev_paths.items() if label not in dev_sets}
    for label, path in skipped.items():
        log(f"{label}: {path} not found, skipped")
    result: dict = {
        "name": name,
        "model": str(model),
        "model_sha256": bundle_digest(model),
        "baselines": {
            label: {"path": str(path), "sha256": bundle_digest(path)} for label, path in baselines.items()
        },
        "dictionary": {"path": str(kcd), "fingerprint": dictionary.fingerprint()},
        "machine": machine(),
        "bank": dict(Counter(source for _, _, source in bank)),
        "dev_skipped": skipped,
        "dev_coverage": {
            set_name: {
                "queries": len(queries),
                "curated_verbatim": sum(q.listed for q in queries),
                "bank_verbatim": sum(compact(q.query) in imported for q in queries),
            }
            for set_name, queries in dev_sets.items()
        },
        "quality": {},
        "speed": {},
    }
    all_dev = [q for queries in dev_sets.values() for q in queries]
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        none = Path(scratch) / "none.tsv"
        for label, path in [("model", model), *baselines.items()]:
            log(f"quality: {label} ({path})")
            searcher = open_searcher(kcd, model=path, user_synonyms=none)
            if quality:
                rows[label] = quality_dense(searcher, names, dev_sets)
            if label == "model":
                log("speed: end-to-end single queries")
                result["speed"] = speed(searcher, latency_queries(names, all_dev))
                if quality:
                    log("confidence: nonsense strings and dev answers")
                    result["confidence"] = confidence_check(searcher, dev_sets)
                result["speed"]["threads"] = searcher.embedder.threads
                result["speed"].update(memory_and_startup(path, cache=cache_dir(), kcd=kcd))
                if build:
                    cold = memory_and_startup(path, cache=Path(scratch) / "cold-cache", kcd=kcd)
                    result["speed"]["first_launch_s"] = cold["first_result_s"]
                    result["speed"]["first_launch_peak_rss_mb"] = cold["peak_rss_mb"]
                result["speed"]["model_mb"] = (path / "model.onnx").stat().st_size / 1e6
                result["speed"]["assets_mb"] = (
                    sum(f.stat().st_size for f in (ROOT / "assets").rglob("*") if f.is_file()) / 1e6
                )
                if build:
                    log("speed: index build from the bundle's prebuilt vectors (a first launch)")
                    started = time.perf_counter()
                    built = open_searcher(kcd, model=path, cache=Path(scratch) / "cache", user_synonyms=none)
                    result["speed"]["index_build_prebuilt_s"] = time.perf_counter() - started
                    result["speed"]["index_build_prebuilt_names"] = len(built.table)
                    del built
                    log(f"speed: index build embedding all {len(searcher.table)} names (no prebuilt vectors)")
                    started = time.perf_counter()
                    open_index(
                        searcher.dictionary,
                        searcher.table,
                        searcher.embedder,
                        cache=Path(scratch) / "cache-embed",
                        prebuilt=False,
                    )
                    result["speed"]["index_build_embed_s"] = time.perf_counter() - started
                    result["speed"]["index_build_names"] = len(searcher.table)
            del searcher
            if quality and ablate_bank:
                log(f"quality: {label} without the open synonym bank (dev queries)")
                plain = open_searcher(kcd, model=path, user_synonyms=none, bank=False)
                rows[f"{label} w/o bank"] = {
                    **{t: rows[label][t] for t in ("ko2en", "en2ko", "mixed")},
                    "dev": dev_sets_accuracy(dev_sets, plain),
                }
                del plain
        if quality and ablate_curated:
            log("quality: the model under test without the curated synonym list (dev queries)")
            plain = open_searcher(kcd, model=model, user_synonyms=none, curated=False)
            rows["model w/o curated"] = {
                **{t: rows["model"][t] for t in ("ko2en", "en2ko", "mixed")},
                "dev": dev_sets_accuracy(dev_sets, plain),
            }
            del plain
        if quality:
            log("quality: lexical character n-gram baseline (TF-IDF alone, same dictionary as the product)")
            searched = load_searched(kcd, "kcd")  # the names the product searches
            rows["lexical"] = quality_lexical(names, TermTable(list(searched.terms())), dev_sets)
    result["quality"] = rows
    result["peak_rss_mb_benchmark_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(render(result))
    return result


def bundle_digest(path: Path) -> str:
    """sha256 over the bundle's manifest and model file: which model a result measured."""
    digest = hashlib.sha256()
    for file in ("manifest.json", "model.onnx"):
        if (path / file).is_file():
            digest.update(sha256_file(path / file).encode())
    return digest.hexdigest()


def render(result: dict) -> str:
    rows = result["quality"]
    lines = [
        f"benchmark {result['name']}  ({result['machine']['cpu']}, {result['machine']['cores']} cores)",
        "",
    ]
    if rows:
        lines += _quality_lines(rows)
    lines += _speed_lines(result.get("speed") or {})
    confidence = result.get("confidence") or {}
    if confidence:
        lines += [
            "",
            f"Confidence: 'no good match' for {100 * confidence['nonsense']['no_good_match']:.1f} % of "
            f"{confidence['nonsense']['n']} random strings",
        ]
        for name, row in confidence.items():
            if name != "nonsense" and row["above_low"] is not None:
                lines.append(
                    f"  {name}: {100 * row['above_low']:.1f} % of {row['right_at_1']} right answers at rank 1 above 'low'"
                )
    return "\n".join(lines)


def _quality_lines(rows: dict) -> list[str]:
    lines = [
        "KCD-8 held-out linking (Acc@1 / Acc@5 / MRR@10):",
        format_table({k: {t: v[t] for t in ("ko2en", "en2ko", "mixed")} for k, v in rows.items()}),
    ]
    sets = list(dict.fromkeys(s for r in rows.values() for s in r["dev"]))
    for set_name in sets:
        lines += ["", f"Dev queries '{set_name}' (Acc@1 / Acc@5):"]
        tables = {label: r["dev"][set_name]["by_kind"] for label, r in rows.items() if set_name in r["dev"]}
        kinds = sorted(
            {k for t in tables.values() for k in t},
            key=lambda k: (k in ("unlisted", "overall"), k == "overall", k),
        )
        lines.append(f"{'model':<24}" + "".join(f"{k[:14]:>15}" for k in kinds))
        for label, table in tables.items():
            cells = "".join(
                f"{table[k]['acc1']:>9.1f}{table[k]['acc5']:>6.1f}" if k in table else f"{'-':>15}"
                for k in kinds
            )
            lines.append(f"{label[:24]:<24}{cells}")
    return lines


def _speed_lines(s: dict) -> list[str]:
    lines: list[str] = []
    if s:
        lines += [
            "",
            f"Speed, size and memory (model under test, onnxruntime CPU, {s.get('threads', '?')} threads):",
            f"  query latency end to end: p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms "
            f"over {s['queries']} queries",
            f"  first result in a fresh process: {s['first_result_s']:.1f} s with the index cached, "
            f"{s.get('first_launch_s', float('nan')):.1f} s on a first launch (empty cache); "
            f"peak RSS {s['peak_rss_mb']:.0f} MB ({s.get('first_launch_peak_rss_mb', float('nan')):.0f} MB "
            "on a first launch)",
            f"  model.onnx {s['model_mb']:.1f} MB; assets/ {s['assets_mb']:.1f} MB; "
            f"hnswlib recall@10 {s['hnsw_recall_at_10']:.3f}",
        ]
        if "index_build_prebuilt_s" in s:
            lines.append(
                f"  index build from the bundle's prebuilt vectors ({s.get('index_build_prebuilt_names', '?')} "
                f"names): {s['index_build_prebuilt_s']:.1f} s"
            )
        if "index_build_embed_s" in s:
            lines.append(
                f"  index build embedding all {s['index_build_names']} names: {s['index_build_embed_s']:.1f} s"
            )
    return lines
