"""The recorder's one voice towards the user: warnings through ``logging``, never exceptions.

Everything that degrades recording (a missing NVML field, a full disk, a hook that failed) is
logged on the ``efftrace`` logger. A program that embeds the recorder routes or silences them as
it does any library's (``logging.getLogger("efftrace").setLevel(logging.ERROR)`` silences them);
one that configured no logging at all still sees each as one line on stderr,
``efftrace: warning: ...``, the form users grep a training log for.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

Warn = Callable[[str], None]
LOGGER = logging.getLogger("efftrace")


class _ConsoleUnlessConfigured(logging.Handler):
    """The default line on stderr, written only while the program has no logging set up of its own:
    once it has (a handler on the root logger), the record reaches that handler instead."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return
        try:
            sys.stderr.write(f"efftrace: {record.levelname.lower()}: {record.getMessage()}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - a closed stderr must not reach the training loop
            pass


if not any(isinstance(handler, _ConsoleUnlessConfigured) for handler in LOGGER.handlers):
    LOGGER.addHandler(_ConsoleUnlessConfigured())


def warn(message: str) -> None:
    """Log ``message`` as a warning of the ``efftrace`` logger."""
    LOGGER.warning(message)
