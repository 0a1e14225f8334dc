"""Atomic file and directory writes, and hashing."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    with atomic_file(path) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb", **options) -> Iterator:
    """A handle (`open`'s mode and options) on a temporary sibling that replaces `path` only
    when the block succeeds, flushed to disk first: readers never see a half-written file.
    For large files written in a stream; `write_atomic` for data at hand."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
        try:
            if path.exists():
                os.replace(path, old / "previous")
            os.replace(tmp, path)
        except OSError:
            if not path.exists():  # not another writer finishing first: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process wrote the same thing first
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_orphans(path: Path, *, age_s: float = 3600.0) -> None:
    """Temporary siblings of `path` left by a killed process (older than an hour)."""
    import time

    for orphan in path.parent.glob(f".{path.name}.*"):
        try:
            if orphan.is_dir() and time.time() - orphan.stat().st_mtime > age_s:
                shutil.rmtree(orphan, ignore_errors=True)
        except OSError:
            pass


@contextmanager
def file_lock(path: str | Path, *, timeout: float = 30.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` + ".lock" across processes (two app windows adding
    synonyms to one file must not lose each other's rows). fcntl on POSIX, msvcrt on Windows."""
    import time

    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if os.name == "nt":
                    import msvcrt

                    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{lock}: another process holds this lock") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            if os.name == "nt":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
