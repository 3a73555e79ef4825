"""The recorder's one voice towards the user: warnings on stderr, never exceptions.

Everything that degrades recording (a missing NVML field, a full disk, a hook that failed) says
so here, in one recognisable form, so users can grep a training log for ``efftrace: warning``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Warn = Callable[[str], None]


def warn(message: str) -> None:
    print(f"efftrace: warning: {message}", file=sys.stderr, flush=True)
