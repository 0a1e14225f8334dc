"""The benchmark's held-out KCD-8 tasks (ko2en, en2ko, mixed) for one or more bundles, from
their stored vectors where they have them (a release or a WiSE sweep stores every name's):
an experiment's bundles in a minute each, where `python -m core bench` takes half an hour.
Writes JSON with the commit, whether the tree was dirty and each bundle's sha256.

    python bench/heldout.py runs/siblings/bundle-1 assets/model --out bench/results/NAME.json
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets import KCD8  # noqa: E402
from core.bench import bundle_digest, machine  # noqa: E402
from core.bundle import Embedder  # noqa: E402
from core.dictionary import load_dictionary  # noqa: E402
from core.evaluation import Names, evaluate_linking, format_table  # noqa: E402
from core.fsutil import write_atomic  # noqa: E402
from core.index import PREBUILT, VectorStore  # noqa: E402
from core.text import normalize  # noqa: E402


def stored_or_embedded(bundle: Path):
    """An `Encode` that reads each text's stored vector and embeds the texts it lacks (the
    store is read once; the model is loaded only if a text is missing)."""
    store = VectorStore.load(bundle / PREBUILT)
    model = functools.cache(lambda: Embedder(bundle))

    def encode(texts: list[str]) -> np.ndarray:
        keys = [normalize(t) for t in texts]
        vectors, found = store.lookup(keys) if store else (None, np.zeros(len(keys), dtype=bool))
        if vectors is not None and found.all():
            return vectors
        fresh = model().encode([k for k, ok in zip(keys, found) if not ok])
        out = np.zeros((len(keys), fresh.shape[1]), dtype=np.float32)
        if found.any():
            out[found] = vectors[found]
        out[~found] = fresh
        return out

    return encode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", type=Path, nargs="+")
    parser.add_argument("--kcd", type=Path, default=Path(KCD8), help="a table in the KCD-8's format")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    names = Names.from_dictionary(load_dictionary(args.kcd, "kcd"))
    rows = {str(bundle): evaluate_linking(stored_or_embedded(bundle), names) for bundle in args.bundles}
    print(format_table(rows))
    result = {
        "kcd": str(args.kcd),
        "held_out": rows,
        "bundles_sha256": {str(bundle): bundle_digest(bundle) for bundle in args.bundles},
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
