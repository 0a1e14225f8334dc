"""Pick the release's WiSE-FT alpha: for each alpha, interpolate a run's checkpoint with its
base, export it as the release would (int8), store the vectors of every name and score the
dev sets through the product's search. Only the dev sets are read, never the benchmark's
held-out split. Results go to bench/results/wise-sweep.json.

    python bench/wise_sweep.py runs/release --alpha 0 --alpha 0.4 --alpha 0.6 --alpha 0.8 --alpha 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.bench import DEV_QUERIES, LONGTAIL_QUERIES, curated_keys, dev_sets_accuracy, read_dev_sets  # noqa: E402
from core.progress import ProgressBar  # noqa: E402
from trainer.config import resolve_config  # noqa: E402
from trainer.release import export_release_bundle  # noqa: E402
from trainer.train import base_checkpoint  # noqa: E402
from trainer.wise import interpolate_checkpoints  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--alpha", type=float, action="append", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "wise-sweep.json")
    parser.add_argument(
        "--base",
        type=Path,
        help="the checkpoint to average with (default: the one the run started from; a run "
        "continued from a trained checkpoint names the base that one started from)",
    )
    args = parser.parse_args(argv)

    config = resolve_config(saved=args.run_dir / "train_config.json")
    base = args.base or base_checkpoint(config)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    dev_sets = read_dev_sets(
        {"dev": DEV_QUERIES, "longtail": LONGTAIL_QUERIES},
        curated=curated_keys(),
        imported=set(),
    )
    for alpha in args.alpha:
        started = time.perf_counter()
        checkpoint = interpolate_checkpoints(
            base, args.run_dir / "last", alpha, args.run_dir / f"wise-{alpha:g}"
        )
        bundle = args.run_dir / f"bundle-{alpha:g}"
        manifest, searcher = export_release_bundle(
            checkpoint,
            bundle,
            max_length=config.max_length,
            scratch=args.run_dir,
            progress=ProgressBar(f"alpha {alpha:g}: embedding every name"),
        )
        scores = dev_sets_accuracy(dev_sets, searcher)
        results[f"{alpha:g}"] = {
            "run": str(args.run_dir),
            "base": str(base),
            "parity": manifest.parity,
            "dev": scores["dev"]["by_kind"]["overall"],
            "longtail": scores["longtail"]["by_kind"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        overall = scores["longtail"]["by_kind"]["overall"]
        print(
            f"alpha {alpha:g}: long tail Acc@1 {overall['acc1']:.1f} Acc@5 {overall['acc5']:.1f}", flush=True
        )
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
