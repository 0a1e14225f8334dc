"""The hnswlib index over every distinct (normalised) term text of a dictionary.

Written atomically beside a manifest that ties it to the dictionary and bundle
fingerprints and the sha256 of its files; a stale or damaged index raises
`IndexStaleError` on load, and `open_index` rebuilds it instead of using it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from .errors import IndexStaleError
from .fsutil import atomic_dir, sha256_file

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: a checksum of the manifest's fields; the vectors only in index.bin
FILES = ("index.bin",)


@dataclass(frozen=True)
class IndexManifest:
    dictionary: str  # Dictionary.fingerprint()
    bundle: str  # Embedder.fingerprint()
    count: int
    dim: int
    m: int
    ef_construction: int
    files: dict[str, str]
    schema_version: int = SCHEMA_VERSION


def _checksum(fields: dict) -> str:
    """sha256 of a manifest's fields (canonical JSON): a hand-edited or damaged manifest is stale."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def cache_dir() -> Path:
    """Where indexes are cached: $SAPBERT_KO_EN_CACHE, else ~/.cache/sapbert-ko-en."""
    root = os.environ.get("SAPBERT_KO_EN_CACHE") or Path.home() / ".cache" / "sapbert-ko-en"
    return Path(root)


def data_dir() -> Path:
    """Where user data (local synonyms) lives: $SAPBERT_KO_EN_DATA, else ~/.local/share/sapbert-ko-en."""
    root = os.environ.get("SAPBERT_KO_EN_DATA") or Path.home() / ".local" / "share" / "sapbert-ko-en"
    return Path(root)


def index_key(dictionary_fp: str, bundle_fp: str) -> str:
    return hashlib.sha256(f"{dictionary_fp}:{bundle_fp}".encode()).hexdigest()[:20]


class TermIndex:
    """Approximate nearest neighbours (inner product on unit vectors) over term texts."""

    def __init__(self, hnsw, manifest: IndexManifest) -> None:
        self.hnsw = hnsw
        self.manifest = manifest

    def vectors(self, ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The stored unit vectors (float32) of `ids`, or of every text. The hnswlib index holds
        them already; a second copy would cost ~77 MB for 100k names."""
        ids = np.arange(self.manifest.count) if ids is None else np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.manifest.dim), dtype=np.float32)
        return np.asarray(self.hnsw.get_items(ids, return_type="numpy"), dtype=np.float32)

    def __len__(self) -> int:
        return self.manifest.count

    @classmethod
    def from_vectors(
        cls,
        vectors: np.ndarray,
        *,
        dictionary: str,
        bundle: str,
        m: int = 16,
        ef_construction: int = 100,
        threads: int | None = None,
    ) -> TermIndex:
        import hnswlib

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        hnsw = hnswlib.Index(space="ip", dim=vectors.shape[1])
        hnsw.init_index(
            max_elements=max(len(vectors), 1), ef_construction=ef_construction, M=m, random_seed=42
        )
        hnsw.add_items(vectors, np.arange(len(vectors)), num_threads=threads or os.cpu_count() or 1)
        hnsw.set_ef(128)
        manifest = IndexManifest(dictionary, bundle, len(vectors), vectors.shape[1], m, ef_construction, {})
        return cls(hnsw, manifest)

    def knn(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, cosine scores) of the k nearest texts, best first."""
        k = min(k, self.manifest.count)
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        self.hnsw.set_ef(max(128, k))
        labels, distances = self.hnsw.knn_query(vector.reshape(1, -1), k=k, num_threads=1)
        return labels[0].astype(np.int64), 1.0 - distances[0]

    def save(self, directory: str | Path) -> None:
        with atomic_dir(directory) as tmp:
            self.hnsw.save_index(str(tmp / "index.bin"))
            files = {name: sha256_file(tmp / name) for name in FILES}
            manifest = IndexManifest(**{**asdict(self.manifest), "files": files})
            fields = asdict(manifest)
            (tmp / "manifest.json").write_text(
                json.dumps({**fields, "checksum": _checksum(fields)}, indent=2) + "\n"
            )
        self.manifest = manifest

    @classmethod
    def load(cls, directory: str | Path, *, dictionary: str, bundle: str) -> TermIndex:
        """Load an index; raise IndexStaleError if it is stale, incomplete or damaged."""
        import hnswlib

        directory = Path(directory)
        try:
            fields = json.loads((directory / "manifest.json").read_text())
            if not isinstance(fields, dict) or fields.pop("checksum", None) != _checksum(fields):
                raise ValueError("the manifest does not match its checksum")
            manifest = IndexManifest(**fields)
            if not (
                isinstance(manifest.files, dict)
                and all(
                    isinstance(getattr(manifest, f), int) for f in ("count", "dim", "m", "ef_construction")
                )
            ):
                raise TypeError("fields of the wrong type")
        except (OSError, ValueError, TypeError) as exc:
            raise IndexStaleError(f"{directory}: no readable index manifest ({exc})") from None
        if manifest.schema_version != SCHEMA_VERSION:
            raise IndexStaleError(f"{directory}: index schema {manifest.schema_version}")
        if (manifest.dictionary, manifest.bundle) != (dictionary, bundle):
            raise IndexStaleError(f"{directory}: built for another dictionary or model")
        for name in FILES:
            file = directory / name
            if not file.is_file() or sha256_file(file) != manifest.files.get(name):
                raise IndexStaleError(f"{directory}: {name} is missing or damaged")
        hnsw = hnswlib.Index(space="ip", dim=manifest.dim)
        try:
            hnsw.load_index(str(directory / "index.bin"), max_elements=manifest.count)
        except (RuntimeError, OSError, ValueError, EOFError) as exc:
            raise IndexStaleError(f"{directory}: {exc}") from None
        if hnsw.get_current_count() != manifest.count:
            raise IndexStaleError(
                f"{directory}: {hnsw.get_current_count()} vectors, the manifest says {manifest.count}"
            )
        hnsw.set_ef(128)
        return cls(hnsw, manifest)


# ----------------------------------------------------------------------------- prebuilt vectors

PREBUILT = "prebuilt.npz"


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """A 64-bit key per text (blake2b of its UTF-8): how prebuilt vectors are looked up."""
    digests = b"".join(hashlib.blake2b(t.encode(), digest_size=8).digest() for t in texts)
    return np.frombuffer(digests, dtype="<u8")


@dataclass(frozen=True)
class VectorStore:
    """Unit vectors keyed by `text_keys` (int8, one scale per vector): the bundle's prebuilt
    vectors and the cache of local synonym vectors share this format."""

    keys: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    CHUNK: ClassVar[int] = 8192  # rows dequantised at once

    @classmethod
    def of(cls, texts: Sequence[str], vectors: np.ndarray) -> VectorStore:
        """The store of `vectors` (n, dim) for `texts`, n ≥ 0."""
        scale = np.maximum(np.abs(vectors).max(axis=1), 1e-12) / 127.0
        quantized = np.round(vectors / scale[:, None]).astype(np.int8)
        return cls(text_keys(texts), quantized, scale.astype(np.float32))

    def __add__(self, other: VectorStore) -> VectorStore:
        if not len(self.keys):
            return other
        return VectorStore(
            np.concatenate([self.keys, other.keys]),
            np.vstack([self.q, other.q]),
            np.concatenate([self.scale, other.scale]),
        )

    def save(self, path: str | Path) -> None:
        from .fsutil import atomic_file

        with atomic_file(path) as handle:
            np.savez_compressed(handle, keys=self.keys, q=self.q, scale=self.scale)

    @classmethod
    def load(cls, path: str | Path) -> VectorStore | None:
        """The store at `path`; None if it is missing, unreadable or inconsistent (warned)."""
        path = Path(path)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if "keys" not in data:
                    log.warning("%s: vectors of an older format; ignoring them", path)
                    return None
                store = cls(data["keys"], data["q"], data["scale"])
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable stored vectors (%s); embedding instead", path, exc)
            return None
        if not (len(store.keys) == len(store.q) == len(store.scale)) or store.q.ndim != 2:
            log.warning("%s: inconsistent stored vectors; embedding instead", path)
            return None
        return store

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, found): float32 unit vectors for `texts`, and which of them the store held
        (rows not found are zeros). Only the rows asked for are dequantised; a row's scale
        cancels in the normalisation, so it is not applied (the file keeps it for the lengths)."""
        if len(self.keys) == 0:
            return np.zeros((len(texts), 0), dtype=np.float32), np.zeros(len(texts), dtype=bool)
        order = np.argsort(self.keys)
        wanted = text_keys(texts)
        position = np.searchsorted(self.keys, wanted, sorter=order).clip(max=len(self.keys) - 1)
        rows = order[position]
        found = self.keys[rows] == wanted
        vectors = np.zeros((len(texts), self.q.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), self.CHUNK):  # float temporaries of every row: ~330 MB at peak
            part, hit = slice(start, start + self.CHUNK), found[start : start + self.CHUNK]
            block = self.q[rows[part][hit]].astype(np.float32)
            vectors[part][hit] = block / np.linalg.norm(block, axis=1, keepdims=True).clip(min=1e-12)
        return vectors, found


def attach_prebuilt(bundle_dir: str | Path, *, texts: Sequence[str], vectors: np.ndarray) -> None:
    """Store term vectors in a bundle (a VectorStore), so that a first launch embeds only the
    names the bundle does not already know."""
    from .bundle import MANIFEST, read_manifest
    from .fsutil import write_atomic

    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    VectorStore.of(texts, vectors).save(bundle_dir / PREBUILT)
    files = {**manifest.files, PREBUILT: sha256_file(bundle_dir / PREBUILT)}
    write_atomic(bundle_dir / MANIFEST, dataclasses.replace(manifest, files=files).to_json())


def load_prebuilt(bundle_dir: str | Path, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, found) for `texts` from the bundle's prebuilt store (the bundle manifest's
    sha256 covers the file); nothing found when it has none."""
    store = VectorStore.load(Path(bundle_dir) / PREBUILT)
    if store is None:
        return np.zeros((len(texts), 0), dtype=np.float32), np.zeros(len(texts), dtype=bool)
    return store.lookup(texts)
