"""Summary files: ``--json``, ``--csv`` and ``--windows``, written whole or not at all.

Every file is written to a temporary name beside its target and renamed, so a failed write
never leaves half a summary where a previous good one was.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from efftrace.analyzer.errors import TraceError
from efftrace.analyzer.result import Figure, RunMetrics


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file beside ``path``: a reader never sees half an output."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise TraceError(path, f"cannot write ({error.strerror or error})") from None


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` as UTF-8 through :func:`atomic_write`; returns ``path``."""
    atomic_write(path, lambda target: target.write_text(text, encoding="utf-8"))
    return path


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
    }


def write_json(result: RunMetrics, path: Path) -> None:
    text = json.dumps(summary_document(result), indent=1, default=str) + "\n"
    write_text(path, text)


def write_csv(result: RunMetrics, path: Path) -> None:
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
    write_text(path, buffer.getvalue())


def write_windows(result: RunMetrics, path: Path) -> None:
    """The per-log-window table as Parquet or CSV, chosen by the file's suffix."""
    suffix = path.suffix.lower()
    table: pa.Table = result.windows
    if suffix == ".parquet":
        import pyarrow.parquet as parquet

        atomic_write(path, lambda target: parquet.write_table(table, str(target)))
    elif suffix == ".csv":
        import pyarrow.csv as arrow_csv

        atomic_write(path, lambda target: arrow_csv.write_csv(table, str(target)))
    else:
        raise TraceError(path, "--windows needs a file ending in .parquet or .csv")
