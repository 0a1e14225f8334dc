"""The error hierarchy raised at the boundaries of the product."""

from __future__ import annotations


class LookupAppError(Exception):
    """Base class of every error this project raises on purpose."""


class DictionaryError(LookupAppError):
    """A dictionary file cannot be read; the message names the file and line."""

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


class InputError(LookupAppError):
    """A file of queries (or another input) cannot be read; the message names the file."""


class BundleError(LookupAppError):
    """A model bundle is missing, damaged or of an unknown schema."""


class IndexStaleError(LookupAppError):
    """An index on disk does not match its dictionary or bundle, or is damaged."""


class MissingExtraError(LookupAppError, ImportError):
    """An optional dependency is missing; the message gives the exact install command."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is not installed. Install it with: pip install 'sapbert-ko-en[{extra}]'")


def require(module: str, extra: str):
    """Import an optional module, or fail with the `pip install` that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
