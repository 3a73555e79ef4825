"""The one place the analyzer reads files: a run directory's manifest and Arrow streams.

Everything after this module works on tables and record batches with one time base (int64
nanoseconds since the Unix epoch). Streams are read batch by batch, so a long trace never has
to fit in memory, and a stream cut short by a killed job yields every batch it completed; the
loss of the last, partial batch is noted, not raised.
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from efftrace.analyzer.errors import TraceError
from efftrace.analyzer.read.locations import open_input, run_location, size_of
from efftrace.analyzer.read.manifest import check_manifest
from efftrace.analyzer.read.run_search import not_a_run
from efftrace.recorder.format import schema
from efftrace.recorder.format.columns import from_numpy, repeated_string, to_numpy
from efftrace.recorder.format.manifest_files import fold_ranks, json_objects

_IPC_CONTINUATION = b"\xff\xff\xff\xff"
_UNREADABLE = (pa.ArrowException, OSError, ValueError)  # what pyarrow raises on bytes that are not a valid stream
_FORMAT_KEY = b"efftrace.format_version"


@dataclass(frozen=True)
class StreamFile:
    """One Arrow stream of a run: which host wrote it and, for events, which rank."""

    path: Path
    host: str
    rank: int | None = None


@dataclass(frozen=True)
class RecordedGpu:
    """One sampled GPU as ``meta.json`` describes it; ``host`` is the host tag used in file names."""

    host: str
    index: int
    name: str
    uuid: str | None
    memory_total_bytes: int | None
    power_limit_mw: int | None
    max_sm_clock_mhz: int | None = None  # None: recorded before effrec asked for it
    energy_scope: str = "gpu"  # what its energy counter covers: "gpu", or "module" on a Grace Hopper module
    parent_uuid: str | None = None  # a MIG instance's physical GPU, whose power and energy it reports

    @property
    def power_owner(self) -> str:
        """Whose power this device's power readings are (its parent GPU's for a MIG instance), named
        with its host so that two hosts' devices never share an owner."""
        return f"{self.host}:{self.parent_uuid or self.uuid or self.index}"


_PROFILE_NAME = re.compile(rf"^{re.escape(schema.PROFILE_PREFIX)}.+-r(?P<rank>\d+){re.escape(schema.PROFILE_SUFFIX)}$")


def _read_meta(run_dir: Path) -> dict[str, Any]:
    if not run_dir.exists():
        raise TraceError(run_dir, "no such directory")
    if not run_dir.is_dir():
        raise TraceError(run_dir, "not a directory (give the run directory effrec wrote)")
    meta_path = run_dir / schema.META_FILE
    if not meta_path.is_file():
        has_streams = any(path.suffix == schema.ARROW_SUFFIX for path in run_dir.iterdir())
        if has_streams:
            raise TraceError(meta_path, "missing")
        raise TraceError(run_dir, not_a_run(run_dir))
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise TraceError(meta_path, f"unreadable ({error.__class__.__name__}: {error})") from None
    except json.JSONDecodeError as error:
        raise TraceError(meta_path, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise TraceError(meta_path, "not an efftrace manifest (no format_version)")
    _check_version(meta_path, meta["format_version"])
    check_manifest(meta_path, meta)
    return meta


def _check_version(path: Path, version: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TraceError(path, f"invalid trace format version {version!r}")
    if version > schema.FORMAT_VERSION:
        raise TraceError(
            path,
            f"written in trace format {version}, newer than this analyzer reads "
            f"(up to {schema.FORMAT_VERSION}); upgrade efftrace",
        )


def _stream_files(run_dir: Path, prefix: str) -> list[StreamFile]:
    files = []
    for path in sorted(run_dir.glob(f"{prefix}*{schema.ARROW_SUFFIX}")):
        stem = path.name[len(prefix) : -len(schema.ARROW_SUFFIX)]
        host, rank = stem, None
        if prefix == schema.EVENTS_PREFIX:
            host, _, rank_text = stem.rpartition("-r")
            if not host or not rank_text.isdigit():
                continue
            rank = int(rank_text)
        files.append(StreamFile(path, host, rank))
    return files


def _fold_rank_files(run_dir: Path, meta: dict[str, Any]) -> None:
    """A manifest never finalised (effrec still recording, or killed) has no ranks, model or world size
    yet; the ranks' own ``rank-*.json`` files have them, so figures like TT need not wait for the end."""
    ranks = []
    for path, info in json_objects(run_dir, schema.RANK_INFO_PREFIX):
        try:
            check_manifest(path, {"ranks": [info], "model": info.get("model")})
        except TraceError:
            continue
        ranks.append(info)
    if ranks:
        fold_ranks(meta, ranks)


def _fold_host_files(run_dir: Path, meta: dict[str, Any]) -> None:
    """Each host's own ``host-<host>.json`` over what ``meta.json`` lists: while a job runs, or when one
    of its hosts died, only the host files know every host and each one's status."""
    listed = [host for host in meta.get("hosts") or [] if isinstance(host, dict)]
    for path, host in json_objects(run_dir, schema.HOST_MANIFEST_PREFIX):
        try:
            check_manifest(path, {"hosts": [host]})
        except TraceError:
            continue
        same = [at for at, known in enumerate(listed) if known.get("hostname") == host.get("hostname")]
        if same:
            listed[same[0]] = host
        else:
            listed.append(host)
    if listed:
        meta["hosts"] = listed


def _recorder_gone(run_dir: Path) -> list[dict[str, Any]]:
    """What training processes left when they saw their effrec stop before the job (see the recorder)."""
    return [info for _, info in json_objects(run_dir, schema.RECORDER_GONE_PREFIX)]


def on_reference_clock(batch: pa.RecordBatch, offset_ns: int) -> pa.RecordBatch:
    """The batch with its ``time_ns`` moved by a host's clock offset (events are moved by the analysis)."""
    at = batch.schema.get_field_index("time_ns")
    if at < 0:
        return batch
    columns = list(batch.columns)
    columns[at] = from_numpy(to_numpy(batch.column(at)).astype(np.int64) - offset_ns)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


class Trace:
    """A run directory opened for reading: its manifest, its GPUs and its streams.

    Opening checks only the manifest; streams are read when asked for, batch by batch.
    ``notes`` collects what reading found worth telling (a cut-off last batch, an empty file).
    """

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = run_location(run_dir)
        self.meta = _read_meta(self.run_dir)
        self.recorder_gone = _recorder_gone(self.run_dir)
        _fold_host_files(self.run_dir, self.meta)
        if not self.meta.get("ranks"):
            _fold_rank_files(self.run_dir, self.meta)
        self.gpu_files = _stream_files(self.run_dir, schema.GPU_SAMPLES_PREFIX)
        self.power_files = _stream_files(self.run_dir, schema.POWER_SAMPLES_PREFIX)
        self.event_files = _stream_files(self.run_dir, schema.EVENTS_PREFIX)
        self._notes: dict[str, None] = {}
        self.progress: Callable[[str, int, int], None] | None = None  # (file name, bytes read, file size)
        self.clock_offsets_ns: dict[str, int] = {}  # per host: subtracted from its samples' times as read

    @property
    def notes(self) -> list[str]:
        return list(self._notes)

    def note(self, text: str) -> None:
        self._notes[text] = None

    def unreported(self) -> Trace:
        """The same files, read without notes or progress: for a look-ahead read on another
        thread, whose findings the main read notes again, in a fixed order."""
        twin = copy.copy(self)
        twin._notes, twin.progress = {}, None
        return twin

    def recorder_alive(self) -> bool | None:
        """For a run still marked ``running``: whether its effrec process still runs (True/False), or
        None where this cannot be told from here (another host, an older trace without the pid)."""
        environment = self.meta.get("recorder_environment") or {}
        pid, host = self.meta.get("recorder_pid"), environment.get("hostname")
        if not isinstance(pid, int) or not isinstance(host, str) or host != socket.gethostname():
            return None
        try:
            os.kill(pid, 0)
        except PermissionError:
            return True  # a process of that id runs (another user's): cannot rule it out
        except OSError:
            return False
        return True

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.run_dir.name)

    @property
    def status(self) -> str:
        return str(self.meta.get("status") or "unknown")

    @property
    def gpus(self) -> list[RecordedGpu]:
        found = []
        for host in self.meta.get("hosts") or []:
            tag = schema.host_tag(str(host.get("hostname") or ""))
            for gpu in host.get("gpus") or []:
                found.append(
                    RecordedGpu(
                        host=tag,
                        index=int(gpu["index"]),
                        name=str(gpu.get("name") or "unknown GPU"),
                        uuid=gpu.get("uuid"),
                        memory_total_bytes=gpu.get("memory_total_bytes"),
                        power_limit_mw=gpu.get("power_limit_mw"),
                        max_sm_clock_mhz=gpu.get("max_sm_clock_mhz"),
                        energy_scope=str(gpu.get("energy_scope") or "gpu"),
                        parent_uuid=(gpu.get("mig") or {}).get("parent_uuid"),
                    )
                )
        return found

    @property
    def profile_files(self) -> dict[int, Path]:
        """Each rank's PyTorch profiler trace (``effrec --profile-steps``), by rank; none without it."""
        found = {}
        for path in sorted(self.run_dir.glob(f"{schema.PROFILE_PREFIX}*{schema.PROFILE_SUFFIX}")):
            match = _PROFILE_NAME.match(path.name)
            if match:
                found[int(match["rank"])] = path
        return found

    def gpu_batches(self, columns: list[str] | None = None) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Every GPU-sample batch of every host, in file order, as ``(host, batch)``."""
        yield from self._batches(self.gpu_files, schema.GPU_SAMPLES_SCHEMA, columns)

    def power_batches(self, columns: list[str] | None = None) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Every driver-buffer power batch of every host, as ``(host, batch)``."""
        yield from self._batches(self.power_files, schema.POWER_SAMPLES_SCHEMA, columns)

    def events(self) -> pa.Table:
        """All ranks' events in one table with a ``host`` column (events are few: one per step)."""
        tables = []
        for stream in self.event_files:
            batches = [batch for _, batch in self._batches([stream], schema.EVENTS_SCHEMA, None)]
            if batches:
                table = pa.Table.from_batches(batches, schema=batches[0].schema)
                tables.append(table.append_column("host", repeated_string(stream.host, table.num_rows)))
        if not tables:
            return schema.EVENTS_SCHEMA.empty_table().append_column("host", repeated_string("", 0))
        return pa.concat_tables(tables)

    def gpu_samples(self, columns: list[str] | None = None) -> pa.Table:
        """All GPU samples in memory, with a ``host`` column: for notebooks, not for long traces."""
        return self._whole(self.gpu_batches(columns), schema.GPU_SAMPLES_SCHEMA, columns)

    def power_samples(self) -> pa.Table:
        """All driver-buffer power samples in memory, with a ``host`` column."""
        return self._whole(self.power_batches(), schema.POWER_SAMPLES_SCHEMA, None)

    def _whole(
        self, batches: Iterator[tuple[str, pa.RecordBatch]], file_schema: pa.Schema, columns: list[str] | None
    ) -> pa.Table:
        tables = [
            pa.Table.from_batches([batch]).append_column("host", repeated_string(host, batch.num_rows))
            for host, batch in batches
        ]
        if tables:
            return pa.concat_tables(tables)
        empty = file_schema.empty_table()
        if columns is not None:
            empty = empty.select(columns)
        return empty.append_column("host", repeated_string("", 0))

    def _batches(
        self, files: list[StreamFile], expected: pa.Schema, columns: list[str] | None
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        for stream in files:
            offset = self.clock_offsets_ns.get(stream.host, 0)
            for batch in self._read_stream(stream.path, expected, columns):
                batch = batch.select(columns) if columns is not None else batch
                yield stream.host, on_reference_clock(batch, offset) if offset else batch

    def _read_stream(
        self, path: Path, expected: pa.Schema, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The file's batches; with ``columns``, only those are decompressed (in schema order)."""
        yield from stream_batches(path, expected, columns, self.note, self.progress)


def stream_batches(
    path: Path,
    expected: pa.Schema,
    columns: list[str] | None,
    note: Callable[[str], None],
    progress: Callable[[str, int, int], None] | None = None,
    byte_range: tuple[int, int | None] | None = None,
    damaged: Callable[[], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """A stream file's batches, checked; with ``columns``, only those are decompressed (in schema order).

    ``byte_range`` (start, stop) reads only the record batches whose messages start in it (stop None:
    to the end of the file), as one partition of the analysis does; the schema is always read from
    the file's start. What reading finds worth telling (a cut-off batch, an empty file) goes to
    ``note``, and ``damaged`` is called where a damaged batch ends the reading; a file that is not an
    efftrace stream of the ``expected`` kind raises :class:`TraceError`.
    """
    source = open_input(path)
    with source:
        options = pa.ipc.IpcReadOptions(use_threads=False)
        reader = _checked_reader(source, path, expected, note, options)
        if reader is None:
            return
        found = reader.schema
        absent = [field for field in absent_columns(found, expected) if columns is None or field.name in columns]
        if columns is not None:  # reopen, decoding only the columns asked for (by their place in this file)
            options.included_fields = sorted(found.get_field_index(name) for name in columns if name in found.names)
            source.seek(0)
            reader = pa.ipc.open_stream(source, options=options)
        # text columns (the events' kind and name) are checked to be UTF-8 too: damage there would
        # otherwise surface as a decoding error deep in the analysis; sample streams hold no text
        full = any(pa.types.is_string(field.type) for field in expected)
        stop = None
        if byte_range is not None:  # the reader reads each message where the file stands: move it there
            start, stop = byte_range
            source.seek(start)
        while stop is None or source.tell() < stop:
            try:
                batch = reader.read_next_batch()
                batch.validate(full=full)  # buffer sizes against lengths: a damaged header reads "fine" without it
            except StopIteration:
                break
            except _UNREADABLE:
                if damaged is not None:
                    damaged()
                note(
                    f"{path.name}: a record batch was cut off or damaged (the job or recorder killed while "
                    "writing?); the rows before it are used, the rest of the file is not"
                )
                return
            if progress is not None:
                progress(path.name, source.tell(), source.size())
            yield with_absent_columns(batch, absent) if absent else batch
        if progress is not None and stop is None:
            progress(path.name, source.size(), source.size())


def readable_stream(path: Path, expected: pa.Schema, note: Callable[[str], None]) -> bool:
    """Whether the file holds an efftrace stream of the ``expected`` kind with a schema to read
    (False, noted, for one cut off before or inside its header); raises :class:`TraceError` otherwise."""
    with open_input(path) as source:
        return _checked_reader(source, path, expected, note, pa.ipc.IpcReadOptions(use_threads=False)) is not None


def _checked_reader(
    source: pa.NativeFile, path: Path, expected: pa.Schema, note: Callable[[str], None], options: pa.ipc.IpcReadOptions
) -> pa.ipc.RecordBatchStreamReader | None:
    """The stream's reader once its schema is checked; None (noted) where it has no readable schema."""
    try:
        reader = pa.ipc.open_stream(source, options=options)
    except _UNREADABLE:
        _unreadable_schema(path, note)
        return None
    try:
        check_schema(path, reader.schema, expected)
    except UnicodeDecodeError:  # pyarrow decodes names lazily: damage inside the schema shows here
        raise TraceError(path, "corrupted: its schema holds names that are not text") from None
    return reader


def _unreadable_schema(path: Path, note: Callable[[str], None]) -> None:
    """A stream whose schema cannot be read: cut off while being written (a note), or not ours (an error)."""
    with path.open("rb") as handle:
        head = handle.read(len(_IPC_CONTINUATION) + 4)
    rest = size_of(path) - len(head)  # bytes after the header's length, unread
    if head == b"" or (head.startswith(_IPC_CONTINUATION) and len(head) < 8):
        note(f"{path.name}: empty (recording stopped before its first flush); skipped")
        return
    if head.startswith(_IPC_CONTINUATION):
        schema_bytes = int.from_bytes(head[4:8], "little")
        if rest < schema_bytes:
            note(f"{path.name}: cut off inside its header (recording stopped at its first flush); skipped")
            return
        raise TraceError(path, "corrupted: an Arrow IPC stream whose schema cannot be read")
    raise TraceError(path, "not an Arrow IPC stream")


def grouped_batches(batches: Iterator[tuple[str, pa.RecordBatch]], rows: int) -> Iterator[tuple[str, pa.Table]]:
    """Consecutive batches of one host as tables of at least ``rows`` rows, each batch a chunk
    of its columns (nothing copied).

    effrec flushes every 2 s, so a day holds tens of thousands of small batches; numpy's per-call
    cost on each would outweigh the work. Memory stays bounded by one table.
    """
    pending: list[pa.RecordBatch] = []
    pending_host, pending_rows = None, 0
    for host, batch in batches:
        if pending and host != pending_host:
            yield pending_host, pa.Table.from_batches(pending)
            pending, pending_rows = [], 0
        pending.append(batch)
        pending_host, pending_rows = host, pending_rows + batch.num_rows
        if pending_rows >= rows:
            yield host, pa.Table.from_batches(pending)
            pending, pending_rows = [], 0
    if pending:
        yield pending_host, pa.Table.from_batches(pending)


def joined_batches(batches: Iterator[tuple[str, pa.RecordBatch]], rows: int) -> Iterator[tuple[str, pa.Table]]:
    """As :func:`grouped_batches`, each table joined into single-chunk columns (one copy)."""
    for host, table in grouped_batches(batches, rows):
        yield host, table.combine_chunks()


def with_absent_columns(batch: pa.RecordBatch, absent: list[pa.Field]) -> pa.RecordBatch:
    """``batch`` with a column of nulls for each of ``absent``: columns added to the format after the
    file was recorded (:data:`~efftrace.recorder.format.schema.ADDED_COLUMNS`), so that every reader
    sees one schema and an old trace's missing signal reads as not recorded."""
    for field in absent:
        batch = batch.append_column(field, pa.nulls(batch.num_rows, field.type))
    return batch


def absent_columns(found: pa.Schema, expected: pa.Schema) -> list[pa.Field]:
    """The columns of ``expected`` a file of schema ``found`` was recorded without (only added ones
    pass :func:`check_schema`)."""
    return [field for field in expected if field.name not in found.names]


def check_schema(path: Path, found: pa.Schema, expected: pa.Schema) -> None:
    """Raise :class:`TraceError` unless ``found`` is an efftrace stream of the ``expected`` kind and a known version."""
    version = (found.metadata or {}).get(_FORMAT_KEY)
    if version is not None:
        try:
            number = int(version)
        except ValueError:
            raise TraceError(path, f"invalid trace format version {version!r}") from None
        _check_version(path, number)
    table = expected.metadata[b"efftrace.table"].decode()
    absent = absent_columns(found, expected)
    missing = [field.name for field in absent if field.name not in schema.ADDED_COLUMNS]
    if missing:
        raise TraceError(path, f"not an efftrace {table} stream (missing columns: {', '.join(missing)})")
    for field in expected:
        if field in absent:
            continue  # a column added after this file was recorded: read as nulls
        actual = found.field(field.name).type
        if actual != field.type:
            raise TraceError(path, f"column {field.name} is {actual}, not {field.type} as efftrace {table} streams are")


def open_run(run_dir: Path | str | os.PathLike[str]) -> Trace:
    """Open a run directory written by ``effrec`` (a path, or a URL such as ``s3://bucket/runs/sft``:
    :mod:`.locations`); raises :class:`TraceError` if it cannot be used."""
    return Trace(run_location(run_dir))
