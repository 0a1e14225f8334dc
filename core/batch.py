"""Batch mapping: a CSV/TSV column of free-text terms → top concepts, saved as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from .bundle import Progress
from .errors import DictionaryError
from .fsutil import write_atomic
from .search import Hit, Searcher


def read_table(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a UTF-8 CSV or TSV file (the delimiter is sniffed from the header)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DictionaryError(path, "not valid UTF-8; save the table as UTF-8", line) from None
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ","
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
    if not rows or not any(rows[0]):
        raise DictionaryError(path, "empty table: expected a header row", 1)
    return rows[0], [row for row in rows[1:] if any(cell.strip() for cell in row)]


def map_terms(
    searcher: Searcher, terms: Sequence[str], *, k: int = 3, progress: Progress | None = None
) -> list[tuple[str, list[Hit]]]:
    """Each term with its top-k concepts."""
    results = searcher.search_many(terms, k, progress=progress)
    return list(zip(terms, results))


def write_mapping(path: str | Path, rows: Sequence[tuple[str, list[Hit]]], *, k: int = 3) -> None:
    """CSV: term, then code / Korean / English / score / confidence / level for each of the
    top-k concepts (level `none` is "no good match": a row a coder must look at)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["term"]
    for rank in range(1, k + 1):
        header += [
            f"code_{rank}",
            f"name_ko_{rank}",
            f"name_en_{rank}",
            f"score_{rank}",
            f"confidence_{rank}",
            f"level_{rank}",
        ]
    writer.writerow(header)
    for term, hits in rows:
        cells = [term]
        for hit in hits[:k]:
            confidence = "" if hit.confidence is None else f"{hit.confidence:.3f}"
            cells += [hit.code, hit.name_ko, hit.name_en, f"{hit.score:.4f}", confidence, hit.level]
        writer.writerow(cells + [""] * (len(header) - len(cells)))
    write_atomic(path, buffer.getvalue().encode("utf-8-sig"))
