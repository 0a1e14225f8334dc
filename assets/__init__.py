"""Bundled data: the KCD-8 dictionary (see KCD8_README.md) and the default model bundle."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
KCD8 = ASSETS_DIR / "kcd8.tsv"
DEFAULT_MODEL = ASSETS_DIR / "model"
CURATED_SYNONYMS = ASSETS_DIR / "synonyms.tsv"
ABBREVIATIONS = ASSETS_DIR / "abbreviations.tsv"
BANK = ASSETS_DIR / "bank.tsv.gz"  # the open synonym bank (python -m trainer bank)
BANK_TRANSLATIONS = ASSETS_DIR / "bank_translations.tsv.gz"  # its unattached ko-en pairs (training only)
BANK_ABBREVIATIONS = ASSETS_DIR / "bank_abbreviations.tsv"  # unambiguous expansions from the bank
