"""Where an output may go, checked before any analysis, and how it is written there.

The rules, the same for every file option (``--json``, ``--csv``, ``--windows``, ``--report``, ``--alerts`` and
the comparison's ``--markdown``, ``--csv``, ``--html``):

- ``-`` is standard output, for the formats that are text;
- a symbolic link is followed, as a shell redirection would: its target is what is written;
- a regular file is replaced whole (a temporary file beside it, then a rename), so a failed write
  leaves the previous file, and never half of a new one; ``--alerts`` alone appends to it instead;
- a FIFO or a character device (``/dev/null``, a pipe) is written into, never replaced;
- a missing folder is made (as ``mkdir -p``), once the analysis has succeeded;
- anything else that exists (a directory, a socket, a block device) is refused, as is a path under
  a file or in a folder that cannot be written, and a file the recorder wrote into a run
  directory: nothing a user recorded is ever replaced.

Every refusal is a :class:`~efftrace.analyzer.errors.TraceError` naming the option and the path.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from efftrace.analyzer.errors import TraceError
from efftrace.recorder.format import json_values, schema

STDOUT = "-"


@dataclass(frozen=True)
class Output:
    """A checked output: ``target`` is the file written (a link's target), None for standard output."""

    option: str
    given: str
    target: Path | None
    streamed: bool = False  # a FIFO or a device: written into, not replaced

    @property
    def to_stdout(self) -> bool:
        return self.target is None


def check_output(option: str, given: str | Path) -> Output:
    """Refuse, before any work, an output that could not be written or would replace what must stay."""
    shown = str(given)
    if shown == STDOUT:
        return Output(option, shown, None)
    path = Path(os.path.realpath(os.path.expanduser(shown)))
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as error:
        raise TraceError(shown, f"{option}: cannot use this path ({error.strerror or error})") from None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            return Output(option, shown, path, streamed=True)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise TraceError(shown, f"{option}: {kind}; give the path of a file to write (or - for standard output)")
    existing = next(folder for folder in path.parents if folder.exists())
    if not existing.is_dir():
        raise TraceError(shown, f"{option}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TraceError(shown, f"{option}: cannot write in {existing} (permission denied)")
    if _recorded(path):
        raise TraceError(shown, f"{option}: {path.name} is part of a recorded run; write the output elsewhere")
    return Output(option, shown, path)


def check_log_dir(given: str) -> Path:
    """``--tensorboard DIR``: a directory, or a path where one can be made; never a file."""
    if given == STDOUT:
        raise TraceError(STDOUT, "--tensorboard writes TensorBoard event files into a directory; give one")
    path = Path(os.path.realpath(os.path.expanduser(given)))
    if path.exists() and not path.is_dir():
        raise TraceError(given, "--tensorboard: not a directory; give the directory to write event files into")
    existing = next(folder for folder in (path, *path.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise TraceError(given, f"--tensorboard: cannot write in {existing} (permission denied)")
    return path


def _recorded(path: Path) -> bool:
    """A file the recorder writes into a run directory (the manifest, a stream, a rank's own file)."""
    if not (path.parent / schema.META_FILE).is_file():
        return False
    name = path.name
    return (
        name == schema.META_FILE
        or name.endswith(schema.ARROW_SUFFIX)
        or (name.startswith(schema.RANK_INFO_PREFIX) and name.endswith(".json"))
    )


def check_all(outputs: list[Output]) -> None:
    """At most one output may be standard output, and no two may be one file."""
    if sum(output.to_stdout for output in outputs) > 1:
        options = " and ".join(output.option for output in outputs if output.to_stdout)
        raise TraceError(STDOUT, f"{options} cannot all write to standard output; give file paths")
    seen: dict[Path, str] = {}
    for output in outputs:
        if output.target is not None and not output.streamed:
            if output.target in seen:
                raise TraceError(output.given, f"{seen[output.target]} and {output.option} name the same file")
            seen[output.target] = output.option


def write(output: Output, text: str | None = None, to_file: Callable[[Path], None] | None = None) -> str:
    """Write ``text`` (or call ``to_file`` with the path to write) to the output; returns what was written,
    for the ``wrote ...`` line. A failed write raises TraceError and leaves no partial file."""
    if output.target is None:
        sys.stdout.write(text or "")
        sys.stdout.flush()
        return "standard output"
    writer = to_file or (lambda target: target.write_text(text or "", encoding="utf-8"))
    if output.streamed:
        try:
            writer(output.target)
        except OSError as error:
            raise TraceError(output.given, f"cannot write ({error.strerror or error})") from None
        return output.given
    temporary = output.target.with_name(f".{output.target.name}.tmp")
    try:
        output.target.parent.mkdir(parents=True, exist_ok=True)
        writer(temporary)
        os.replace(temporary, output.target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise TraceError(output.given, f"cannot write ({error.strerror or error})") from None
    return output.given


def append_alerts(output: Output, alerts: list[dict]) -> None:
    """Add ``alerts`` at the end of the output, one JSON line each (``--alerts``: a log that grows, never
    replaced); a file is made even for none, so that whatever watches it finds it."""
    text = "".join(json_values.dumps(alert, indent=None) + "\n" for alert in alerts)
    if output.target is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.target.parent.mkdir(parents=True, exist_ok=True)
        with open(output.target, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise TraceError(output.given, f"cannot write ({error.strerror or error})") from None
