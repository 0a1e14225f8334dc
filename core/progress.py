"""A terminal progress bar that fits the `progress(done, total) -> bool` callback."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, label: str, *, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.shown = -1.0
        self.interval = 0.2 if getattr(self.stream, "isatty", lambda: False)() else 10.0

    def __call__(self, done: int, total: int) -> bool:
        now = time.perf_counter()
        if done < total and now - self.shown < self.interval:
            return True
        self.shown = now
        fraction = done / total if total else 1.0
        bar = "#" * int(30 * fraction)
        rate = done / max(now - self.started, 1e-9)
        end = "\r" if self.interval < 1 else "\n"
        self.stream.write(f"{end}{self.label} [{bar:<30}] {done}/{total} {rate:.0f}/s")
        if done >= total and end == "\r":
            self.stream.write("\n")
        self.stream.flush()
        return True
