"""Write the bad-input corpus under tests/data/bad/: one run directory per way a trace goes wrong.

    python tests/data/make_bad_traces.py [OUT]   # default: tests/data/bad

Every case starts from the same small valid run (one GPU, 20 s at 10 Hz, a 20-ms power buffer,
ten train steps) and breaks one thing. ``expected.json`` says what ``effanalyze`` must do with
each: exit 2 with one line naming the file (``"error"``), or exit 0 with a note saying what was
left out (``"note"``) or a plain analysis of what is usable (``"analysis"``); the text given must
appear in the output. tests/analyzer/test_bad_input.py holds the analyzer to it.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from efftrace.recorder.format import schema  # noqa: E402
from helpers.trace_builder import TraceBuilder, write_stream  # noqa: E402

HOST = "node"
GPU_FILE = schema.gpu_samples_file(HOST)
POWER_FILE = schema.power_samples_file(HOST)
EVENTS_FILE = schema.events_file(HOST, 0)


def valid_run(
    run_dir: Path, *, mutate: Callable[[dict], None] | None = None, late_gpu_from_s: float | None = None
) -> Path:
    """The valid base run; ``mutate`` may change its sample columns (a dict of numpy arrays) first;
    ``late_gpu_from_s`` adds a second GPU whose samples start then (hot-plugged, or NVML came up late)."""
    builder = TraceBuilder(run_dir, host=HOST, batch_rows=50)
    builder.gpu(0)
    seconds = np.arange(0, 20.001, 0.1)
    columns = {
        "seconds": seconds,
        "power_instant_mw": 300_000 + 1_000 * seconds,
        "power_avg_mw": np.full(seconds.size, 300_000.0),
        "energy_mj": np.where(np.arange(seconds.size) % 10 == 0, 300_000 * seconds, np.nan),
        "mem_used_bytes": np.full(seconds.size, float(10 << 30)),
        "util_gpu_pct": np.full(seconds.size, 90.0),
        "gpm_sm_activity_pct": np.full(seconds.size, 70.0),
    }
    if mutate:
        mutate(columns)
    seconds = columns.pop("seconds")
    builder.gpu_samples(0, seconds, **columns)
    if late_gpu_from_s is not None:
        builder.gpu(1)
        late = seconds >= late_gpu_from_s
        builder.gpu_samples(1, seconds[late], **{key: values[late] for key, values in columns.items()})
    buffer = np.arange(0, 20.001, 0.02)
    builder.power_samples(0, buffer, np.full(buffer.size, 300_000))
    for step in range(1, 11):
        builder.step(0, step, 1.0 + 1.5 * step, 2.4 + 1.5 * step, samples=8, tokens=1000, loss=2.0)
    return builder.write(end_s=20)


def _rewrite_events(run_dir: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    path = run_dir / EVENTS_FILE
    with pa.OSFile(str(path)) as source:
        rows = pa.ipc.open_stream(source).read_all().to_pylist()
    rows = change(rows)
    columns = {field.name: [row.get(field.name) for row in rows] for field in schema.EVENTS_SCHEMA}
    write_stream(path, schema.EVENTS_SCHEMA, columns)


def _edit_meta(run_dir: Path, change: Callable[[dict], None]) -> None:
    meta = json.loads((run_dir / schema.META_FILE).read_text())
    change(meta)
    (run_dir / schema.META_FILE).write_text(json.dumps(meta))


def _cut(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _scribble(path: Path, at: float, size: int = 64) -> None:
    """Overwrite ``size`` bytes at the fraction ``at`` of the file (past its first 8 bytes)."""
    data = bytearray(path.read_bytes())
    start = max(8, int(len(data) * at))
    data[start : start + size] = bytes((start + i * 37) % 256 for i in range(size))
    path.write_bytes(bytes(data))


def _wrong_types(run_dir: Path) -> None:
    """The GPU sample file with the power column written as text."""
    fields = [
        pa.field(field.name, pa.string()) if field.name == "power_instant_mw" else field
        for field in schema.GPU_SAMPLES_SCHEMA
    ]
    wrong = pa.schema(fields, metadata=schema.GPU_SAMPLES_SCHEMA.metadata)
    arrays = [pa.array(["300 W"] if field.name == "power_instant_mw" else [None], field.type) for field in wrong]
    with pa.OSFile(str(run_dir / GPU_FILE), "wb") as sink, pa.ipc.new_stream(sink, wrong) as writer:
        writer.write_table(pa.Table.from_arrays(arrays, schema=wrong))


def _shuffled(columns: dict) -> None:
    order = np.random.default_rng(0).permutation(columns["seconds"].size)
    for key in columns:
        columns[key] = columns[key][order]


def _duplicated(columns: dict) -> None:
    for key in columns:
        columns[key] = np.repeat(columns[key], 2)


def _counter_reset(columns: dict) -> None:
    energy = columns["energy_mj"]
    later = columns["seconds"] >= 10.0
    energy[later] = energy[later] - 300_000 * 10.0  # the driver reloaded at t = 10 s: the counter restarts at 0


def _nan_and_negative(columns: dict) -> None:
    columns["gpm_sm_activity_pct"][::7] = np.nan
    columns["gpm_sm_activity_pct"][3::11] = -5.0
    columns["power_instant_mw"][5::13] = np.nan


def _single_sample(columns: dict) -> None:
    for key in columns:
        columns[key] = columns[key][100:101]


def _resumed(rows: list[dict]) -> list[dict]:
    """Steps 6..10 recorded again, later, as a run resumed from a checkpoint would."""
    again = [dict(row, start_ns=row["start_ns"] + 3 * 10**9, end_ns=row["end_ns"] + 3 * 10**9) for row in rows[5:]]
    return rows + again


def _step_backwards(rows: list[dict]) -> list[dict]:
    """The wall clock stepped back one second during step 5 (NTP): its end is before its start."""
    rows[4] = dict(rows[4], end_ns=rows[4]["start_ns"] - 10**9)
    return rows


CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {}


def case(name: str, expected: str, text: str) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    def register(make: Callable[[Path], None]) -> Callable[[Path], None]:
        CASES[name] = (make, expected, text)
        return make

    return register


@case("missing-meta", "error", "meta.json")
def _(run: Path) -> None:
    valid_run(run)
    (run / schema.META_FILE).unlink()


@case("malformed-meta", "error", "meta.json")
def _(run: Path) -> None:
    valid_run(run)
    (run / schema.META_FILE).write_text('{"format_version": 1, "name": ')


@case("meta-not-an-object", "error", "meta.json")
def _(run: Path) -> None:
    valid_run(run)
    (run / schema.META_FILE).write_text("[1, 2, 3]")


@case("newer-format-version", "error", "newer than this analyzer reads")
def _(run: Path) -> None:
    valid_run(run)
    _edit_meta(run, lambda meta: meta.update(format_version=schema.FORMAT_VERSION + 1))


@case("meta-field-of-wrong-type", "error", "field sampling is True, not an object")
def _(run: Path) -> None:
    valid_run(run)
    _edit_meta(run, lambda meta: meta.update(sampling=True))


@case("meta-gpu-without-index", "error", "field hosts[0].gpus[0].index is missing")
def _(run: Path) -> None:
    valid_run(run)
    _edit_meta(run, lambda meta: meta["hosts"][0]["gpus"][0].pop("index"))


@case("not-a-run-directory", "error", "meta.json")
def _(run: Path) -> None:
    run.mkdir(parents=True)
    (run / "notes.txt").write_text("a colleague's notes, not a trace\n")


@case("truncated-gpu-file", "note", "cut off")
def _(run: Path) -> None:
    valid_run(run)
    _cut(run / GPU_FILE, 0.7)


@case("truncated-events-file", "error", "no train steps")
def _(run: Path) -> None:
    valid_run(run)
    _cut(run / EVENTS_FILE, 0.8)


@case("corrupted-gpu-file-header", "error", "gpu-node.arrow")
def _(run: Path) -> None:
    valid_run(run)
    _scribble(run / GPU_FILE, 0.0)


@case("corrupted-gpu-file-values", "analysis", "AEC (Watts)")
def _(run: Path) -> None:
    """Arrow IPC carries no checksum: bytes changed inside a value buffer read as other values."""
    valid_run(run)
    _scribble(run / GPU_FILE, 0.5)


@case("garbage-instead-of-arrow", "error", "not an Arrow IPC stream")
def _(run: Path) -> None:
    valid_run(run)
    (run / POWER_FILE).write_bytes(b"PK\x03\x04 this is a zip file, not a trace" * 10)


@case("wrong-column-types", "error", "power_instant_mw")
def _(run: Path) -> None:
    valid_run(run)
    _wrong_types(run)


@case("empty-sample-files", "note", "empty")
def _(run: Path) -> None:
    valid_run(run)
    (run / GPU_FILE).write_bytes(b"")
    (run / POWER_FILE).write_bytes(b"")


@case("empty-events-file", "error", "no train steps")
def _(run: Path) -> None:
    valid_run(run)
    (run / EVENTS_FILE).write_bytes(b"")


@case("no-train-steps", "error", "no train steps")
def _(run: Path) -> None:
    valid_run(run)
    _rewrite_events(run, lambda rows: [dict(row, kind="evaluate") for row in rows])


@case("unsorted-timestamps", "analysis", "AEC (Watts)")
def _(run: Path) -> None:
    valid_run(run, mutate=_shuffled)


@case("duplicated-timestamps", "analysis", "AEC (Watts)")
def _(run: Path) -> None:
    valid_run(run, mutate=_duplicated)


@case("resumed-run-duplicated-steps", "note", "recorded twice")
def _(run: Path) -> None:
    valid_run(run)
    _rewrite_events(run, _resumed)


@case("wall-clock-step-backwards", "note", "end before they start")
def _(run: Path) -> None:
    valid_run(run)
    _rewrite_events(run, _step_backwards)


@case("energy-counter-reset", "note", "energy counter went back")
def _(run: Path) -> None:
    valid_run(run, mutate=_counter_reset)


@case("nan-and-negative-readings", "note", "NaN or negative")
def _(run: Path) -> None:
    valid_run(run, mutate=_nan_and_negative)


@case("single-sample", "analysis", "coverage 0.0 %")
def _(run: Path) -> None:
    valid_run(run, mutate=_single_sample)
    (run / POWER_FILE).unlink()


@case("gpu-appears-mid-run", "analysis", "2 GPUs")
def _(run: Path) -> None:
    valid_run(run, late_gpu_from_s=10.0)


@case("unfinished-run", "analysis", "UNFINISHED: unfinished run (meta.json says 'running')")
def _(run: Path) -> None:
    """effrec killed before it finalised the manifest: the model is only in the rank's own file."""
    valid_run(run)
    model = {"class": "LlamaForCausalLM", "total_params": 1_000_000, "trainable_params": 1_000_000}
    (run / schema.rank_info_file(HOST, 0)).write_text(json.dumps({"rank": 0, "host": HOST, "model": model}))
    _edit_meta(run, lambda meta: meta.update(status="running", ended_ns=None, model=None, ranks=[]))


@case("gpu-samples-file-absent", "analysis", f"MISSING: GPU 0 of host {HOST}")
def _(run: Path) -> None:
    valid_run(run)
    (run / GPU_FILE).unlink()
    (run / POWER_FILE).unlink()


@case("rank-events-file-absent", "analysis", f"{schema.events_file(HOST, 1)} is missing")
def _(run: Path) -> None:
    valid_run(run)
    _edit_meta(run, lambda meta: meta.update(ranks=[{"rank": 0, "host": HOST}, {"rank": 1, "host": HOST}]))


@case("folder-of-runs", "error", "a folder of 2 runs")
def _(run: Path) -> None:
    valid_run(run / "20261201T100000Z-first")
    valid_run(run / "20261201T110000Z-second")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "bad"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    expected = {}
    for name, (make, outcome, text) in CASES.items():
        make(out / name)
        expected[name] = {"outcome": outcome, "text": text}
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {len(CASES)} cases to {out}")


if __name__ == "__main__":
    main()
