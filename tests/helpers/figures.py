"""The analyses compared in the partition and cluster tests: summary documents, and how far apart they are."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from efftrace.analyzer.compute.engine import LocalEngine
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.present.files import summary_document
from efftrace.analyzer.read.loader import open_run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from figure_compare import largest_difference

SAME = 1e-12  # the largest relative difference two analyses of one run may show (bench/figure_compare.py)


def document(run_dir: Path, engine: Any = None) -> tuple[dict[str, Any], list[str]]:
    """The run's JSON summary and notes, analysed by ``engine`` (this process, whole files, by default)."""
    result = analyze(open_run(run_dir), engine=engine)
    return summary_document(result), result.notes


def split_engine(partition_bytes: int) -> LocalEngine:
    """This process, with each file cut into partitions of about ``partition_bytes``."""
    engine = LocalEngine()
    engine.partition_bytes = partition_bytes  # type: ignore[misc]
    return engine


def assert_same(expected: dict[str, Any], got: dict[str, Any]) -> None:
    difference, where = largest_difference(expected, got)
    assert difference <= SAME, f"{where}: relative difference {difference:.3g}"
