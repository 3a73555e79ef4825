"""Where a run's files are: a local directory, or a directory at a URL (``s3://``, ``gs://``,
``file://``, ``memory://``, any filesystem fsspec knows), read through universal_pathlib.

Everything else in :mod:`..read` works on path objects with pathlib's methods, so a run at a URL
is read by the same code as a local one: only opening a stream for Arrow and finding where its
batches start differ. A local file is opened by the operating system and memory-mapped to find its
batches; a remote one is opened through fsspec (a seekable Python file) and is one partition per
file, since finding its batches would mean downloading it. universal_pathlib and fsspec (and the
filesystem's own package, such as s3fs) are the ``remote`` extra: nothing here imports them for a
local run.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa

from efftrace.analyzer.errors import TraceError

INSTALL_HINT = "pip install 'efftrace[remote]'"


def run_location(given: str | os.PathLike[str] | Any) -> Any:
    """A local :class:`~pathlib.Path`, or for a URL (``scheme://...``) a ``upath.UPath``."""
    if isinstance(given, str) and "://" in given:
        try:
            from upath import UPath
        except ImportError:
            hint = f"reading a run at a URL needs universal_pathlib and fsspec: {INSTALL_HINT}"
            raise TraceError(given, hint) from None
        try:
            return UPath(given)
        except (ValueError, ImportError) as error:  # an unknown scheme, or its filesystem's package missing
            raise TraceError(given, f"cannot be read ({error})") from None
    if is_local(given) or hasattr(given, "protocol"):  # a Path, or a path at a URL already
        return given
    return Path(given)


def is_local(path: Any) -> bool:
    """Whether ``path`` is on this machine's own filesystem (a :class:`~pathlib.Path`)."""
    return isinstance(path, PurePath)


def open_input(path: Any) -> pa.NativeFile:
    """The file opened for Arrow to read: by the operating system where local, else through fsspec."""
    try:
        if is_local(path):
            return pa.OSFile(str(path))
        return pa.PythonFile(path.open("rb"), mode="r")
    except OSError as error:
        raise TraceError(path, f"unreadable ({error})") from None


def size_of(path: Any) -> int:
    """The file's size in bytes (0 where it cannot be told)."""
    try:
        return int(path.stat().st_size)
    except OSError:
        return 0
