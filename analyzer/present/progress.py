"""A progress bar on stderr while a long trace is read: on a terminal only, after a moment.

Drawn by ``tqdm``. Short analyses print nothing extra, and pipes, files and CI logs (``CI`` set,
``TERM=dumb``) never see a bar, so output that scripts read stays the same. The loader reports
how far into each file it is; every pass over a file (the energy pre-pass, the integration, the
report's timelines) is a sweep of the bar, and the bar is erased when the analysis ends.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from tqdm import tqdm

DELAY_S = 0.5  # analyses quicker than this show no bar at all
REFRESH_S = 0.1


def wanted(stream: TextIO) -> bool:
    """Whether a bar belongs on ``stream``: a terminal, not CI, not a dumb terminal."""
    interactive = hasattr(stream, "isatty") and stream.isatty()
    return interactive and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


class Progress:
    """Bytes read of the file being read: one bar per file and pass, erased when the next begins."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = wanted(self.stream) if enabled is None else enabled
        self.started = time.monotonic()
        self._bar: tqdm | None = None
        self._name = ""

    def update(self, name: str, done: int, total: int) -> None:
        """``done`` of ``total`` bytes of file ``name`` read."""
        if not self.enabled or time.monotonic() - self.started < DELAY_S:
            return
        if self._bar is not None and (name != self._name or done < self._bar.n or total != self._bar.total):
            self.close()  # the next file, or the next pass over this one
        if self._bar is None:
            self._name = name
            self._bar = tqdm(
                total=total,
                file=self.stream,
                mininterval=REFRESH_S,
                leave=False,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                dynamic_ncols=True,
                desc=f"effanalyze: reading {name}",
            )
        self._bar.update(max(done - self._bar.n, 0))

    def close(self) -> None:
        """Erase the bar, so what follows starts on a clean line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
