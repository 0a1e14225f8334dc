"""Background work for the GUI: a QRunnable with a signals object and a cooperative cancel flag.

A worker never touches widgets; it reports through its signals, which Qt delivers on
the GUI thread.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    result = Signal(object)
    error = Signal(str)
    progress = Signal(int, int)
    finished = Signal()


class Worker(QRunnable):
    """Runs `fn(*args, progress=callback, **kwargs)` off the GUI thread.

    The callback emits `progress(done, total)` and returns False once `cancel()` was
    called, which the core API turns into InterruptedError. Each worker keeps itself
    (and so its signals object) alive until its `finished` signal has been delivered.
    """

    _alive: set[Worker] = set()

    def __init__(
        self, fn: Callable[..., Any], *args: Any, with_progress: bool = False, **kwargs: Any
    ) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.with_progress = with_progress
        self.signals = WorkerSignals()
        self.cancelled = False
        self.setAutoDelete(False)
        Worker._alive.add(self)
        self.signals.finished.connect(lambda: Worker._alive.discard(self))

    def cancel(self) -> None:
        self.cancelled = True

    def _progress(self, done: int, total: int) -> bool:
        self.signals.progress.emit(done, total)
        return not self.cancelled

    def run(self) -> None:
        try:
            kwargs = dict(self.kwargs)
            if self.with_progress:
                kwargs["progress"] = self._progress
            value = self.fn(*self.args, **kwargs)
        except InterruptedError:
            self.signals.error.emit("Cancelled.")
        except Exception as exc:  # shown to the user in a dialog, never swallowed silently
            log.debug("worker failed:\n%s", traceback.format_exc())
            self.signals.error.emit(str(exc) or exc.__class__.__name__)
        else:
            self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()
