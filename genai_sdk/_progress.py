"""A small terminal progress bar fed by the pipeline's Progress reports."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ._requests import Progress


class ProgressBar:
    """Draws on a terminal only; elsewhere (pipes, CI logs) it stays silent."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30, force: bool = False) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = force or (hasattr(self.stream, "isatty") and self.stream.isatty())
        self._started = time.monotonic()
        self._drawn = False

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        filled = int((progress.fraction or 0.0) * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        counts = f"{progress.completed}/{progress.total}" if progress.total else str(progress.completed)
        note = f" {progress.message}" if progress.stage == "retrying" else ""
        line = f"\r{self.label} [{bar}] {counts} {progress.stage} {time.monotonic() - self._started:5.1f}s{note}"
        self.stream.write(line[:200].ljust(80))
        self.stream.flush()
        self._drawn = True
        if progress.stage == "done":
            self.close()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
