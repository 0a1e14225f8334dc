"""Mapping projects: a hospital's list of local terms, the suggested concepts and every
reviewer decision, in one SQLite file.

The workflow of OHDSI Usagi (import source terms, suggest, approve / flag / ignore, export an
OMOP SOURCE_TO_CONCEPT_MAP), with this product's bilingual search. The project file is
written in SQLite transactions (WAL, synchronous=FULL): a process killed at any moment loses
no decision that was reported done, and suggestion work resumes where it stopped.

- `read_source` streams a CSV / TSV / TXT / XLSX file (UTF-8 or cp949, header or not) and
  guesses the term, code and frequency columns (`guess_columns`).
- `MappingProject.create` imports the rows with all their columns; `suggest` fills in the top
  concepts in batches (bounded memory), never touching decided rows.
- `decide`, `undo`, `apply_previous`: the reviewer's work.
- `export_csv`, `export_stcm`, `export_usagi`: the source file plus the decisions; OMOP CDM
  v5.4's source_to_concept_map; Usagi's CSV (which `apply_previous` also reads back).
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
import sqlite3
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from .dictionary import Dictionary
from .errors import InputError
from .fsutil import atomic_file

STATUSES = ("unchecked", "approved", "flagged", "ignored")
EQUIVALENCES = ("EQUAL", "EQUIVALENT", "WIDER", "NARROWER", "INEXACT", "UNMATCHED", "UNREVIEWED")
# OMOP CDM v5.4, SOURCE_TO_CONCEPT_MAP, in the specification's order
STCM_COLUMNS = (
    "source_code",
    "source_concept_id",
    "source_vocabulary_id",
    "source_code_description",
    "target_concept_id",
    "target_vocabulary_id",
    "valid_start_date",
    "valid_end_date",
    "invalid_reason",
)
USAGI_COLUMNS = (
    "sourceCode",
    "sourceName",
    "sourceFrequency",
    "sourceAutoAssignedConceptIds",
    "matchScore",
    "mappingStatus",
    "equivalence",
    "statusSetBy",
    "statusSetOn",
    "conceptId",
    "conceptName",
    "domainId",
    "mappingType",
    "comment",
    "createdBy",
    "createdOn",
    "assignedReviewer",
)
SCHEMA = 1

# ----------------------------------------------------------------------------- reading sources


@dataclass
class Source:
    """A source file's shape: its columns (header names, or column_1 … without a header),
    whether the first row is a header, its encoding, and the guessed columns."""

    path: Path
    columns: list[str]
    header: bool
    encoding: str
    term_column: int
    code_column: int | None = None
    frequency_column: int | None = None
    sample: list[list[str]] = field(default_factory=list, repr=False)

    def rows(self) -> Iterator[list[str]]:
        """Every data row (header skipped), padded to the column count; streamed."""
        rows = _raw_rows(self.path, self.encoding)
        if self.header:
            next(rows, None)
        width = len(self.columns)
        for row in rows:
            if any(cell.strip() for cell in row):
                yield (row + [""] * width)[:width] if len(row) < width else row


def detect_encoding(path: Path) -> str:
    """utf-8 (with or without BOM) when the whole file decodes so, else cp949 (Korean Excel).
    Read in chunks: bounded memory for any size."""
    for encoding in ("utf-8-sig", "cp949"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path}: neither UTF-8 nor cp949 text")


def _raw_rows(path: Path, encoding: str) -> Iterator[list[str]]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        yield from _xlsx_rows(path)
        return
    with open(path, encoding=encoding, newline="") as handle:
        if suffix == ".txt":
            for line in handle:
                yield [line.rstrip("\r\n")]
            return
        first = handle.readline()
        handle.seek(0)
        delimiter = "\t" if suffix == ".tsv" or "\t" in first else ","
        yield from csv.reader(handle, delimiter=delimiter)


_XLSX = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    """The first worksheet's rows (values as text), read with the standard library: an XLSX
    file is a zip of XML parts. Streamed row by row."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not an .xlsx file (not a zip archive)") from None
    with archive:
        strings: list[str] = []
        if "xl/sharedStrings.xml" in archive.namelist():
            with archive.open("xl/sharedStrings.xml") as handle:
                for _, item in ElementTree.iterparse(handle):
                    if item.tag == f"{_XLSX}si":
                        strings.append("".join(t.text or "" for t in item.iter(f"{_XLSX}t")))
                        item.clear()
        sheets = sorted(n for n in archive.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
        if not sheets:
            raise InputError(f"{path}: no worksheet in this .xlsx file")
        with archive.open(sheets[0]) as handle:
            for _, row in ElementTree.iterparse(handle):
                if row.tag != f"{_XLSX}row":
                    continue
                cells: dict[int, str] = {}
                for cell in row.iter(f"{_XLSX}c"):
                    reference = cell.get("r")
                    column = _xlsx_column(reference) if reference else len(cells)
                    kind = cell.get("t")
                    if kind == "inlineStr":
                        value = "".join(t.text or "" for t in cell.iter(f"{_XLSX}t"))
                    else:
                        v = cell.find(f"{_XLSX}v")
                        value = "" if v is None or v.text is None else v.text
                        if kind == "s" and value:
                            value = strings[int(value)]
                        elif kind is None and re.fullmatch(r"-?\d+\.0", value):
                            value = value[:-2]  # whole numbers stored as floats
                    cells[column] = value
                row.clear()
                yield [cells.get(i, "") for i in range(max(cells) + 1)] if cells else []


def _xlsx_column(reference: str) -> int:
    letters = re.match(r"[A-Z]+", reference)
    number = 0
    for letter in letters.group(0) if letters else "A":
        number = number * 26 + ord(letter) - ord("A") + 1
    return number - 1


_NAME_HEADERS = re.compile(r"(name|term|desc|label|text|용어|명칭|이름|진단명|상병명|^명$)", re.I)
_CODE_HEADERS = re.compile(r"(code|^cd$|코드)", re.I)
_FREQ_HEADERS = re.compile(r"(freq|count|^n$|빈도|건수|횟수)", re.I)
_NUMBER = re.compile(r"^-?\d+([.,]\d+)?$")
_CODEISH = re.compile(r"^[A-Za-z]?\d[\w.\-]*$|^[A-Z]{1,3}\d{2,}[\w.\-]*$")
_LETTERS = re.compile(r"[A-Za-z\uac00-\ud7a3]{2,}")


def _name_like(cell: str) -> float:
    cell = cell.strip()
    if not cell or _NUMBER.match(cell) or _CODEISH.match(cell):
        return 0.0
    return 1.0 if _LETTERS.search(cell) else 0.2


def guess_header(rows: Sequence[Sequence[str]]) -> bool | None:
    """Whether the first row is a header: True / False when clear, None when unclear (ask).
    A header row has no empty cell, number or code, and either a cell that names a known column
    (code, name, 빈도 …) or a column whose other rows are numbers or codes."""
    if len(rows) < 2:
        return None
    first, rest = rows[0], rows[1:]
    if not first or any(
        not c.strip() or _NUMBER.match(c.strip()) or _CODEISH.match(c.strip()) for c in first
    ):
        return False  # a header has no empty cell, no number and no code
    known = any(p.search(c.strip()) for c in first for p in (_NAME_HEADERS, _CODE_HEADERS, _FREQ_HEADERS))
    for column, cell in enumerate(first):
        below = [r[column].strip() for r in rest if column < len(r) and r[column].strip()]
        if below and _name_like(cell) and all(_NUMBER.match(v) or _CODEISH.match(v) for v in below):
            return True
    if known and len(first) > 1:
        return True
    return None


def guess_columns(
    columns: Sequence[str], rows: Sequence[Sequence[str]], *, header: bool
) -> tuple[int, int | None, int | None]:
    """(term, code, frequency) column indexes: the term column is the one that looks most like
    names (letters, not numbers or codes, longer, varied), a header naming it wins; code and
    frequency columns by their header, or by their content (codes, whole numbers)."""

    def column(index: int) -> list[str]:
        return [r[index].strip() for r in rows if index < len(r)]

    def by_header(pattern: re.Pattern, exclude: set[int]) -> int | None:
        if not header:
            return None
        return next((i for i, c in enumerate(columns) if i not in exclude and pattern.search(c)), None)

    scores = []
    for index in range(len(columns)):
        cells = [c for c in column(index) if c]
        if not cells:
            scores.append(0.0)
            continue
        names = sum(_name_like(c) for c in cells) / len(cells)
        length = sum(len(c) for c in cells) / len(cells)
        variety = len(set(cells)) / len(cells)
        scores.append(names * (1 + math.log1p(length)) * (0.5 + variety))
    term = by_header(_NAME_HEADERS, set())
    if term is None or scores[term] == 0:
        term = max(range(len(columns)), key=lambda i: (scores[i], -i))
    code = by_header(_CODE_HEADERS, {term})
    if code is None:
        for index in range(len(columns)):
            cells = [c for c in column(index) if c]
            if (
                index != term
                and cells
                and all(_CODEISH.match(c) for c in cells)
                and len(set(cells)) == len(cells)
            ):
                if not all(re.fullmatch(r"\d+", c) for c in cells) or header:
                    code = index
                    break
    frequency = by_header(_FREQ_HEADERS, {term, code} - {None})
    if frequency is None:
        for index in range(len(columns)):
            cells = [c for c in column(index) if c]
            if index not in (term, code) and cells and all(re.fullmatch(r"\d+", c) for c in cells):
                frequency = index if header else None
                break
    return term, code, frequency


def read_source(
    path: str | Path,
    *,
    header: bool | None = None,
    term_column: str | int | None = None,
    code_column: str | int | None = None,
    frequency_column: str | int | None = None,
    sample_size: int = 200,
) -> Source:
    """Look at a source file: encoding, header (None: guess; raises InputError when unclear, so
    the caller asks), columns and the guessed term / code / frequency columns. Named columns
    (by header name or 1-based number) override the guesses. A `.txt` file is one term per
    line, never a header."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    encoding = "utf-8" if path.suffix.lower() == ".xlsx" else detect_encoding(path)
    sample = []
    for row in _raw_rows(path, encoding):
        if any(c.strip() for c in row):
            sample.append(row)
        if len(sample) > sample_size:
            break
    if not sample:
        raise InputError(f"{path}: no rows")
    if path.suffix.lower() == ".txt":
        header = False
    elif header is None:
        header = guess_header(sample)
        if header is None:
            raise InputError(
                f"{path}: cannot tell whether the first row ({', '.join(sample[0])[:80]}) is a header; "
                "say so (--header or --no-header)"
            )
    width = max(len(r) for r in sample)
    columns = (
        [c.strip() or f"column_{i + 1}" for i, c in enumerate(sample[0] + [""] * (width - len(sample[0])))]
        if header
        else [f"column_{i + 1}" for i in range(width)]
    )
    data = sample[1:] if header else sample
    term, code, frequency = guess_columns(columns, data, header=header)

    def pick(value: str | int | None, guessed: int | None, what: str) -> int | None:
        if value is None:
            return guessed
        if isinstance(value, int) or str(value).isdigit():
            index = int(value) - 1
            if not 0 <= index < len(columns):
                raise InputError(f"{path}: no column {value} for the {what} (the file has {len(columns)})")
            return index
        if value not in columns:
            raise InputError(f"{path}: no column {value!r} for the {what}; columns: {', '.join(columns)}")
        return columns.index(value)

    term = pick(term_column, term, "term")
    code = pick(code_column, code if term_column is None or code != term else None, "code")
    frequency = pick(frequency_column, frequency, "frequency")
    return Source(path, columns, header, encoding, term, code, frequency, sample=data)


# ----------------------------------------------------------------------------- the project file


@dataclass(frozen=True)
class Suggestion:
    rank: int
    code: str
    name_ko: str
    name_en: str
    score: float
    confidence: float | None
    level: str


@dataclass(frozen=True)
class Row:
    """One source row with its suggestions and decision."""

    id: int
    cells: tuple[str, ...]
    term: str
    source_code: str
    frequency: int
    status: str = "unchecked"
    targets: tuple[str, ...] = ()
    equivalence: str = "UNREVIEWED"
    comment: str = ""
    reviewer: str = ""
    updated_at: float | None = None
    suggestions: tuple[Suggestion, ...] = ()

    @property
    def top(self) -> Suggestion | None:
        return self.suggestions[0] if self.suggestions else None


_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    id INTEGER PRIMARY KEY,
    cells TEXT NOT NULL,
    term TEXT NOT NULL,
    source_code TEXT NOT NULL DEFAULT '',
    frequency INTEGER NOT NULL DEFAULT 0,
    suggested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS suggestions (
    row_id INTEGER NOT NULL REFERENCES rows(id),
    rank INTEGER NOT NULL,
    code TEXT NOT NULL,
    name_ko TEXT NOT NULL,
    name_en TEXT NOT NULL,
    score REAL NOT NULL,
    confidence REAL,
    level TEXT NOT NULL,
    PRIMARY KEY (row_id, rank)
);
CREATE TABLE IF NOT EXISTS decisions (
    row_id INTEGER PRIMARY KEY REFERENCES rows(id),
    status TEXT NOT NULL,
    targets TEXT NOT NULL,
    equivalence TEXT NOT NULL,
    comment TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS undo (id INTEGER PRIMARY KEY AUTOINCREMENT, row_id INTEGER NOT NULL, previous TEXT);
CREATE INDEX IF NOT EXISTS rows_unsuggested ON rows (suggested, id);
"""


class MappingProject:
    """A mapping project file (SQLite). Every method that changes it commits before it returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such mapping project")
        try:
            self.db = self._connect(self.path)
        except sqlite3.DatabaseError:
            raise InputError(f"{self.path}: not a mapping project (not an SQLite file)") from None
        try:
            schema = self.meta("schema")
        except sqlite3.DatabaseError:
            schema = None  # an SQLite file of something else: no meta table
        if schema != str(SCHEMA):
            self.db.close()
            found = "no schema" if schema is None else f"schema {schema!r}"
            raise InputError(f"{self.path}: not a mapping project of this version ({found})")

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @classmethod
    def create(
        cls,
        path: str | Path,
        source: Source,
        *,
        progress: Callable[[int], None] | None = None,
        batch: int = 2000,
    ) -> MappingProject:
        """Import `source` into a new project file (refuses to overwrite one). The rows go in
        batches; the file appears under its name only once the import finished."""
        path = Path(path)
        if path.exists():
            raise InputError(f"{path}: already exists; open it to continue, or choose another name")
        tmp = path.with_name(f".{path.name}.importing")
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        db = cls._connect(tmp)
        db.executescript(_TABLES)
        meta = {
            "schema": str(SCHEMA),
            "source": str(source.path),
            "columns": json.dumps(source.columns, ensure_ascii=False),
            "header": json.dumps(source.header),
            "encoding": source.encoding,
            "term_column": str(source.term_column),
            "code_column": "" if source.code_column is None else str(source.code_column),
            "frequency_column": "" if source.frequency_column is None else str(source.frequency_column),
            "created_at": str(time.time()),
        }
        db.execute("BEGIN")
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        count, pending = 0, []
        for cells in source.rows():
            term = cells[source.term_column].strip() if source.term_column < len(cells) else ""
            code = cells[source.code_column].strip() if source.code_column is not None else ""
            frequency = _int(cells[source.frequency_column]) if source.frequency_column is not None else 0
            pending.append((json.dumps(cells, ensure_ascii=False), term, code, frequency))
            if len(pending) >= batch:
                db.executemany(
                    "INSERT INTO rows (cells, term, source_code, frequency) VALUES (?, ?, ?, ?)", pending
                )
                count += len(pending)
                pending = []
                if progress:
                    progress(count)
        db.executemany("INSERT INTO rows (cells, term, source_code, frequency) VALUES (?, ?, ?, ?)", pending)
        count += len(pending)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        if progress:
            progress(count)
        tmp.rename(path)
        return cls(path)

    def close(self) -> None:
        self.db.close()

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def columns(self) -> list[str]:
        return json.loads(self.meta("columns") or "[]")

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]

    def counts(self) -> dict[str, int]:
        """Rows per status (unchecked included), and how many have suggestions."""
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM decisions GROUP BY status"):
            counts[status] = n
        counts["unchecked"] = len(self) - sum(counts[s] for s in STATUSES if s != "unchecked")
        counts["suggested"] = self.db.execute("SELECT COUNT(*) FROM rows WHERE suggested = 1").fetchone()[0]
        return counts

    # --------------------------------------------------------------------- suggestions

    def suggest(
        self,
        search_many: Callable[[Sequence[str], int], list[list]],
        *,
        k: int = 5,
        batch: int = 256,
        redo: bool = False,
        fingerprint: str = "",
        progress: Callable[[int, int], bool | None] | None = None,
    ) -> int:
        """Fill in the top-k concepts of every row that has none, `batch` rows per transaction,
        so a killed run resumes where it stopped and memory stays bounded. With `redo` (e.g.
        after a dictionary or model change), undecided rows get fresh suggestions; decided rows
        keep theirs. `search_many(terms, k)` returns Hits (core.search.Searcher.search_many).
        Returns the number of rows done; `progress(done, total)` may return False to stop."""
        if redo:
            self.db.execute(
                "UPDATE rows SET suggested = 0 WHERE suggested = 1 AND id NOT IN "
                "(SELECT row_id FROM decisions WHERE status != 'unchecked')"
            )
        total = self.db.execute("SELECT COUNT(*) FROM rows WHERE suggested = 0").fetchone()[0]
        done, last = 0, 0
        while True:
            rows = self.db.execute(
                "SELECT id, term FROM rows WHERE suggested = 0 AND id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                break
            terms = [term for _, term in rows]
            present = [t for t in terms if t.strip()]
            found = iter(search_many(present, k) if present else [])
            results = [next(found) if t.strip() else [] for t in terms]
            self.db.execute("BEGIN IMMEDIATE")
            for (row_id, _), hits in zip(rows, results):
                self.db.execute("DELETE FROM suggestions WHERE row_id = ?", (row_id,))
                self.db.executemany(
                    "INSERT INTO suggestions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (row_id, rank, h.code, h.name_ko, h.name_en, float(h.score), h.confidence, h.level)
                        for rank, h in enumerate(hits[:k], start=1)
                    ],
                )
                self.db.execute("UPDATE rows SET suggested = 1 WHERE id = ?", (row_id,))
            if fingerprint:
                self.set_meta("suggested_with", fingerprint)
            self.db.execute("COMMIT")
            done += len(rows)
            last = rows[-1][0]
            if progress is not None and progress(done, total) is False:
                break
        return done

    # --------------------------------------------------------------------- reading rows

    def rows(
        self, *, status: str | None = None, order: str = "id", limit: int | None = None, offset: int = 0
    ) -> list[Row]:
        """Rows with their suggestions and decisions; `status` filters, `order` is id,
        frequency (highest first) or score (lowest first: the doubtful ones)."""
        orders = {
            "id": "r.id",
            "frequency": "r.frequency DESC, r.id",
            "score": "COALESCE(s.score, 0), r.id",
        }
        if order not in orders:
            raise ValueError(f"order {order!r}: choose one of {', '.join(orders)}")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status {status!r}: choose one of {', '.join(STATUSES)}")
        where, args = "", []
        if status is not None:
            where = "WHERE COALESCE(d.status, 'unchecked') = ?"
            args.append(status)
        query = (
            "SELECT r.id, r.cells, r.term, r.source_code, r.frequency, d.status, d.targets, d.equivalence, "
            "d.comment, d.reviewer, d.updated_at FROM rows r LEFT JOIN decisions d ON d.row_id = r.id "
            f"LEFT JOIN suggestions s ON s.row_id = r.id AND s.rank = 1 {where} ORDER BY {orders[order]}"
        )
        if limit is not None:
            query += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return [self._row(r) for r in self.db.execute(query, args).fetchall()]

    def row(self, row_id: int) -> Row:
        found = self.db.execute(
            "SELECT r.id, r.cells, r.term, r.source_code, r.frequency, d.status, d.targets, d.equivalence, "
            "d.comment, d.reviewer, d.updated_at FROM rows r LEFT JOIN decisions d ON d.row_id = r.id "
            "WHERE r.id = ?",
            (row_id,),
        ).fetchone()
        if found is None:
            raise KeyError(row_id)
        return self._row(found)

    def _row(self, r: tuple) -> Row:
        suggestions = tuple(
            Suggestion(*s)
            for s in self.db.execute(
                "SELECT rank, code, name_ko, name_en, score, confidence, level FROM suggestions "
                "WHERE row_id = ? ORDER BY rank",
                (r[0],),
            )
        )
        return Row(
            id=r[0],
            cells=tuple(json.loads(r[1])),
            term=r[2],
            source_code=r[3],
            frequency=r[4],
            status=r[5] or "unchecked",
            targets=tuple(json.loads(r[6])) if r[6] else (),
            equivalence=r[7] or "UNREVIEWED",
            comment=r[8] or "",
            reviewer=r[9] or "",
            updated_at=r[10],
            suggestions=suggestions,
        )

    def next_unchecked(self, after: int = 0) -> Row | None:
        """The first unchecked row after `after` (wrapping around), or None when all are done."""
        for bound, op in ((after, ">"), (0, ">")):
            found = self.db.execute(
                "SELECT r.id FROM rows r LEFT JOIN decisions d ON d.row_id = r.id "
                f"WHERE COALESCE(d.status, 'unchecked') = 'unchecked' AND r.id {op} ? ORDER BY r.id LIMIT 1",
                (bound,),
            ).fetchone()
            if found:
                return self.row(found[0])
        return None

    # --------------------------------------------------------------------- decisions

    def decide(
        self,
        row_id: int,
        *,
        status: str | None = None,
        targets: Sequence[str] | None = None,
        equivalence: str | None = None,
        comment: str | None = None,
        reviewer: str | None = None,
    ) -> Row:
        """Record a decision (fields left None keep their value); approving a row without a
        target takes its top suggestion. One transaction, with an undo record."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status {status!r}: choose one of {', '.join(STATUSES)}")
        if equivalence is not None and equivalence not in EQUIVALENCES:
            raise ValueError(f"equivalence {equivalence!r}: choose one of {', '.join(EQUIVALENCES)}")
        current = self.row(row_id)
        new_targets = tuple(targets) if targets is not None else current.targets
        new_status = status or current.status
        if new_status == "approved" and not new_targets:
            if current.top is None:
                raise ValueError(f"row {row_id}: nothing to approve (no target and no suggestion)")
            new_targets = (current.top.code,)
        new_equivalence = equivalence or current.equivalence
        if new_status == "approved" and new_equivalence == "UNREVIEWED":
            new_equivalence = "EQUAL"
        previous = self.db.execute("SELECT * FROM decisions WHERE row_id = ?", (row_id,)).fetchone()
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO undo (row_id, previous) VALUES (?, ?)", (row_id, json.dumps(previous)))
        self.db.execute(
            "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row_id,
                new_status,
                json.dumps(list(new_targets), ensure_ascii=False),
                new_equivalence,
                current.comment if comment is None else comment,
                current.reviewer if reviewer is None else reviewer,
                previous[6] if previous else now,
                now,
            ),
        )
        self.db.execute("COMMIT")
        return self.row(row_id)

    def undo(self) -> Row | None:
        """Take back the last decision; returns the row as it is again (None: nothing to undo)."""
        last = self.db.execute("SELECT id, row_id, previous FROM undo ORDER BY id DESC LIMIT 1").fetchone()
        if last is None:
            return None
        undo_id, row_id, previous = last
        previous = json.loads(previous)
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("DELETE FROM decisions WHERE row_id = ?", (row_id,))
        if previous is not None:
            self.db.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", previous)
        self.db.execute("DELETE FROM undo WHERE id = ?", (undo_id,))
        self.db.execute("COMMIT")
        return self.row(row_id)

    def approve_above(self, confidence: float, *, reviewer: str = "") -> int:
        """Approve every unchecked row whose top suggestion's confidence is at least
        `confidence` (a decision per row, each one undoable). Returns the count."""
        ids = [
            r[0]
            for r in self.db.execute(
                "SELECT r.id FROM rows r JOIN suggestions s ON s.row_id = r.id AND s.rank = 1 "
                "LEFT JOIN decisions d ON d.row_id = r.id "
                "WHERE COALESCE(d.status, 'unchecked') = 'unchecked' AND s.confidence >= ? ORDER BY r.id",
                (confidence,),
            )
        ]
        for row_id in ids:
            self.decide(row_id, status="approved", reviewer=reviewer)
        return len(ids)

    def apply_previous(self, path: str | Path, *, concept_codes: dict[str, str] | None = None) -> int:
        """Carry decisions over from a previous mapping: another project file, or a Usagi CSV
        (its conceptId translated to codes with `concept_codes`, OMOP concept_id → code; a
        conceptName that starts with a code is used otherwise). Rows match on the source code
        when both have one, else on the term; only unchecked rows change. Returns the count."""
        previous = _previous_decisions(Path(path), concept_codes or {})
        applied = 0
        for row in self.rows(status="unchecked"):
            decision = previous.get(("code", row.source_code)) if row.source_code else None
            decision = decision or previous.get(("term", row.term.strip().casefold()))
            if decision is None:
                continue
            status, targets, equivalence, comment, reviewer = decision
            self.decide(
                row.id,
                status=status,
                targets=targets,
                equivalence=equivalence,
                comment=comment,
                reviewer=reviewer,
            )
            applied += 1
        return applied


def _int(value: str) -> int:
    try:
        return int(float(value.replace(",", "").strip() or 0))
    except ValueError:
        return 0


def _previous_decisions(path: Path, concept_codes: dict[str, str]) -> dict[tuple[str, str], tuple]:
    decisions: dict[tuple[str, str], tuple] = {}
    if path.suffix.lower() in (".csv", ".tsv"):  # a Usagi export; anything else is a project file
        source = read_source(path, header=True)
        index = {name: i for i, name in enumerate(source.columns)}
        missing = [c for c in ("sourceCode", "sourceName", "mappingStatus", "conceptId") if c not in index]
        if missing:
            raise InputError(f"{path}: not a Usagi export (missing {', '.join(missing)})")
        grouped: dict[tuple[str, str], list] = {}
        for cells in source.rows():
            value = dict(zip(source.columns, (c.strip() for c in cells)))
            status = value["mappingStatus"].lower()
            if status not in STATUSES or status == "unchecked":
                continue
            concept_id, name = value["conceptId"], value.get("conceptName", "")
            code = concept_codes.get(concept_id) or (name.split(" ", 1)[0] if concept_id in ("", "0") else "")
            key = (
                ("code", value["sourceCode"])
                if value["sourceCode"]
                else ("term", value["sourceName"].casefold())
            )
            entry = grouped.setdefault(
                key,
                [
                    status,
                    [],
                    value.get("equivalence") or "UNREVIEWED",
                    value.get("comment", ""),
                    value.get("statusSetBy", ""),
                ],
            )
            if code and code not in entry[1]:
                entry[1].append(code)
        for key, (status, targets, equivalence, comment, reviewer) in grouped.items():
            equivalence = equivalence if equivalence in EQUIVALENCES else "UNREVIEWED"
            decisions[key] = (status, tuple(targets), equivalence, comment, reviewer)
        return decisions
    project = MappingProject(path)
    try:
        for row in project.rows():
            if row.status == "unchecked":
                continue
            key = ("code", row.source_code) if row.source_code else ("term", row.term.strip().casefold())
            decisions[key] = (row.status, row.targets, row.equivalence, row.comment, row.reviewer)
    finally:
        project.close()
    return decisions


# ----------------------------------------------------------------------------- exports


def _iter_all(project: MappingProject, page: int = 1000) -> Iterator[Row]:
    offset = 0
    while True:
        rows = project.rows(limit=page, offset=offset)
        if not rows:
            return
        yield from rows
        offset += page


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence], *, bom: bool = True) -> int:
    """Stream rows into a CSV that replaces `path` only when complete; returns the row count.
    With `bom`, UTF-8 with a byte order mark, so Korean Excel opens it as UTF-8."""
    count = 0
    with atomic_file(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def export_csv(project: MappingProject, out: str | Path, *, names: Callable[[str], tuple[str, str]]) -> int:
    """The source file with all its columns, then the decision: target codes and names
    (" | " between several), status, equivalence, comment, reviewer, and the top suggestion
    with its score and confidence. `names(code)` gives (Korean, English)."""
    header = list(project.columns) + [
        "mapped_code",
        "mapped_name_ko",
        "mapped_name_en",
        "status",
        "equivalence",
        "comment",
        "reviewer",
        "suggested_code",
        "suggested_score",
        "suggested_confidence",
    ]

    def lines() -> Iterator[list[str]]:
        for row in _iter_all(project):
            targets = row.targets if row.status == "approved" else ()
            top = row.top
            yield list(row.cells) + [
                " | ".join(targets),
                " | ".join(names(c)[0] for c in targets),
                " | ".join(names(c)[1] for c in targets),
                row.status,
                row.equivalence,
                row.comment,
                row.reviewer,
                top.code if top else "",
                f"{top.score:.4f}" if top else "",
                "" if top is None or top.confidence is None else f"{top.confidence:.3f}",
            ]

    return _write_csv(Path(out), header, lines())


def export_stcm(
    project: MappingProject,
    out: str | Path,
    *,
    concept_id: Callable[[str], str],
    target_vocabulary: Callable[[str], str],
    source_vocabulary: str = "LOCAL",
    valid_start: str = "1970-01-01",
    valid_end: str = "2099-12-31",
) -> int:
    """OMOP CDM v5.4 SOURCE_TO_CONCEPT_MAP rows for the approved rows, one per target:
    `concept_id(code)` is the OMOP concept id ("0" when the dictionary has none: the KCD-8
    table), the source code is the row's code column, else its term (at most 50 characters,
    as the CDM's source_code allows)."""
    if not 1 <= len(source_vocabulary) <= 20:
        raise InputError(f"source vocabulary {source_vocabulary!r}: 1 to 20 characters (OMOP vocabulary_id)")

    def lines() -> Iterator[list[str]]:
        for row in _iter_all(project):
            if row.status != "approved":
                continue
            for code in row.targets:
                yield [
                    (row.source_code or row.term)[:50],
                    "0",
                    source_vocabulary,
                    row.term[:255],
                    concept_id(code),
                    target_vocabulary(code),
                    valid_start,
                    valid_end,
                    "",
                ]

    return _write_csv(Path(out), STCM_COLUMNS, lines(), bom=False)


def export_usagi(
    project: MappingProject,
    out: str | Path,
    *,
    concept_id: Callable[[str], str],
    concept_name: Callable[[str], str],
    domain: Callable[[str], str],
) -> int:
    """Usagi's CSV: one line per source row and target (unchecked rows carry their top
    suggestion, as Usagi's own exports do). Without OMOP concept ids (the KCD-8 table),
    conceptId is 0 and conceptName starts with the code, which `apply_previous` reads back."""

    def lines() -> Iterator[list[str]]:
        for row in _iter_all(project):
            top = row.top
            targets = row.targets or ((top.code,) if top and row.status == "unchecked" else ())
            stamp = str(int((row.updated_at or 0) * 1000))
            for code in targets or ("",):
                yield [
                    row.source_code or row.term,
                    row.term,
                    str(row.frequency),
                    "",
                    f"{top.score:.2f}" if top else "0.00",
                    row.status.upper(),
                    row.equivalence,
                    row.reviewer,
                    stamp,
                    concept_id(code) if code else "0",
                    concept_name(code) if code else "",
                    domain(code) if code else "",
                    "MAPS_TO",
                    row.comment,
                    row.reviewer,
                    stamp,
                    row.reviewer,
                ]

    return _write_csv(Path(out), USAGI_COLUMNS, lines(), bom=False)


EXPORTS = ("csv", "stcm", "usagi")


def vocabulary_id(dictionary: Dictionary) -> str:
    """The vocabulary id written for targets the dictionary gives none (KCD-8: "KCD8")."""
    return "KCD8" if dictionary.name == "kcd8.tsv" else Path(dictionary.name).stem[:20]


def export_project(
    project: MappingProject,
    out: str | Path,
    kind: str,
    dictionary: Dictionary,
    *,
    source_vocabulary: str = "LOCAL",
) -> int:
    """Write `project` as `kind` (csv, stcm or usagi) with the names, OMOP concept ids,
    vocabularies and domains of `dictionary` (the one the suggestions came from)."""
    concepts = dictionary.concepts

    def info(code: str, key: str, default: str) -> str:
        concept = concepts.get(code)
        return (concept.info.get(key) if concept else None) or default

    def names(code: str) -> tuple[str, str]:
        concept = concepts.get(code)
        return (concept.display_name("ko"), concept.display_name("en")) if concept else ("", "")

    if kind == "csv":
        return export_csv(project, out, names=names)
    if kind == "stcm":
        vocabulary = vocabulary_id(dictionary)
        return export_stcm(
            project,
            out,
            concept_id=lambda c: info(c, "concept_id", "0"),
            target_vocabulary=lambda c: info(c, "vocabulary_id", vocabulary),
            source_vocabulary=source_vocabulary,
        )
    if kind == "usagi":
        return export_usagi(
            project,
            out,
            concept_id=lambda c: info(c, "concept_id", "0"),
            concept_name=lambda c: f"{c} {names(c)[1]}".strip(),
            domain=lambda c: info(c, "domain_id", "Condition"),
        )
    raise ValueError(f"export {kind!r}: choose one of {', '.join(EXPORTS)}")
