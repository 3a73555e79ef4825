"""What effrec's choice of compression costs and saves: zstd against LZ4, side by side in one run.

    python bench/trace_compression.py [--hours 24] [--gpus 8] [--repeat 5] [--workdir DIR]

For each codec, on the synthetic day of ``bench/analyzer_speed.py`` (8 GPUs at 10 Hz) and on the
committed H100 sample traces:

* the recorder's side: one live flush (a 160-row batch: 8 GPUs x 20 polls, what effrec writes
  every 2 s) and the compaction of the whole day into 64k-row batches, each timed as the best of
  ``--repeat`` (the lower bound of the machine's noise);
* the file size, and for the sample traces in MB per GPU-hour;
* the analyzer's side: decoding every column of the day, single-threaded, best of ``--repeat``.

The sample traces were recorded with zstd; here their batches are written again with each codec.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from analyzer_speed import make_trace  # noqa: E402

from efftrace.recorder.format import schema  # noqa: E402

CODECS = ("zstd", "lz4")
FLUSH_ROWS = 160  # 8 GPUs x 20 polls: one 2-s flush at 0.1 s


def _batches(path: Path) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    with pa.OSFile(str(path)) as source:
        reader = pa.ipc.open_stream(source)
        return reader.schema, list(reader)


def _write(path: Path, stream_schema: pa.Schema, batches: list[pa.RecordBatch], codec: str) -> float:
    """Seconds to write ``batches`` as one stream (compression included)."""
    options = pa.ipc.IpcWriteOptions(compression=codec)
    began = time.perf_counter()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, stream_schema, options=options) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return time.perf_counter() - began


def _decode(path: Path) -> float:
    began = time.perf_counter()
    with pa.OSFile(str(path)) as source:
        for _ in pa.ipc.open_stream(source, options=pa.ipc.IpcReadOptions(use_threads=False)):
            pass
    return time.perf_counter() - began


def _best(repeat: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(repeat))


def day_table(run_dir: Path, scratch: Path, repeat: int) -> list[str]:
    stream_schema, batches = _batches(run_dir / schema.gpu_samples_file("node"))
    flushes = [batch.slice(start, FLUSH_ROWS) for batch in batches[:4] for start in range(0, 8_192, FLUSH_ROWS)]
    rows = ["| codec | one 160-row flush (µs) | compacting the day (s) | day on disk (MiB) | decoding the day (s) |"]
    rows.append("| --- | --- | --- | --- | --- |")
    for codec in CODECS:
        target = scratch / f"day-{codec}.arrow"
        flush = _best(repeat, partial(_write, scratch / "flushes.arrow", stream_schema, flushes, codec)) / len(flushes)
        compact = _best(repeat, partial(_write, target, stream_schema, batches, codec))
        decode = _best(repeat, partial(_decode, target))
        size = target.stat().st_size / 2**20
        rows.append(f"| {codec} | {flush * 1e6:.0f} | {compact:.2f} | {size:.0f} | {decode:.3f} |")
    return rows


def sample_table(scratch: Path) -> list[str]:
    rows = ["| sample trace | " + " | ".join(f"{codec} MB per GPU-hour" for codec in CODECS) + " |"]
    rows.append("| --- | " + " | ".join("---" for _ in CODECS) + " |")
    for trace in sorted((REPO / "sample_traces").glob("*/trace")):
        meta = json.loads((trace / schema.META_FILE).read_text())
        gpu_hours = (meta["ended_ns"] - meta["started_ns"]) / 3.6e12 * sum(len(h["gpus"]) for h in meta["hosts"])
        sizes = []
        for codec in CODECS:
            total = 0
            for stream in sorted(trace.glob(f"*{schema.ARROW_SUFFIX}")):
                stream_schema, batches = _batches(stream)
                _write(scratch / "sample.arrow", stream_schema, batches, codec)
                total += (scratch / "sample.arrow").stat().st_size
            sizes.append(f"{total / 1e6 / gpu_hours:.2f}")
        rows.append(f"| {trace.parent.name} | " + " | ".join(sizes) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        scratch = Path(temporary)
        run_dir = args.workdir or scratch / "run"
        rows = make_trace(run_dir, args.hours, args.gpus, steps=1_000)
        print(f"synthetic trace: {args.hours:g} h of {args.gpus} GPUs, {rows:,} GPU sample rows")
        print("\n".join(day_table(run_dir, scratch, args.repeat)))
        print()
        print("\n".join(sample_table(scratch)))


if __name__ == "__main__":
    main()
