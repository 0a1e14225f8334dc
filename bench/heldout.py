"""The benchmark's held-out KCD-8 tasks (ko2en, en2ko, mixed) for one or more bundles, from
their stored vectors where they have them (a release or a WiSE sweep stores every name's):
an experiment's bundles in a minute each, where `python -m core bench` takes half an hour.
Writes JSON with the commit, whether the tree was dirty and each bundle's sha256.

    python bench/heldout.py runs/siblings/bundle-1 assets/model --out bench/results/NAME.json

With `--dev`, each bundle's dev sets through the product's search as well (its index built
from the stored vectors in a scratch cache): what chooses a release, beside the diagnosis.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets import KCD8  # noqa: E402
from core.bench import (  # noqa: E402
    DEV_QUERIES,
    LONGTAIL_QUERIES,
    bundle_digest,
    curated_keys,
    dev_sets_accuracy,
    machine,
    read_dev_sets,
)
from core.bundle import Embedder  # noqa: E402
from core.dictionary import load_dictionary  # noqa: E402
from core.evaluation import Names, evaluate_linking, format_table  # noqa: E402
from core.fsutil import write_atomic  # noqa: E402
from core.index import PREBUILT, VectorStore  # noqa: E402
from core.search import open_searcher  # noqa: E402
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
    parser.add_argument("--dev", action="store_true", help="also the dev sets through the product's search")
    parser.add_argument("--dev-queries", type=Path, default=DEV_QUERIES)
    parser.add_argument("--longtail-queries", type=Path, default=LONGTAIL_QUERIES)
    args = parser.parse_args(argv)

    names = Names.from_dictionary(load_dictionary(args.kcd, "kcd"))
    rows = {str(bundle): evaluate_linking(stored_or_embedded(bundle), names) for bundle in args.bundles}
    print(format_table(rows))
    dev = {}
    if args.dev:
        paths = {"dev": args.dev_queries, "longtail": args.longtail_queries}
        dev_sets = read_dev_sets(paths, curated=curated_keys(), imported=set())
        for bundle in args.bundles:
            with tempfile.TemporaryDirectory() as scratch:
                searcher = open_searcher(
                    args.kcd, model=bundle, user_synonyms=Path(scratch) / "none.tsv", cache=Path(scratch)
                )
                dev[str(bundle)] = dev_sets_accuracy(dev_sets, searcher)
            for set_name, scores in dev[str(bundle)].items():
                overall = scores["by_kind"]["overall"]
                print(f"{bundle} {set_name}: Acc@1 {overall['acc1']:.1f} Acc@5 {overall['acc5']:.1f}")
    result = {
        "kcd": str(args.kcd),
        "held_out": rows,
        **({"dev": dev} if args.dev else {}),
        "bundles_sha256": {str(bundle): bundle_digest(bundle) for bundle in args.bundles},
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
