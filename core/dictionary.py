"""Dictionaries: concepts with bilingual terms, and the loaders for every supported format.

Supported formats: the bundled KCD-8 table, a KOSTOM export (cp949), a generic UTF-8
CSV/TSV term list (`code`, `term`, optional `lang`), UMLS `MRCONSO.RRF` and an OMOP
vocabulary download from Athena (`CONCEPT.csv` + `CONCEPT_SYNONYM.csv`).
A damaged file raises `DictionaryError` naming the file and line; it never yields a
partial dictionary.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DictionaryError
from .text import detect_lang, is_empty_term, normalize

log = logging.getLogger(__name__)

FORMATS = ("kcd", "kostom", "table", "mrconso", "athena")
_KCD_HEADER = ["kcd", "ko", "en"]
_CUI = re.compile(r"^C\d{7}$")
_EN_WORD = re.compile(r"[a-z]{4,}")
_EN_STOP = frozenset(
    "other unspecified specified part parts site sites with without type types and "
    "both unknown elsewhere classified".split()
)


@dataclass(frozen=True)
class Term:
    """One name of a concept.

    `source` is `dictionary`, `context` (built from the parent chain), `curated` or
    `user` (synonyms added on top of the dictionary).
    """

    text: str
    lang: str
    preferred: bool = False
    source: str = "dictionary"


@dataclass
class Concept:
    code: str
    system: str
    parent: str | None = None
    terms: list[Term] = field(default_factory=list)
    # what the source says besides names, e.g. an OMOP concept's concept_id, vocabulary_id,
    # domain_id, standard_concept
    info: dict[str, str] = field(default_factory=dict)

    def name(self, lang: str) -> str:
        """The preferred name in `lang`, else the first name in it, else ''."""
        names = [t for t in self.terms if t.lang == lang and t.source == "dictionary"]
        names = names or [t for t in self.terms if t.lang == lang]
        preferred = [t for t in names if t.preferred]
        return (preferred or names or [Term("", lang)])[0].text

    def display_name(self, lang: str) -> str:
        """The name to show: the contextual one where the dictionary's own name is a fragment
        that misleads alone (D13.4 "Liver" → "Benign neoplasm of ... - Liver"), else `name`."""
        context = [t.text for t in self.terms if t.lang == lang and t.source == "context"]
        return context[0] if context else self.name(lang)


@dataclass
class Dictionary:
    """Concepts keyed by code, in a deterministic (file) order."""

    name: str
    concepts: dict[str, Concept]
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.concepts)

    def terms(self) -> Iterator[tuple[str, Term]]:
        """Every (code, term), in concept order."""
        for code, concept in self.concepts.items():
            for term in concept.terms:
                yield code, term

    def children(self, code: str) -> list[str]:
        """The codes one level below `code` (K74.6 → K74.60 … K74.69), in file order."""
        if getattr(self, "_children", None) is None:
            self._children: dict[str, list[str]] = {}
            for concept in self.concepts.values():
                if concept.parent:
                    self._children.setdefault(concept.parent, []).append(concept.code)
        return self._children.get(code, [])

    def parents(self, code: str) -> list[str]:
        """The parent chain from the root down to `code` itself (K74 → K74.6)."""
        chain, seen = [], set()
        current: str | None = code
        while current and current in self.concepts and current not in seen:
            seen.add(current)
            chain.append(current)
            current = self.concepts[current].parent
        return chain[::-1]

    def fingerprint(self) -> str:
        """sha256 of every (code, term) pair: ties an index to this exact content."""
        digest = hashlib.sha256()
        for code, term in self.terms():
            digest.update(f"{code}\t{term.lang}\t{term.text}\n".encode())
        return digest.hexdigest()

    def add_synonyms(self, rows: Iterable[tuple[str, str]], *, source: str) -> int:
        """Add (code, term) synonyms; unknown codes are reported, not fatal. Returns the count added.
        Linear in the rows (a set of each touched concept's names, not a scan per row)."""
        added = 0
        names: dict[str, set[str]] = {}
        for code, text in rows:
            concept = self.concepts.get(code)
            if concept is None:
                self.warnings.append(f"{source} synonym {text!r}: unknown code {code!r}")
                continue
            known = names.get(code)
            if known is None:
                known = names[code] = {normalize(t.text) for t in concept.terms}
            key = normalize(text)
            if key in known:
                continue
            known.add(key)
            concept.terms.append(Term(text, detect_lang(text), source=source))
            added += 1
        return added


# --------------------------------------------------------------------------- reading


def _read(path: Path) -> bytes:
    """The file's bytes; a `.gz` file is decompressed (the bundled bank ships gzipped)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DictionaryError(path, f"not a readable gzip file ({exc})") from None
    return data


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DictionaryError(
            path, f"not valid {encoding} (byte {data[exc.start]:#04x}); is this the right format?", line
        ) from None


def _rows(
    path: Path, text: str, delimiter: str, *, literal_quotes: bool = False
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each line. Lines end in LF, CRLF or, in a file without any LF,
    CR (Excel for Mac's "CSV (Macintosh)"). Refused with file and line: a last line without a
    line ending (the file was cut off, or it must say so), a NUL byte, and a line the CSV
    rules cannot parse (an unterminated quote, a field over the csv module's limit).
    With `literal_quotes`, quotes are ordinary characters (OMOP vocabulary files)."""
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    else:
        raise DictionaryError(
            path,
            "the last line has no line ending, so the file looks cut off (truncated while it was "
            "written or copied); if it is complete, end it with a line break",
            len(lines),
        )
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if "\x00" in line:
            raise DictionaryError(path, "a NUL byte: this does not look like a text file", number)
        if literal_quotes:
            yield number, line.split(delimiter) if line else []
            continue
        try:
            fields = next(csv.reader([line], delimiter=delimiter, strict=True)) if line else []
        except csv.Error as exc:
            raise DictionaryError(
                path, f"cannot read this line as {delimiter!r}-separated text: {exc}", number
            )
        yield number, fields


def _need(path: Path, number: int, fields: list[str], count: int, what: str) -> None:
    if len(fields) < count:
        raise DictionaryError(
            path, f"expected {count} columns ({what}), found {len(fields)}: {fields!r}", number
        )


class _Builder:
    """Collects concepts and terms; deduplicates and reports what it skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.concepts: dict[str, Concept] = {}
        self.seen: set[tuple[str, str]] = set()
        self.warnings: list[str] = []
        self.empty = 0
        self.duplicates = 0

    def add(
        self,
        code: str,
        text: str,
        *,
        system: str,
        lang: str | None = None,
        preferred: bool = False,
        parent: str | None = None,
        literal_quotes: bool = False,
    ) -> None:
        text = text.strip() if literal_quotes else text.strip().strip('"').strip()
        if not code or is_empty_term(text):
            self.empty += 1
            return
        key = (code, normalize(text))
        if key in self.seen:
            self.duplicates += 1
            return
        self.seen.add(key)
        concept = self.concepts.setdefault(code, Concept(code, system, parent))
        lang = lang or detect_lang(text)
        if preferred and any(t.preferred and t.lang == lang for t in concept.terms):
            preferred = False
        concept.terms.append(Term(text, lang, preferred))

    def build(self, name: str) -> Dictionary:
        if not self.concepts:
            raise DictionaryError(self.path, "no terms found")
        if self.empty:
            self.warnings.append(f"{self.path}: skipped {self.empty} empty or placeholder terms")
        if self.duplicates:
            self.warnings.append(f"{self.path}: skipped {self.duplicates} duplicated terms")
        for warning in self.warnings:
            log.warning(warning)
        return Dictionary(name, self.concepts, self.warnings)


def _kcd_parent(code: str, known: dict[str, Concept]) -> str | None:
    candidate = code[:-1].rstrip(".")
    while len(candidate) >= 3:
        if candidate in known:
            return candidate
        candidate = candidate[:-1].rstrip(".")
    return None


def _is_fragment(child: Concept, parent: Concept, *, parent_is_fragment: bool) -> bool:
    """A subcode name that means little without its parent: one that lacks the head of the
    parent's Korean name and, in English, shares no word with the parent (D13.4 "Liver") or
    only picks from what the parent's name lists after its head (C38.0 "heart" under "Malignant
    neoplasm of heart, mediastinum and pleura"). A parent that is a fragment itself is a bare
    list: a subcode that names part of it is a fragment too (D01.50 "Liver" under D01.5 "Liver,
    gallbladder and bile ducts", whose head is its own parent's "Carcinoma in situ of ...")."""
    en_parent, en_child = parent.name("en").lower(), child.name("en").lower()
    parent_words = set(_EN_WORD.findall(en_parent)) - _EN_STOP
    child_words = set(_EN_WORD.findall(en_child)) - _EN_STOP
    if parent_is_fragment and child_words < parent_words:
        return True
    if parent.name("ko").split(" ")[-1] in child.name("ko"):
        return False
    head_words = set(_EN_WORD.findall(en_parent.split(" of ", 1)[0]))
    return not parent_words & child_words or (child_words <= parent_words and not child_words & head_words)


def load_kcd(path: str | Path) -> Dictionary:
    """The KCD-8 table (`kcd`, `ko`, `en`), with contextual names for fragment subcodes."""
    path = Path(path)
    builder = _Builder(path)
    rows = _rows(path, _decode(path, path.read_bytes(), "utf-8-sig"), "\t")
    number, header = next(rows, (1, []))
    if [h.strip().lower() for h in header[:3]] != _KCD_HEADER:
        raise DictionaryError(path, f"expected the header 'kcd<TAB>ko<TAB>en', found {header!r}", number)
    for number, fields in rows:
        if not fields:
            builder.empty += 1
            continue
        _need(path, number, fields, 3, "kcd, ko, en")
        code = fields[0].strip()
        parent = _kcd_parent(code, builder.concepts)
        builder.add(code, fields[1], system="KCD-8", lang="ko", preferred=True, parent=parent)
        builder.add(code, fields[2], system="KCD-8", lang="en", preferred=True, parent=parent)
    fragments: set[str] = set()
    for concept in builder.concepts.values():  # in file order: a parent before its subcodes
        parent = builder.concepts.get(concept.parent or "")
        if parent is not None and _is_fragment(concept, parent, parent_is_fragment=parent.code in fragments):
            fragments.add(concept.code)
            for lang in ("ko", "en"):  # the parent's own contextual name, if it is a fragment too
                text = f"{parent.display_name(lang)} - {concept.name(lang)}"
                concept.terms.append(Term(text, lang, source="context"))
    return builder.build(path.name)


def load_kostom(path: str | Path, *, use_kostom_codes: bool = True) -> Dictionary:
    """A KOSTOM export (cp949, tab-separated, header). The UMLS CUI identifies the concept;
    rows without one are keyed by their KOSTOM code (unless `use_kostom_codes` is False)."""
    path = Path(path)
    builder = _Builder(path)
    rows = _rows(path, _decode(path, path.read_bytes(), "cp949"), "\t")
    next(rows, None)
    without_cui = 0
    for number, fields in rows:
        if not fields:
            builder.empty += 1
            continue
        _need(path, number, fields, 5, "KOSTOM code, id, English, Korean, CUI")
        cui = fields[4].strip()
        if cui and not _CUI.match(cui):
            raise DictionaryError(path, f"column 5 should be a UMLS CUI, found {cui!r}", number)
        if not cui:
            without_cui += 1
            if not use_kostom_codes:
                continue
        code, system = (cui, "UMLS") if cui else (fields[0].strip(), "KOSTOM")
        builder.add(code, fields[2], system=system, lang="en", preferred=True)
        builder.add(code, fields[3], system=system, lang="ko", preferred=True)
    if without_cui:
        builder.warnings.append(
            f"{path}: {without_cui} rows without a UMLS CUI were "
            + ("keyed by their KOSTOM code" if use_kostom_codes else "skipped")
        )
    return builder.build(path.name)


def load_table(path: str | Path) -> Dictionary:
    """A UTF-8 CSV/TSV term list with a header naming `code`, `term` and optionally `lang`."""
    path = Path(path)
    text = _decode(path, path.read_bytes(), "utf-8-sig")
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ","
    builder = _Builder(path)
    rows = _rows(path, text, delimiter)
    number, header = next(rows, (1, []))
    columns = {h.strip().lower(): i for i, h in enumerate(header)}
    missing = [c for c in ("code", "term") if c not in columns]
    if missing:
        raise DictionaryError(path, f"missing column(s) {missing} in header {header!r}", number)
    lang_col = columns.get("lang")
    need = max(columns["code"], columns["term"]) + 1
    for number, fields in rows:
        if not fields:
            builder.empty += 1
            continue
        _need(path, number, fields, need, "code, term")
        lang = fields[lang_col].strip().lower() if lang_col is not None and lang_col < len(fields) else ""
        if lang and lang not in ("ko", "en"):
            raise DictionaryError(path, f"lang must be 'ko' or 'en', found {lang!r}", number)
        code = fields[columns["code"]].strip()
        first_of_lang = code not in builder.concepts
        builder.add(
            code, fields[columns["term"]], system=path.stem, lang=lang or None, preferred=first_of_lang
        )
    return builder.build(path.name)


_MRCONSO_LANGS = {"ENG": "en", "KOR": "ko"}


def load_mrconso(path: str | Path) -> Dictionary:
    """UMLS MRCONSO.RRF (pipe-separated); English and Korean strings, grouped by CUI."""
    path = Path(path)
    builder = _Builder(path)
    other = 0
    for number, fields in _rows(path, _decode(path, path.read_bytes(), "utf-8"), "|"):
        if not fields:
            builder.empty += 1
            continue
        _need(path, number, fields, 18, "the MRCONSO columns")
        if not _CUI.match(fields[0]):
            raise DictionaryError(path, f"column 1 should be a UMLS CUI, found {fields[0]!r}", number)
        lang = _MRCONSO_LANGS.get(fields[1])
        if lang is None:
            other += 1
            continue
        preferred = fields[2] == "P" and fields[4] == "PF" and fields[6] == "Y"
        builder.add(fields[0], fields[14], system="UMLS", lang=lang, preferred=preferred)
    if other:
        builder.warnings.append(f"{path}: skipped {other} strings in languages other than English and Korean")
    return builder.build(path.name)


# OMOP's language concepts (CONCEPT_SYNONYM.language_concept_id)
OMOP_LANGUAGES = {"4175771": "ko", "4180186": "en"}
_ATHENA_CONCEPT = ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_code")


def _athena_table(path: Path, need: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of an Athena file: tab-separated despite `.csv`, UTF-8, header row, quotes
    literal."""
    rows = _rows(path, _decode(path, path.read_bytes(), "utf-8-sig"), "\t", literal_quotes=True)
    number, header = next(rows, (1, []))
    header = [h.strip().lower() for h in header]
    missing = [c for c in need if c not in header]
    if missing:
        raise DictionaryError(path, f"not an OMOP vocabulary file: missing column(s) {missing}", number)
    for number, fields in rows:
        if fields:
            _need(path, number, fields, len(header), "the header's columns")
            yield number, dict(zip(header, fields))


def load_athena(
    path: str | Path,
    *,
    vocabularies: Iterable[str] = (),
    domains: Iterable[str] = (),
    standard_only: bool = False,
    include_invalid: bool = False,
) -> Dictionary:
    """An OMOP vocabulary from Athena: `CONCEPT.csv` (a file, or a folder holding it) and, beside
    it, `CONCEPT_SYNONYM.csv` when present (Korean synonyms carry language_concept_id 4175771,
    English 4180186). Codes are `concept_code`, or `vocabulary_id:concept_code` when the
    selection spans several vocabularies; each concept's `info` keeps concept_id, vocabulary_id,
    domain_id, concept_class_id and standard_concept. Filters: vocabularies, domains, standard
    concepts only, and (by default) valid concepts only (no invalid_reason)."""
    path = Path(path)
    concept_file = path / "CONCEPT.csv" if path.is_dir() else path
    if not concept_file.is_file():
        raise DictionaryError(concept_file, "no such file (an Athena download holds CONCEPT.csv)")
    wanted_vocabularies, wanted_domains = set(vocabularies), set(domains)
    kept: list[dict[str, str]] = []
    for _, row in _athena_table(concept_file, _ATHENA_CONCEPT):
        if wanted_vocabularies and row["vocabulary_id"] not in wanted_vocabularies:
            continue
        if wanted_domains and row["domain_id"] not in wanted_domains:
            continue
        if standard_only and row.get("standard_concept", "") not in ("S", "C"):
            continue
        if not include_invalid and row.get("invalid_reason", "").strip():
            continue
        kept.append(row)
    several = len({row["vocabulary_id"] for row in kept}) > 1
    builder = _Builder(concept_file)
    codes: dict[str, str] = {}
    for row in kept:
        code = f"{row['vocabulary_id']}:{row['concept_code']}" if several else row["concept_code"]
        codes[row["concept_id"]] = code
        builder.add(
            code, row["concept_name"], system=row["vocabulary_id"], preferred=True, literal_quotes=True
        )
        if code in builder.concepts:
            builder.concepts[code].info = {
                key: row.get(key, "")
                for key in (
                    "concept_id",
                    "vocabulary_id",
                    "domain_id",
                    "concept_class_id",
                    "standard_concept",
                )
            }
    synonyms = concept_file.with_name("CONCEPT_SYNONYM.csv")
    if synonyms.is_file():
        for _, row in _athena_table(synonyms, ("concept_id", "concept_synonym_name", "language_concept_id")):
            code = codes.get(row["concept_id"])
            if code is not None:
                lang = OMOP_LANGUAGES.get(row["language_concept_id"].strip())
                builder.add(code, row["concept_synonym_name"], system="", lang=lang, literal_quotes=True)
    return builder.build(concept_file.parent.name or concept_file.name)


def detect_format(path: str | Path) -> str:
    """Guess the format of a dictionary file from its name and first line."""
    path = Path(path)
    if path.is_dir() or path.name.upper() == "CONCEPT.CSV":
        return "athena"
    if path.name.upper().startswith("MRCONSO"):
        return "mrconso"
    with open(path, "rb") as handle:
        head = handle.read(4096)
    first = head.split(b"\n", 1)[0]
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "kostom"
    if line.lower().split("\t")[:3] == _KCD_HEADER:
        return "kcd"
    if line.count("|") >= 17 and _CUI.match(line.split("|", 1)[0]):
        return "mrconso"
    header = {h.strip().lower() for h in re.split(r"[\t,]", line)}
    if {"code", "term"} <= header or path.suffix.lower() in (".csv", ".tsv"):
        return "table"
    if line.count("\t") >= 4:
        return "kostom"
    raise DictionaryError(path, f"unknown dictionary format (header {line[:80]!r}); pass --format", 1)


_LOADERS = {
    "kcd": load_kcd,
    "kostom": load_kostom,
    "table": load_table,
    "mrconso": load_mrconso,
    "athena": load_athena,
}


def load_dictionary(path: str | Path, format: str | None = None, **options) -> Dictionary:
    """Load any supported dictionary; `format` is one of FORMATS or None to detect it. `options`
    go to the loader (load_athena's filters)."""
    path = Path(path)
    if not path.is_file() and not (path.is_dir() and (path / "CONCEPT.csv").is_file()):
        raise DictionaryError(path, "no such file")
    format = format or detect_format(path)
    if format not in _LOADERS:
        raise DictionaryError(path, f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    return _LOADERS[format](path, **options)


def read_synonyms(path: str | Path) -> list[tuple[str, str]]:
    """A synonym file: UTF-8 TSV `code<TAB>term`, `#` comments, optional header."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, fields in _rows(path, _decode(path, _read(path), "utf-8-sig"), "\t"):
        if (
            not fields
            or fields[0].startswith("#")
            or fields[:2] in (["code", "term"], ["token", "expansion"], ["ko", "en"])
        ):
            continue
        _need(path, number, fields, 2, "code, term")
        rows.append((fields[0].strip(), fields[1].strip()))
    return rows


def read_bank(path: str | Path) -> list[tuple[str, str, str]]:
    """The open synonym bank (`code<TAB>term<TAB>lang<TAB>source`, `#` comments, header) as
    (code, term, source) rows; a missing file is an empty bank."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, fields in _rows(path, _decode(path, _read(path), "utf-8"), "\t"):
        if not fields or fields[0].startswith("#") or fields[0] == "code":
            continue
        _need(path, number, fields, 4, "code, term, lang, source")
        rows.append((fields[0], fields[1], fields[3]))
    return rows


def add_bank(dictionary: Dictionary, rows: Iterable[tuple[str, str, str]]) -> int:
    """Add bank rows to a dictionary, each under its own source name. Returns the count added."""
    by_source: dict[str, list[tuple[str, str]]] = {}
    for code, term, source in rows:
        by_source.setdefault(source, []).append((code, term))
    return sum(dictionary.add_synonyms(r, source=s) for s, r in sorted(by_source.items()))
