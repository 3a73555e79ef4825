"""The analyzer's one kind of failure: input it cannot use, said in one line that names the file."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any


class TraceError(Exception):
    """A run directory or file the analyzer cannot read; the CLI prints it and exits with code 2.

    The message always starts with the path, so a user with many runs knows which one to look at.
    """

    def __init__(self, path: Path | str | Any, problem: str) -> None:
        # a local path, or a run at a URL (a universal_pathlib path or the URL itself), named as given
        url = hasattr(path, "protocol") or (isinstance(path, str) and "://" in path)
        self.path = path if isinstance(path, PurePath) or url else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
