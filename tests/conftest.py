"""Shared fixtures: a small KCD-style dictionary, a tiny random BERT, its ONNX bundle."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
KCD8 = ROOT / "assets" / "kcd8.tsv"
PREFIXES = ("K70", "K74", "K35", "I10", "I21", "E11", "J18", "J44", "D13", "A00", "N95", "M17")


def kcd_subset(target: Path, prefixes=PREFIXES) -> Path:
    lines = KCD8.read_text(encoding="utf-8").splitlines()
    rows = [lines[0]] + [line for line in lines[1:] if line.startswith(prefixes)]
    target.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def small_kcd(tmp_path_factory) -> Path:
    return kcd_subset(tmp_path_factory.mktemp("dict") / "kcd_small.tsv")


# Mutation runs start every mutant in a new process, which would build the tiny checkpoint and
# bundle again (~20 s of each mutant's run). With SAPBERT_TEST_FIXTURE_CACHE set to a folder
# (docs/mutation-testing.md), they are built once there and copied from it, keyed by the
# sources and versions that build them; a mutant of a module that takes part in building them
# builds its own.
_BUILDERS = (
    "core.bundle.",
    "core.dictionary.",
    "core.errors.",
    "core.fsutil.",
    "core.text.",
    "trainer.",
    "export.",
)


@functools.cache
def _sources_digest() -> str:
    """What the tiny fixtures are built from: library versions, the builders' sources, KCD-8."""
    digest = hashlib.sha256()
    for package in ("torch", "transformers", "onnx", "onnxruntime", "onnxruntime-gpu"):
        try:
            digest.update(f"{package} {version(package)}".encode())
        except PackageNotFoundError:
            pass
    sources = sorted(
        path for d in ("core", "trainer", "export", "encoder") for path in (ROOT / d).rglob("*.py")
    )
    for path in [KCD8, Path(__file__), *sources]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _built(name: str, target: Path, build: Callable[[Path], object]) -> Path:
    root = os.environ.get("SAPBERT_TEST_FIXTURE_CACHE")
    if not root or os.environ.get("MUTANT_UNDER_TEST", "").startswith(_BUILDERS):
        build(target)
        return target
    cached = Path(root) / f"{name}-{_sources_digest()}"
    if not cached.is_dir():
        Path(root).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            build(Path(tmp) / name)
            try:
                os.rename(Path(tmp) / name, cached)
            except OSError:  # another process stored it first
                pass
    shutil.copytree(cached, target)
    return target


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, small_kcd) -> Path:
    pytest.importorskip("torch")
    from core.dictionary import load_dictionary
    from trainer.tiny import build_tiny_checkpoint

    def build(directory: Path) -> None:
        texts = [t.text for _, t in load_dictionary(KCD8).terms()][:4000]
        build_tiny_checkpoint(directory, texts, hidden=32, layers=2, heads=2, vocab=800, pooling="mean")

    return _built("checkpoint", tmp_path_factory.mktemp("tiny") / "ckpt", build)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_checkpoint) -> Path:
    from export.onnx_export import ExportConfig, export_onnx

    def build(directory: Path) -> None:
        export_onnx(ExportConfig(checkpoint=tiny_checkpoint, out=directory, max_length=32))

    return _built("bundle", tmp_path_factory.mktemp("bundle") / "tiny", build)


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAPBERT_KO_EN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAPBERT_KO_EN_DATA", str(tmp_path / "data"))
    return tmp_path / "cache"


@pytest.fixture()
def tiny_run(tmp_path, small_kcd, cache):
    """A tiny-model training config on the small KCD-8 subset (torch needed to run it)."""
    pytest.importorskip("torch")
    from trainer.config import resolve_config

    def run(name, **changes):
        overrides = {
            "dictionary": str(small_kcd),
            "format": "kcd",
            "output": str(tmp_path / name),
            "max_steps": "30",
            "eval_every": "10",
            "batch_size": "8",
            "dropout": "0.1",
        }
        overrides.update(changes)
        return resolve_config(preset="tiny", overrides=overrides)

    return run


@pytest.fixture()
def calibrated(small_kcd, tiny_bundle, cache, tmp_path):
    """A searcher whose bundle (a copy of the tiny one) has a fitted calibration, and the fit's report."""
    from core.bundle import Embedder
    from core.confidence import calibrate
    from core.dictionary import load_dictionary
    from core.search import Searcher

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    searcher = Searcher(load_dictionary(small_kcd), Embedder(bundle), cache=cache)
    report = calibrate(searcher, queries=150)
    assert searcher.calibration is not None  # in use at once
    return Searcher(load_dictionary(small_kcd), Embedder(bundle), cache=cache), report
