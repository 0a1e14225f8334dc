"""The release's bundle: a checkpoint exported int8 with the vectors of every name stored
beside it, as `trainer release` ships it and `bench/wise_sweep.py` compares alphas."""

from __future__ import annotations

import random
from pathlib import Path

from core.bundle import BundleManifest, Progress
from core.search import Searcher


def export_release_bundle(
    checkpoint: Path,
    out: Path,
    *,
    max_length: int,
    scratch: Path,
    progress: Progress | None = None,
) -> tuple[BundleManifest, Searcher]:
    """Export `checkpoint` to `out` (int8, with the fewest MatMuls in float that hold the parity
    gate on 500 KCD-8 names) and store the vectors of every KCD-8,
    curated and bank name in it. Returns the manifest and a searcher over the new bundle
    (`scratch`: a folder for its empty local-synonym file; `progress`: told as the names are
    embedded)."""
    from assets import KCD8
    from core.dictionary import load_dictionary
    from core.index import attach_prebuilt
    from core.search import open_searcher
    from export.onnx_export import ExportConfig, export_onnx

    names = sorted({t.text for _, t in load_dictionary(KCD8).terms()})
    manifest = export_onnx(
        ExportConfig(checkpoint=checkpoint, out=out, quantize="int8", max_length=max_length),
        sample=random.Random(0).sample(names, 500),
    )
    searcher = open_searcher(model=out, user_synonyms=scratch / "no-user-synonyms.tsv", progress=progress)
    attach_prebuilt(out, texts=searcher.table.texts, vectors=searcher.index.vectors())
    return manifest, searcher
