"""A training process's own events file and its ``rank-*.json``.

One :class:`EventLog` per process, shared by the Trainer callback, the ``generate()`` hook and
the Python API, so that a process writes exactly one ``events-<host>-r<rank>.arrow``.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from efftrace.recorder.config import ENV_RECORDER_PID, ENV_RUN_DIR, FLUSH_INTERVAL_S, RecorderSettings
from efftrace.recorder.format import json_values, schema
from efftrace.recorder.log import warn
from efftrace.recorder.writer import StreamWriter

_EVENT_FIELDS = tuple(schema.EVENTS_SCHEMA.names)
_OPTIONAL_FIELDS = frozenset(_EVENT_FIELDS) - {"kind", "rank", "pid", "start_ns", "end_ns"}


class _RecorderWatch:
    """Whether the effrec that started this job still runs, looked at once per flush interval.

    If effrec is killed (``kill -9``, an out-of-memory kill) the training goes on: losing a
    thousand GPU-hours because the recorder died would be worse than losing the recording. It
    does not go on without a word: the first process to notice says so once on stderr and leaves
    ``recorder-gone-<host>-r<rank>.json`` in the run directory, which the analyzer reports. Its
    own steps are still written; only GPU sampling and the final ``meta.json`` are lost.
    """

    def __init__(self, run_dir: Path, host: str, rank: int) -> None:
        self.run_dir, self.host, self.rank = run_dir, host, rank
        raw = os.environ.get(ENV_RECORDER_PID, "")
        self.pid = int(raw) if raw.isdigit() else None
        self.next_look = time.monotonic() + FLUSH_INTERVAL_S
        self.gone = False

    def look(self) -> None:
        now = time.monotonic()
        if self.pid is None or self.gone or now < self.next_look:
            return
        self.next_look = now + FLUSH_INTERVAL_S
        try:
            os.kill(self.pid, 0)
            return
        except PermissionError:
            return  # a process of that id exists (another user's): effrec's, or too close to tell
        except OSError:
            self.gone = True
        warn(
            f"effrec (pid {self.pid}) has stopped before the job: GPU sampling ended; this process still "
            f"records its steps in {self.run_dir}, and meta.json stays 'running'"
        )
        marker = self.run_dir / schema.recorder_gone_file(self.host, self.rank)
        try:
            marker.write_text(
                json_values.dumps({"noticed_ns": time.time_ns(), "recorder_pid": self.pid, "rank": self.rank})
            )
        except OSError:
            pass


class EventLog:
    """Appends events of one rank to ``events-<host>-r<rank>.arrow`` in ``run_dir``."""

    def __init__(self, run_dir: str | os.PathLike[str], rank: int, history_size: int) -> None:
        self.run_dir = Path(run_dir)
        self.rank = rank
        self.pid = os.getpid()  # a forked child must open its own log, not reuse this one
        self.host = socket.gethostname()
        self._writer = StreamWriter(
            self.run_dir / schema.events_file(self.host, rank),
            schema.EVENTS_SCHEMA,
            FLUSH_INTERVAL_S,
            history_size,
        )
        self._watch = _RecorderWatch(self.run_dir, self.host, rank)

    def write(self, kind: str, start_ns: int, end_ns: int, **fields: Any) -> None:
        """Append one event; ``fields`` are the optional columns of :data:`schema.EVENTS_SCHEMA`."""
        unknown = set(fields) - _OPTIONAL_FIELDS
        if unknown:
            raise TypeError(f"unknown event fields: {sorted(unknown)}")
        values = {"kind": kind, "rank": self.rank, "pid": os.getpid(), "start_ns": start_ns, "end_ns": end_ns}
        values.update(fields)
        self._writer.append(tuple(values.get(name) for name in _EVENT_FIELDS))
        try:
            self._watch.look()
        except Exception:  # noqa: BLE001 - watching effrec must never cost the training a step
            pass

    def write_rank_info(self, info: dict[str, Any]) -> None:
        """What this process knows of itself; ``effrec`` merges it into ``meta.json``."""
        path = self.run_dir / schema.rank_info_file(self.host, self.rank)
        try:
            temporary = path.with_suffix(".json.tmp")
            temporary.write_text(json_values.dumps(info))
            os.replace(temporary, path)
        except OSError as error:
            warn(f"could not write {path}: {error}")

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


_process_log: EventLog | None = None
_process_log_lock = threading.Lock()


def current_rank() -> int:
    """The global rank of this process (0 when it is not part of a distributed job)."""
    return _distributed("get_rank", "RANK", 0)


def world_size() -> int:
    """How many ranks the job has (1 when it is not distributed)."""
    return _distributed("get_world_size", "WORLD_SIZE", 1)


def _distributed(query: str, variable: str, alone: int) -> int:
    """Ask torch.distributed where it is initialised, else the launcher's variable, else ``alone``."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                return int(getattr(torch.distributed, query)())
        except Exception:  # noqa: BLE001 - fall back to the launcher's variables
            pass
    try:
        return int(os.environ.get(variable, str(alone)))
    except ValueError:
        return alone


def process_event_log(rank: int | None = None) -> EventLog | None:
    """This process's log inside an ``effrec`` run, opened on first use; None outside one."""
    global _process_log
    run_dir = os.environ.get(ENV_RUN_DIR)
    if not run_dir:
        return None
    with _process_log_lock:
        if _process_log is None or _process_log.pid != os.getpid():
            history_size = RecorderSettings.from_env().history_size
            _process_log = EventLog(run_dir, current_rank() if rank is None else rank, history_size)
            atexit.register(_process_log.close)
        return _process_log
