"""Append-only Arrow IPC stream writer that never raises into the process it records.

Rows are buffered column-wise and written as one record batch at least every
``flush_interval`` seconds (a daemon thread sees to it even when no new row arrives) and
whenever ``max_rows`` are waiting, so memory stays bounded whatever the run length and a
``kill -9`` loses at most the last interval. Each batch goes to the OS in write calls of its
own, so the bytes are safe the moment ``write_batch`` returns, even if the process dies next.

Small batches keep the loss bounded but compress poorly (a 20-row batch is half metadata), so
:meth:`StreamWriter.close` rewrites the finished stream into batches of up to
:data:`COMPACT_BATCH_ROWS` rows, next to it, and swaps it in with one rename: about four times
smaller, and the original stays untouched if anything goes wrong on the way.

Any I/O error (a full disk, a vanished directory) ends this stream with one warning; the
caller is never interrupted. A forked child (a dataloader worker) inherits the object but
must not write into the parent's file, so writes from any other pid are dropped.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from efftrace.recorder.format.columns import to_arrow
from efftrace.recorder.log import warn

IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
"""LZ4 frames, not zstd: files a fifth to a quarter larger, but cheaper to write (less CPU taken
from the training) and over three times faster for the analyzer to decode. Measured side by side
by ``bench/trace_compression.py`` (docs/benchmarks.md): a 160-row flush 157 against 200 µs, a
synthetic day of 8 GPUs compacted in 0.21 against 0.46 s, 200 against 156 MiB, decoded in 0.09
against 0.32 s; the H100 sample traces 3.0-3.5 against 2.5-2.8 MB per GPU-hour. Readers take
either, batch by batch, so traces written with zstd stay readable."""
COMPACT_BATCH_ROWS = 65_536
"""Rows per batch after compaction: large enough to compress well, small enough to bound memory."""


def compact_stream(path: Path, schema: pa.Schema) -> None:
    """Rewrite a closed stream with large record batches, replacing it atomically."""
    temporary = path.with_name(path.name + ".compacting")
    try:
        with pa.OSFile(str(path)) as source, pa.OSFile(str(temporary), "wb") as sink:
            reader = pa.ipc.open_stream(source)
            with pa.ipc.new_stream(sink, schema, options=IPC_OPTIONS) as writer:
                pending: list[pa.RecordBatch] = []
                rows = 0
                for batch in reader:
                    pending.append(batch)
                    rows += batch.num_rows
                    if rows >= COMPACT_BATCH_ROWS:
                        writer.write_table(pa.Table.from_batches(pending, schema).combine_chunks())
                        pending, rows = [], 0
                if pending:
                    writer.write_table(pa.Table.from_batches(pending, schema).combine_chunks())
        os.replace(temporary, path)
    except (OSError, pa.ArrowException) as error:
        warn(f"kept {path} as written (compacting it failed: {error})")
        temporary.unlink(missing_ok=True)


class StreamWriter:
    """One Arrow IPC stream file with a fixed schema."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: pa.Schema,
        flush_interval: float,
        max_rows: int,
    ) -> None:
        self.path = Path(path)
        self.schema = schema
        self.max_rows = max(1, max_rows)
        self.rows_written = 0
        self.failed = False
        self._flush_interval = flush_interval
        self._columns: list[list[Any]] = [[] for _ in schema.names]
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._pid = os.getpid()
        self._file = None
        self._ipc = None
        try:
            # An OSFile writes straight to the descriptor (no user-space buffer to lose on a kill),
            # and needs no Python callbacks, so the flusher thread never waits on the GIL holder.
            self._file = pa.OSFile(str(self.path), "wb")
            self._ipc = pa.ipc.new_stream(self._file, schema, options=IPC_OPTIONS)
        except (OSError, pa.ArrowException) as error:
            self._fail(error)
        self._flusher = threading.Thread(target=self._flush_periodically, name="efftrace-flush", daemon=True)
        self._flusher.start()

    def append(self, row: Sequence[Any]) -> None:
        """Buffer one row, values in schema order."""
        if self.failed or os.getpid() != self._pid:
            return
        with self._lock:
            for column, value in zip(self._columns, row, strict=True):
                column.append(value)
            self._pending += 1
            if self._pending >= self.max_rows:
                self._write_pending()

    def extend(self, columns: Sequence[Sequence[Any]]) -> None:
        """Buffer many rows given column-wise (all columns the same length)."""
        if self.failed or os.getpid() != self._pid or not columns or not len(columns[0]):
            return
        with self._lock:
            for column, values in zip(self._columns, columns, strict=True):
                column.extend(values)
            self._pending += len(columns[0])
            if self._pending >= self.max_rows:
                self._write_pending()

    def flush(self) -> None:
        if os.getpid() != self._pid:
            return
        with self._lock:
            self._write_pending()

    def close(self, compact: bool = True) -> None:
        """Write what is pending and the end-of-stream marker, then compact. Safe to call twice."""
        if os.getpid() != self._pid or self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            self._write_pending()
            if self._ipc is not None and not self.failed:
                try:
                    self._ipc.close()
                except OSError as error:
                    self._fail(error)
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as error:
                    self._fail(error)
            self._ipc = None
            if compact and not self.failed and self.rows_written:
                compact_stream(self.path, self.schema)

    def _flush_periodically(self) -> None:
        while not self._closed.wait(self._flush_interval):
            self.flush()

    def _write_pending(self) -> None:
        """Caller holds the lock."""
        if not self._pending or self.failed or self._ipc is None:
            return
        try:
            arrays = [to_arrow(values, field.type) for values, field in zip(self._columns, self.schema, strict=True)]
            batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
            self._ipc.write_batch(batch)
        except (OSError, pa.ArrowException) as error:
            self._fail(error)
            return
        finally:
            for column in self._columns:
                column.clear()
        self.rows_written += self._pending
        self._pending = 0

    def _fail(self, error: BaseException) -> None:
        if not self.failed:
            warn(f"stopped writing {self.path}: {error}")
        self.failed = True
        for column in self._columns:
            column.clear()
        self._pending = 0
