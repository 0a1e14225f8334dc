"""Bundled data: the KCD-8 dictionary (see KCD8_README.md) and the default model bundle."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
KCD8 = ASSETS_DIR / "kcd8.tsv"
DEFAULT_MODEL = ASSETS_DIR / "model"
CURATED_SYNONYMS = ASSETS_DIR / "synonyms.tsv"
ABBREVIATIONS = ASSETS_DIR / "abbreviations.tsv"
