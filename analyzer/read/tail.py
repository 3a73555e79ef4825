"""Reading a run while effrec still writes it: each look reads only what was written since the last.

effrec appends whole record batches to its Arrow streams every flush; a reader that looks in the
middle of a write finds a partial message at the end, which it leaves for the next look. Each file
is kept open from its first look, so when effrec ends a stream (its end-of-stream marker) and swaps
in the compacted copy, this reader still holds the stream it was reading, and stops there.

:class:`HeldTrace` is a :class:`~efftrace.analyzer.read.loader.Trace` over batches already in memory:
the analysis of one window runs on it exactly as it runs on files.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa

from efftrace.analyzer.read.loader import StreamFile, Trace, absent_columns, check_schema, with_absent_columns
from efftrace.recorder.format import schema
from efftrace.recorder.format.columns import from_numpy, to_numpy

_PARTIAL = (OSError, EOFError, pa.ArrowInvalid)  # a message whose body is not all written yet
_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # what the writer adds when it closes the stream


class StreamTail:
    """One Arrow stream being written; :meth:`read_new` gives the batches completed since the last call."""

    def __init__(self, path: Path, expected: pa.Schema) -> None:
        self.path = path
        self._expected = expected
        self._handle: IO[bytes] | None = None
        self._offset = 0
        self._schema: pa.Schema | None = None
        self._absent: list[pa.Field] = []  # columns added to the format after this file was recorded
        self.ended = False  # the writer closed the stream: nothing more will come
        self.bytes_read = 0

    def read_new(self) -> list[pa.RecordBatch]:
        if self.ended:
            return []
        if self._handle is None:
            try:
                self._handle = open(self.path, "rb")  # noqa: SIM115 - kept open across looks, closed by close()
            except FileNotFoundError:
                return []
        self._handle.seek(self._offset)
        data = self._handle.read()
        self.bytes_read += len(data)
        reader = pa.BufferReader(pa.py_buffer(data))
        batches, consumed = [], 0
        while True:
            at = reader.tell()
            if len(data) - at < len(_END_OF_STREAM):
                break  # nothing more yet, or the start of a message still being written
            if data[at : at + len(_END_OF_STREAM)] == _END_OF_STREAM:
                self.ended = True
                break
            try:
                message = pa.ipc.read_message(reader)
            except _PARTIAL:
                break
            if self._schema is None:
                self._schema = pa.ipc.read_schema(message)
                check_schema(self.path, self._schema, self._expected)
                self._absent = absent_columns(self._schema, self._expected)
            else:
                batch = pa.ipc.read_record_batch(message, self._schema)
                batches.append(with_absent_columns(batch, self._absent) if self._absent else batch)
            consumed = reader.tell()
        self._offset += consumed
        return batches

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass(frozen=True)
class HeldBatch:
    """A batch read from a stream, with the span of its time column (found once, when it is read)."""

    batch: pa.RecordBatch
    first_ns: int
    last_ns: int


def _held(batch: pa.RecordBatch, column: str) -> HeldBatch:
    times = to_numpy(batch.column(column)).astype(np.int64)
    return HeldBatch(batch, int(times.min()), int(times.max()))


class RunTail:
    """Every stream of a run being recorded, tailed: GPU samples, power samples, each rank's events.

    Batches are held until :meth:`drop_before` lets them go, so memory holds only the part of the
    run still needed (the log window being recorded and a margin before it).
    """

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self._tails: dict[Path, StreamTail] = {}
        self.held: dict[Path, list[HeldBatch]] = {}
        self._time_column: dict[Path, str] = {}

    def _discover(self) -> None:
        """Streams appear as effrec and the ranks start: look for new ones each time."""
        refreshed = Trace(self.trace.run_dir)
        for name in ("gpu_files", "power_files", "event_files"):
            setattr(self.trace, name, getattr(refreshed, name))
        self.trace.meta = refreshed.meta
        for files, expected, column in (
            (self.trace.gpu_files, schema.GPU_SAMPLES_SCHEMA, "time_ns"),
            (self.trace.power_files, schema.POWER_SAMPLES_SCHEMA, "time_ns"),
            (self.trace.event_files, schema.EVENTS_SCHEMA, "end_ns"),
        ):
            for stream in files:
                if stream.path not in self._tails:
                    self._tails[stream.path] = StreamTail(stream.path, expected)
                    self.held[stream.path] = []
                    self._time_column[stream.path] = column

    def read_new(self) -> int:
        """Read what every stream gained; returns the number of new batches."""
        self._discover()
        count = 0
        for path, tail in self._tails.items():
            fresh = [_held(batch, self._time_column[path]) for batch in tail.read_new() if batch.num_rows]
            self.held[path].extend(fresh)
            count += len(fresh)
        return count

    @property
    def bytes_read(self) -> int:
        return sum(tail.bytes_read for tail in self._tails.values())

    def latest_ns(self, files: list[StreamFile]) -> dict[str, int]:
        """Per host, the latest time held in ``files`` (hosts with nothing held are left out)."""
        latest: dict[str, int] = {}
        for stream in files:
            for held in self.held.get(stream.path, []):
                latest[stream.host] = max(latest.get(stream.host, held.last_ns), held.last_ns)
        return latest

    def batches(self, path: Path) -> list[pa.RecordBatch]:
        return [held.batch for held in self.held.get(path, [])]

    def events(self) -> pa.Table:
        """The held events of every rank, as :meth:`Trace.events` gives them."""
        return HeldTrace(self.trace, {path: self.batches(path) for path in self.held}).events()

    def between(self, path: Path, start_ns: int, end_ns: int) -> list[pa.RecordBatch]:
        """The held rows of one stream whose time lies in [start_ns, end_ns]."""
        chosen = []
        for held in self.held.get(path, []):
            if held.last_ns < start_ns or held.first_ns > end_ns:
                continue
            batch = held.batch
            if held.first_ns < start_ns or held.last_ns > end_ns:
                times = to_numpy(batch.column(self._time_column[path])).astype(np.int64)
                batch = batch.filter(from_numpy((times >= start_ns) & (times <= end_ns)))
            chosen.append(batch)
        return chosen

    def drop_before(self, time_ns: int) -> None:
        """Let go of samples before ``time_ns`` and of events that ended before it (whole batches:
        a batch that reaches past it is kept as it is)."""
        for path, batches in self.held.items():
            self.held[path] = [held for held in batches if held.last_ns >= time_ns]

    def close(self) -> None:
        for tail in self._tails.values():
            tail.close()


class HeldTrace(Trace):
    """The run's manifest and files, read from batches in memory (each file's, as held)."""

    def __init__(self, trace: Trace, held: dict[Path, list[pa.RecordBatch]]) -> None:
        self.__dict__.update(copy.copy(trace).__dict__)
        self._notes = {}
        self.progress = None
        self.held = held

    def _read_stream(
        self, path: Path, expected: pa.Schema, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        yield from self.held.get(path, [])
