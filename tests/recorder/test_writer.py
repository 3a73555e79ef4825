"""The Arrow stream writer: flush cadence, bounded memory, kill -9 safety, I/O failures, forks."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pytest

from efftrace.recorder.format import schema
from efftrace.recorder.writer import StreamWriter
from helpers.runs import read_stream

ROW = (1, 0, 1000)


def test_rows_reach_the_file_within_the_flush_interval(tmp_path):
    path = tmp_path / "p.arrow"
    writer = StreamWriter(path, schema.POWER_SAMPLES_SCHEMA, flush_interval=0.2, max_rows=1000)
    writer.append(ROW)
    time.sleep(0.5)  # no further append: the flusher thread must write it
    with pa.OSFile(str(path)) as source:
        reader = pa.ipc.open_stream(source)
        assert reader.read_next_batch().num_rows == 1
    writer.close()


def test_max_rows_bounds_memory(tmp_path):
    writer = StreamWriter(tmp_path / "p.arrow", schema.POWER_SAMPLES_SCHEMA, flush_interval=60, max_rows=10)
    for i in range(95):
        writer.append((i, 0, i))
        assert writer._pending < 10
    writer.close()
    assert read_stream(tmp_path / "p.arrow")["time_ns"].to_pylist() == list(range(95))


def test_close_compacts_into_few_batches_with_same_rows(tmp_path):
    path = tmp_path / "p.arrow"
    writer = StreamWriter(path, schema.POWER_SAMPLES_SCHEMA, flush_interval=60, max_rows=20)
    columns = ([i * 20_000_000 for i in range(5000)], [0] * 5000, [300_000 + i % 97 for i in range(5000)])
    for start in range(0, 5000, 25):
        writer.extend(tuple(column[start : start + 25] for column in columns))
    writer.flush()
    small = path.stat().st_size
    writer.close()
    with pa.OSFile(str(path)) as source:
        batches = list(pa.ipc.open_stream(source))
    assert len(batches) == 1
    table = pa.Table.from_batches(batches)
    assert table["time_ns"].to_pylist() == columns[0] and table["power_mw"].to_pylist() == columns[2]
    assert path.stat().st_size < small / 2
    assert table.schema.metadata[b"efftrace.format_version"] == b"1"


def test_every_flushed_batch_survives_kill_9(tmp_path):
    path = tmp_path / "p.arrow"
    script = textwrap.dedent(
        f"""
        import sys, time
        from efftrace.recorder.format import schema
        from efftrace.recorder.writer import StreamWriter
        writer = StreamWriter({str(path)!r}, schema.POWER_SAMPLES_SCHEMA, flush_interval=0.1, max_rows=100000)
        i = 0
        while True:
            writer.append((i, 0, i)); i += 1
            if i == 50:
                print("ready", flush=True)
            time.sleep(0.002)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    child.send_signal(signal.SIGKILL)
    child.wait()
    rows = []
    with pa.OSFile(str(path)) as source:
        reader = pa.ipc.open_stream(source)
        while True:
            try:
                rows += reader.read_next_batch()["time_ns"].to_pylist()
            except (StopIteration, pa.ArrowInvalid):
                break  # the end, or a batch cut short by the kill
    assert len(rows) >= 50
    assert rows == list(range(len(rows))), "what is there is complete and in order"


def test_disk_full_ends_the_stream_with_one_warning(tmp_path, caplog):
    writer = StreamWriter(tmp_path / "p.arrow", schema.POWER_SAMPLES_SCHEMA, flush_interval=60, max_rows=5)
    for i in range(5):
        writer.append((i, 0, i))

    def full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    writer._ipc.write_batch = full
    for i in range(20):
        writer.append((i, 0, i))  # must not raise
    writer.close()
    assert writer.failed
    assert caplog.text.count("No space left on device") == 1
    assert read_stream(tmp_path / "p.arrow").num_rows == 5


def test_unwritable_directory_is_a_warning_not_an_error(tmp_path, caplog):
    writer = StreamWriter(tmp_path / "missing" / "p.arrow", schema.POWER_SAMPLES_SCHEMA, 60, 5)
    writer.append(ROW)
    writer.close()
    assert writer.failed and "stopped writing" in caplog.text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_write_the_parents_rows(tmp_path):
    path = tmp_path / "p.arrow"
    writer = StreamWriter(path, schema.POWER_SAMPLES_SCHEMA, flush_interval=60, max_rows=1000)
    writer.append((1, 0, 1))
    pid = os.fork()
    if pid == 0:  # a dataloader worker, say: inherits the buffer, must not flush it
        writer.append((2, 0, 2))
        writer.flush()
        writer.close()
        os._exit(0)
    os.waitpid(pid, 0)
    writer.close()
    assert read_stream(path)["time_ns"].to_pylist() == [1]
