"""A run's sample streams cut into partitions: the unit of work of the analysis, in one process or on a cluster.

A partition is a run of consecutive record batches of one file, found by its byte range. Planning
reads only the messages' headers (the file is memory-mapped and the bodies are never touched), so
a 200-MB file is planned in milliseconds and every task seeks straight to its batches. A partition
is self-contained and small to send (a path and two offsets), so a task on another machine
reads it from the shared filesystem without the run's manifest.

A stream followed while it is written is held in memory instead (:mod:`.tail`): its one partition
carries the batches themselves and is only read in the process that holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from efftrace.analyzer.read.loader import StreamFile, Trace, on_reference_clock, readable_stream, stream_batches
from efftrace.analyzer.read.locations import is_local, size_of
from efftrace.analyzer.read.tail import HeldTrace
from efftrace.recorder.format import schema

Kind = Literal["gpu", "power"]
PARTITION_BYTES = 32 << 20  # about a second of work per task: a cluster's ~1 ms per task is lost in it
SCHEMAS: dict[Kind, pa.Schema] = {"gpu": schema.GPU_SAMPLES_SCHEMA, "power": schema.POWER_SAMPLES_SCHEMA}


@dataclass
class Reading:
    """What reading one partition found worth telling, and whether a damaged batch ended it (then
    the rest of its file is not used, as when the file is read whole)."""

    notes: list[str] = field(default_factory=list)
    damaged: bool = False

    def mark_damaged(self) -> None:
        self.damaged = True


@dataclass(frozen=True)
class Partition:
    """Record batches ``[start, stop)`` (byte offsets of their messages; stop None: to the end of the
    file) of one sample stream, the ``place``-th partition of its file."""

    kind: Kind
    path: Path
    host: str
    file_index: int  # the file's place among the run's files of this kind: partitions merge in this order
    place: int
    start: int
    stop: int | None
    clock_offset_ns: int = 0  # subtracted from its times as read (the host's clock against the reference)
    held: tuple[pa.RecordBatch, ...] | None = field(default=None, repr=False)  # a followed stream's batches
    # whether a second thread decodes the next chunk while this one is worked on: in one process, where
    # the analysis is the only work; not on a cluster, whose workers each take one core per task
    decode_ahead: bool = True
    # told (file name, bytes read, file size) as it is read, in the process that asked (never sent)
    progress: Callable[[str, int, int], None] | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "progress": None}

    @property
    def whole_file(self) -> bool:
        """Whether it is its file's every batch (offset 0 is the schema's, never a batch's)."""
        return self.start == 0 and self.stop is None

    @property
    def file_key(self) -> tuple[str, int]:
        return self.kind, self.file_index

    @property
    def size(self) -> int:
        """Its bytes (what a progress bar counts); one that runs to the end of its file counts to it."""
        if self.held is not None:
            return sum(batch.nbytes for batch in self.held)
        end = self.stop if self.stop is not None else size_of(self.path)
        return max(end - self.start, 0)

    def batches(self, columns: list[str] | None, reading: Reading) -> Iterator[pa.RecordBatch]:
        """Its batches (only ``columns`` decoded) on the reference clock; findings go to ``reading``."""
        if self.held is not None:
            found: Iterator[pa.RecordBatch] = iter(self.held)
        else:
            found = stream_batches(
                self.path,
                SCHEMAS[self.kind],
                columns,
                reading.notes.append,
                self.progress,
                None if self.whole_file else (self.start, self.stop),
                reading.mark_damaged,
            )
        for batch in found:
            batch = batch.select(columns) if columns is not None else batch
            yield on_reference_clock(batch, self.clock_offset_ns) if self.clock_offset_ns else batch


def batch_offsets(path: Path) -> list[int]:
    """The byte offset of every record batch message of a stream file, a damaged last one included
    (reading it notes how much of it is usable)."""
    offsets: list[int] = []
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.MessageReader.open_stream(source)
        while True:
            at = source.tell()
            try:
                message = reader.read_next_message()
            except StopIteration:
                return offsets
            except (pa.ArrowException, OSError, ValueError, EOFError):
                if at < source.size():
                    offsets.append(at)
                return offsets
            if message.type == "record batch":
                offsets.append(at)


def split_offsets(offsets: list[int], file_size: int, target_bytes: int | None) -> list[int]:
    """Which batches start a partition: the first, then each where the bytes so far pass the next
    multiple of ``target_bytes`` (whole batches; a batch larger than the target is one partition;
    None: one partition)."""
    if not offsets:
        return []
    if target_bytes is None:
        return [0]
    sizes = np.diff(np.asarray([*offsets, file_size], dtype=np.int64))
    passed = np.concatenate(([0], np.cumsum(sizes)[:-1])) // max(target_bytes, 1)
    return np.flatnonzero(np.concatenate(([True], passed[1:] != passed[:-1]))).tolist()


def file_partitions(
    kind: Kind, stream: StreamFile, file_index: int, clock_offset_ns: int, target_bytes: int | None, reading: Reading
) -> list[Partition]:
    """One file's partitions of about ``target_bytes`` each, in file order (none for a file that has
    no readable schema, which ``reading`` notes)."""
    if not readable_stream(stream.path, SCHEMAS[kind], reading.notes.append):
        return []
    whole = [Partition(kind, stream.path, stream.host, file_index, 0, 0, None, clock_offset_ns)]
    if not is_local(stream.path):
        return whole  # finding a remote file's batches would download it: it is read whole, by one task
    try:
        offsets = batch_offsets(stream.path)
        size = size_of(stream.path)
    except (pa.ArrowException, OSError, ValueError):
        return whole
    firsts = split_offsets(offsets, size, target_bytes)
    if not firsts:
        return []  # a schema and no batch yet
    stops: list[int | None] = [offsets[first] for first in firsts[1:]]
    return [
        Partition(kind, stream.path, stream.host, file_index, place, offsets[first], stop, clock_offset_ns)
        for place, (first, stop) in enumerate(zip(firsts, [*stops, None], strict=True))
    ]


def plan_partitions(trace: Trace, target_bytes: int | None = PARTITION_BYTES) -> list[Partition]:
    """Every GPU-sample and power-buffer file of the run cut into partitions of about ``target_bytes``
    (None: one per file), GPU files first.

    A file that is empty or cut off in its header is noted on the trace and has none; one that is
    not an efftrace stream raises :class:`~efftrace.analyzer.errors.TraceError`, as reading it would.
    """
    partitions: list[Partition] = []
    for kind, files in (("gpu", trace.gpu_files), ("power", trace.power_files)):
        for file_index, stream in enumerate(files):
            offset = trace.clock_offsets_ns.get(stream.host, 0)
            if isinstance(trace, HeldTrace):
                held = tuple(trace.held.get(stream.path, []))
                partitions.append(Partition(kind, stream.path, stream.host, file_index, 0, 0, None, offset, held))  # type: ignore[arg-type]
                continue
            reading = Reading()
            partitions += file_partitions(kind, stream, file_index, offset, target_bytes, reading)  # type: ignore[arg-type]
            for note in reading.notes:
                trace.note(note)
    return partitions
