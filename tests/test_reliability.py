"""Hospital-grade reliability: fuzzed inputs, damaged caches and bundles, the --batch contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from core.bundle import Embedder, read_manifest
from core.dictionary import load_dictionary, read_synonyms
from core.errors import BundleError
from core.search import Searcher
from tests.conftest import ROOT
from tests.fuzzing import fuzz_loaders, fuzz_queries


def test_mutated_files_of_every_format_load_whole_or_are_refused():
    counts = fuzz_loaders(600, seed=1)
    assert counts["crashed"] == 0, counts
    assert counts["truncated_loaded"] == 0, counts
    assert counts["loaded"] > 50 and counts["refused"] > 50  # the fuzzer exercises both outcomes


@pytest.fixture()
def searcher(small_kcd, tiny_bundle, cache, tmp_path):
    return Searcher(
        load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache, user_synonyms=tmp_path / "u.tsv"
    )


def test_generated_queries_never_raise(searcher):
    counts = fuzz_queries(searcher, 150, seed=2)
    assert counts["crashed"] == 0, counts
    assert searcher.search("\ud800간경화\x00", 3) is not None  # a lone surrogate and a NUL
    assert searcher.search("간" * (1 << 20), 3) is not None  # 1 MB


def run_cli(*args, cwd=ROOT):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=cwd, capture_output=True, text=True, env=env
    )


def test_batch_answers_line_n_with_line_n_in_utf8_or_cp949(small_kcd, tiny_bundle, cache, tmp_path):
    lines = ["간경화", "", "cholera\u2028x", "a\x0bb", "   ", "K74.6"]
    for encoding in ("utf-8", "cp949"):
        batch = tmp_path / f"q-{encoding}.txt"
        text = "\r\n".join(lines) + "\r\n"
        batch.write_bytes(text.encode(encoding, errors="replace" if encoding == "cp949" else "strict"))
        out = run_cli(
            "search", "--dictionary", str(small_kcd), "--model", str(tiny_bundle), "--batch", str(batch)
        )
        assert out.returncode == 0, out.stderr
        rows = [json.loads(line) for line in out.stdout.split("\n") if line]  # not splitlines: U+2028
        assert len(rows) == len(lines)
        assert rows[1]["results"] == [] and rows[5]["results"][0]["code"] == "K74.6"
        assert rows[0]["query"] == "간경화"


@pytest.mark.parametrize("target", ["missing.txt", "."])
def test_batch_file_problems_are_one_line_errors(small_kcd, tiny_bundle, cache, tmp_path, target):
    out = run_cli(
        "search",
        "--dictionary",
        str(small_kcd),
        "--model",
        str(tiny_bundle),
        "--batch",
        str(tmp_path / target),
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "cannot read the query file" in out.stderr
    bad_k = run_cli("search", "-k", "-1", "x")
    assert bad_k.returncode == 2 and "must be at least 1" in bad_k.stderr


@pytest.mark.parametrize("manifest", ["[]", "null", '{"schema_version": 1, "pooling": 3}', "{"])
def test_hand_edited_bundle_manifests_are_bundle_errors(tiny_bundle, tmp_path, manifest):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "manifest.json").write_text(manifest)
    with pytest.raises(BundleError):
        read_manifest(bundle)


def test_garbage_prebuilt_vectors_are_ignored(tmp_path):
    from core.index import load_prebuilt

    (tmp_path / "prebuilt.npz").write_bytes(b"not a zip file at all")
    vectors, found = load_prebuilt(tmp_path, ["a", "b"])
    assert not found.any()


def test_damaged_or_unwritable_caches_never_stop_a_search(small_kcd, tiny_bundle, cache, tmp_path):
    first = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache)
    expected = [h.code for h in first.search("cirrhosis", 5)]
    # a 0-byte lexical cache and an index manifest with fields of the wrong type
    for path in (cache / "lexical").glob("*.npz"):
        path.write_bytes(b"")
    manifests = list((cache / "index").glob("*/manifest.json"))
    for manifest in manifests:
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "count": "many", "files": []}))
    assert manifests
    again = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache)
    assert [h.code for h in again.search("cirrhosis", 5)] == expected
    # a cache root that is a file: everything runs uncached
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    uncached = Searcher(load_dictionary(small_kcd), Embedder(tiny_bundle), cache=blocked)
    assert [h.code for h in uncached.search("cirrhosis", 5)] == expected


def test_an_index_manifest_edited_by_hand_is_stale(tmp_path):
    from core.errors import IndexStaleError
    from core.index import TermIndex

    TermIndex.from_vectors(np.eye(4, dtype=np.float32), dictionary="d", bundle="b").save(tmp_path / "i")
    path = tmp_path / "i" / "manifest.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "count": 3}))  # valid JSON, valid types, wrong
    with pytest.raises(IndexStaleError, match="checksum"):
        TermIndex.load(tmp_path / "i", dictionary="d", bundle="b")


def test_an_index_manifest_with_a_valid_checksum_but_wrong_types_is_stale(tmp_path):
    """A manifest written by a buggy or older build: its checksum holds, a field's type does not."""
    from core.errors import IndexStaleError
    from core.index import TermIndex, _checksum

    TermIndex.from_vectors(np.eye(4, dtype=np.float32), dictionary="d", bundle="b").save(tmp_path / "i")
    path = tmp_path / "i" / "manifest.json"
    data = json.loads(path.read_text())
    data.pop("checksum")
    for field, value in (("count", "4"), ("dim", 4.0), ("files", ["index.bin"])):
        changed = {**data, field: value}
        path.write_text(json.dumps({**changed, "checksum": _checksum(changed)}))
        with pytest.raises(IndexStaleError, match="wrong type"):
            TermIndex.load(tmp_path / "i", dictionary="d", bundle="b")


def test_orphaned_temporary_folders_are_cleaned_up(tmp_path):
    from core.fsutil import atomic_dir

    target = tmp_path / "index"
    orphan = tmp_path / ".index.abc123"
    orphan.mkdir()
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    assert not orphan.exists() and (target / "x").read_text() == "1"


def test_codes_of_any_shape_are_found_as_codes(tmp_path, tiny_bundle, cache):
    terms = tmp_path / "terms.csv"
    terms.write_text("code,term\nC0023890,liver cirrhosis\nKOS000123,간경화\nK74.6,cirrhosis of liver\n")
    searcher = Searcher(load_dictionary(terms), Embedder(tiny_bundle), cache=cache)
    for query, code in (("C0023890", "C0023890"), ("kos000123", "KOS000123"), ("K74.6", "K74.6")):
        hit = searcher.search(query, 3)[0]
        assert (hit.code, hit.match) == (code, "code")
    assert np.isfinite(searcher.search("C0000000", 3)[0].score)  # no such code: dense results, no error


KILL_TARGET = """
import sys
from pathlib import Path
from core.bundle import Embedder
from core.dictionary import load_dictionary, read_synonyms
from core.search import Searcher
dictionary, bundle, cache, user, what = sys.argv[1:6]
searcher = Searcher(load_dictionary(dictionary), Embedder(bundle), cache=Path(cache), user_synonyms=Path(user))
print("ready", flush=True)
if what == "synonyms":
    for i in range(10_000):
        searcher.add_synonym("K74.6", f"local name {i}")
"""


@pytest.mark.parametrize("what", ["index", "synonyms"])
def test_kill_9_at_any_moment_loses_nothing_written(small_kcd, tiny_bundle, tmp_path, what):
    """SIGKILL during an index build or while synonyms are being saved: the next start finds a
    usable cache (or rebuilds it) and a synonym file that parses, with every row whole."""
    import random
    import signal

    user = tmp_path / "user.tsv"
    rng = random.Random(3)
    for attempt in range(4):
        cache = tmp_path / f"cache-{attempt}" if what == "index" else tmp_path / "cache"
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                KILL_TARGET,
                str(small_kcd),
                str(tiny_bundle),
                str(cache),
                str(user),
                what,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if what == "synonyms":
            process.stdout.readline()  # killed while adding, not while loading
        time.sleep(rng.uniform(0.05, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        searcher = Searcher(
            load_dictionary(small_kcd), Embedder(tiny_bundle), cache=cache, user_synonyms=user
        )
        assert searcher.search("cirrhosis", 3)
        rows = read_synonyms(user) if user.exists() else []
        assert all(code == "K74.6" and term.startswith("local name ") for code, term in rows)
        assert len({term for _, term in rows}) == len(rows)
