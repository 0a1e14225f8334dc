"""The long-tail dev set is a measuring stick: none of its queries may be written by hand into
code, tests, documentation or the hand-written lists (`../shared/data/dev_queries_longtail.md`).
Files built by rule from open sources (the dictionary, the bank's imports) and measured results
are not hand-written and are left out."""

from __future__ import annotations

import re
import subprocess

import pytest

from core.bench import LONGTAIL_QUERIES, ROOT, read_dev_queries

BUILT_OR_MEASURED = ("assets/kcd8.tsv", "assets/bank", "assets/model/", "bench/results/")
TEXT = (".py", ".md", ".tsv", ".txt", ".toml", ".json", ".sh", ".cfg", ".yml", ".ini")


def hand_written_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    return [f for f in listed if f.endswith(TEXT) and not f.startswith(BUILT_OR_MEASURED)]


def test_no_long_tail_query_is_written_by_hand():
    if not LONGTAIL_QUERIES.is_file() or not (ROOT / ".git").exists():
        pytest.skip("needs ../shared/data and a git checkout")
    queries = {" ".join(q.query.casefold().split()) for q in read_dev_queries(LONGTAIL_QUERIES)}
    # whitespace collapsed: a query wrapped across two lines of prose is still written there
    texts = {
        f: " ".join((ROOT / f).read_text(encoding="utf-8", errors="replace").casefold().split())
        for f in hand_written_files()
    }
    found = []
    for query in sorted(queries):
        # a whole token: a short query inside a longer word is no use of it
        pattern = re.compile(rf"(?<![a-z0-9가-힣]){re.escape(query)}(?![a-z0-9가-힣])")
        found += [f"{query!r} in {f}" for f, text in texts.items() if pattern.search(text)]
    assert not found, found
