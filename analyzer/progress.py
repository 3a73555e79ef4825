"""A one-line progress bar on stderr while a long trace is read: on a terminal only, after a moment.

Short analyses print nothing extra, and pipes, files and CI logs (``CI`` set, ``TERM=dumb``) never
see a bar, so output that scripts read stays the same. The loader reports how far into each file
it is; every pass over a file (the energy pre-pass, the integration, the report's timelines) is a
sweep of the bar.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

DELAY_S = 0.5  # analyses quicker than this show no bar at all
REFRESH_S = 0.1
WIDTH = 30


def wanted(stream: TextIO) -> bool:
    """Whether a bar belongs on ``stream``: a terminal, not CI, not a dumb terminal."""
    interactive = hasattr(stream, "isatty") and stream.isatty()
    return interactive and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = wanted(self.stream) if enabled is None else enabled
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._shown = 0

    def update(self, name: str, done: int, total: int) -> None:
        """``done`` of ``total`` bytes of file ``name`` read."""
        now = time.monotonic()
        if not self.enabled or now - self.started < DELAY_S or now - self._last_draw < REFRESH_S:
            return
        self._last_draw = now
        fraction = min(done / total, 1.0) if total > 0 else 1.0
        filled = round(fraction * WIDTH)
        line = f"effanalyze: reading {name} [{'#' * filled}{'.' * (WIDTH - filled)}] {100 * fraction:3.0f} %"
        self.stream.write("\r" + line.ljust(self._shown))
        self.stream.flush()
        self._shown = len(line)

    def close(self) -> None:
        """Erase the bar, so what follows starts on a clean line."""
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0
