"""Summary files: ``--json``, ``--csv`` and ``--windows``, written whole or not at all.

Where and how they are written (standard output, links, FIFOs, temporary file and rename) is
:mod:`.outputs`' job; this module makes their contents.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import pyarrow as pa

from efftrace.analyzer.errors import TraceError
from efftrace.analyzer.present.outputs import Output, write
from efftrace.analyzer.result import Figure, RunMetrics
from efftrace.recorder.format import json_values


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _figure_dict(figure: Figure) -> dict[str, Any]:
    return {
        "label": figure.label,
        "value": _finite(figure.value),
        "unit": figure.unit,
        "source": figure.source,
        "coverage": _finite(figure.coverage),
    }


def summary_document(result: RunMetrics) -> dict[str, Any]:
    """The JSON summary: run facts, every window's figures, the per-GPU rows and the notes."""
    return {
        "run": result.run,
        "run_dir": str(result.run_dir),
        "windows": {
            name: {
                "start_ns": summary.start_ns,
                "end_ns": summary.end_ns,
                "seconds": summary.seconds,
                "figures": {key: _figure_dict(figure) for key, figure in summary.figures.items()},
            }
            for name, summary in result.summaries.items()
        },
        "per_gpu": [{key: _finite(value) for key, value in row.items()} for row in result.per_gpu.to_pylist()],
        "log_windows": result.windows.num_rows,
        "notes": result.notes,
        "alerts": result.alerts,
        "diagnosis": result.diagnosis,
    }


def write_json(result: RunMetrics, output: Output) -> str:
    text = json_values.dumps(summary_document(result)) + "\n"
    return write(output, text)


def write_csv(result: RunMetrics, output: Output) -> str:
    """One row per (window, figure): easy to load, filter and compare across runs."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", "window", "key", "label", "value", "unit", "source", "coverage"])
    for name, summary in result.summaries.items():
        for key, figure in summary.figures.items():
            value, coverage = _finite(figure.value), _finite(figure.coverage)
            writer.writerow(
                [
                    result.run["name"],
                    name,
                    key,
                    figure.label,
                    "" if value is None else repr(value),
                    figure.unit,
                    figure.source,
                    "" if coverage is None else repr(coverage),
                ]
            )
    return write(output, buffer.getvalue())


def windows_format(output: Output) -> str:
    """``parquet`` or ``csv``, from the file's suffix; standard output, a pipe or a device without a
    suffix take CSV. Any other suffix is refused."""
    suffix = Path(output.given).suffix.lower()
    if suffix in (".parquet", ".csv"):
        return suffix[1:]
    if output.to_stdout or (output.streamed and not suffix):
        return "csv"
    raise TraceError(
        output.given, "--windows needs a file ending in .parquet or .csv (or - for CSV on standard output)"
    )


def write_windows(result: RunMetrics, output: Output) -> str:
    """The per-log-window table as Parquet or CSV, chosen by the file's suffix."""
    table: pa.Table = result.windows
    if windows_format(output) == "parquet":
        import pyarrow.parquet as parquet

        return write(output, to_file=lambda target: parquet.write_table(table, str(target)))
    import pyarrow.csv as arrow_csv

    if output.to_stdout:
        buffer = pa.BufferOutputStream()
        arrow_csv.write_csv(table, buffer)
        return write(output, buffer.getvalue().to_pybytes().decode("utf-8"))
    return write(output, to_file=lambda target: arrow_csv.write_csv(table, str(target)))
