"""The model bundle: one ONNX graph that outputs finished sentence vectors, its tokenizer
and a JSON manifest. `export/` writes it, `core/` reads it; the format is described here once.

Layout of a bundle directory::

    manifest.json   BundleManifest (schema version, pooling, max length, dimension, sha256s)
    model.onnx      inputs input_ids, attention_mask (int64); output `embedding`, L2-normalised
    tokenizer.json  a `tokenizers` tokenizer
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import BundleError
from .fsutil import sha256_file
from .text import normalize

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
Progress = Callable[[int, int], bool]  # (done, total) -> keep going


@dataclass(frozen=True)
class BundleManifest:
    """What a bundle holds. `files` maps file names to their sha256."""

    pooling: str
    max_length: int
    dim: int
    prefix: str
    source: str
    quantization: str = "none"
    files: dict[str, str] = field(default_factory=dict)
    parity: dict[str, float] = field(default_factory=dict)
    float_nodes: list[str] = field(default_factory=list)  # int8: MatMuls kept in float for parity
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name, kind in (
            ("pooling", str),
            ("max_length", int),
            ("dim", int),
            ("prefix", str),
            ("source", str),
        ):
            if not isinstance(getattr(self, name), kind) or isinstance(getattr(self, name), bool):
                raise BundleError(
                    f"manifest field {name!r} should be {kind.__name__}, found {getattr(self, name)!r}"
                )
        for name in ("files", "parity"):
            if not isinstance(getattr(self, name), dict):
                raise BundleError(
                    f"manifest field {name!r} should be an object, found {getattr(self, name)!r}"
                )
        if not all(isinstance(v, str) for v in self.files.values()):
            raise BundleError(f"manifest field 'files' should map names to sha256 strings: {self.files!r}")
        if self.quantization not in ("none", "int8"):
            raise BundleError(f"unknown quantization {self.quantization!r}; expected 'none' or 'int8'")
        if self.max_length < 2 or self.dim < 1:
            raise BundleError(f"invalid max_length {self.max_length} or dim {self.dim}")

    def fingerprint(self) -> str:
        """What a text's vector depends on: the graph, the tokenizer, the prefix and the length
        limit (the index caches are keyed by it; a mapping project records its first 16
        characters, the graph's)."""
        files = self.files.get("model.onnx", "") + self.files.get("tokenizer.json", "")
        return f"{files}:{self.max_length}:{self.prefix}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"


def read_manifest(directory: str | Path, *, verify: bool = True) -> BundleManifest:
    """Read and check a bundle's manifest; `verify` also checks every file's sha256."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise BundleError(f"{directory}: not a model bundle (no {MANIFEST}); make one with export-onnx")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: unreadable manifest: {exc}") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: the manifest is not a JSON object")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(f"{path}: schema version {version!r}, this program reads {SCHEMA_VERSION}")
    try:
        manifest = BundleManifest(**raw)
    except TypeError as exc:
        raise BundleError(f"{path}: {exc}") from None
    for name in ("model.onnx", "tokenizer.json"):
        if name not in manifest.files:
            raise BundleError(f"{path}: manifest lists no {name}")
    if verify:
        for name, digest in manifest.files.items():
            file = directory / name
            if not file.is_file():
                raise BundleError(f"{directory}: {name} is missing")
            if sha256_file(file) != digest:
                raise BundleError(f"{directory}: {name} does not match its sha256 in the manifest")
    return manifest


def _onnxruntime():
    """onnxruntime, with its telemetry switched off (the environment variable is set by
    `core/__init__.py` before the import; this is the API switch, for older versions)."""
    import onnxruntime as ort

    ort.disable_telemetry_events()
    return ort


def _providers() -> list[str]:
    ort = _onnxruntime()
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class Embedder:
    """Turns text into sentence vectors with a bundle's ONNX graph (onnxruntime).

    One session with `threads` intra-op threads (default: 2, or 1 on a one-core machine)
    that spin briefly between operators: for a dozen tokens that is faster than one thread,
    and without the spinning, two threads were slower than one (README, "Benchmark").
    """

    def __init__(self, directory: str | Path, *, threads: int | None = None, verify: bool = True) -> None:
        from tokenizers import Tokenizer

        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory, verify=verify)
        self.threads = threads or min(2, os.cpu_count() or 1)
        try:
            self.session = self._session(self.threads)
            self.tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(f"{self.directory}: cannot load the bundle: {exc}") from exc
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.manifest.max_length)
        self.pad_id = self.tokenizer.token_to_id("<pad>") or self.tokenizer.token_to_id("[PAD]") or 0
        self._pieces: dict[str, int] = {}

    def _session(self, threads: int):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
        return ort.InferenceSession(str(self.directory / "model.onnx"), options, providers=_providers())

    @property
    def dim(self) -> int:
        return self.manifest.dim

    def fingerprint(self) -> str:
        return self.manifest.fingerprint()

    @functools.cached_property
    def overhead_tokens(self) -> int:
        """Tokens every input carries besides its text (the prefix, start and end markers)."""
        return len(self.tokenizer.encode(self.manifest.prefix).ids)

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs (input_ids, attention_mask) for texts: normalised, prefixed, padded."""
        normalized = [normalize(t) for t in texts]
        encodings = self.tokenizer.encode_batch([self.manifest.prefix + t for t in normalized])
        self._pieces = {t: len(e.ids) - self.overhead_tokens for t, e in zip(normalized, encodings)}
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(texts), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        return ids, mask

    def pieces(self, text: str) -> int:
        """How many word pieces a text is, without the prefix and markers (those of the last
        texts embedded are remembered: a query's are then not tokenised a second time)."""
        key = normalize(text)
        count = self._pieces.get(key)
        if count is None:
            count = len(self.tokenizer.encode(self.manifest.prefix + key).ids) - self.overhead_tokens
        return max(0, count)

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        ids, mask = self.tokenize(texts)
        (vectors,) = self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return vectors.astype(np.float32, copy=False)

    def encode(
        self, texts: str | Sequence[str], *, batch_size: int = 64, progress: Progress | None = None
    ) -> np.ndarray:
        """Sentence vectors (n, dim), L2-normalised; a single string gives (dim,).

        Texts are normalised with `core.text.normalize` and batched by length. `progress`
        is called after each batch and may return False to cancel (raises InterruptedError).
        """
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._run([items[i] for i in chunk])
            if progress is not None and progress(min(start + batch_size, len(items)), len(items)) is False:
                raise InterruptedError("embedding cancelled")
        return out[0] if single else out
