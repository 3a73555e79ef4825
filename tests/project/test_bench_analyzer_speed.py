"""The analyzer benchmark runs end to end on a small trace, its baseline mode included."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers.runs import ROOT


def test_benchmark_prints_both_implementations_and_the_interleaved_baseline(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "analyzer_speed.py"),
            *("--hours", "0.05", "--gpus", "2", "--steps", "200", "--repeat", "2"),
            *("--workdir", str(tmp_path / "run"), "--baseline", str(ROOT)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "trace: 3,600 GPU sample rows, 200 steps" in out
    assert re.search(r"baseline runs \(s\), interleaved: \d+\.\d+, \d+\.\d+", out)
    assert re.search(r"median: this checkout \d+\.\d+ s, baseline \d+\.\d+ s", out)
    rows = [line for line in out.splitlines() if line.startswith("| effanalyze") or line.startswith("| pandas")]
    assert len(rows) == 2 and all("| 20 |" in row for row in rows)  # 200 steps in 10-step log windows
    ours, theirs = (float(row.split("|")[-2]) for row in rows)  # AEC of window 1, W
    assert abs(ours - theirs) / ours < 0.05  # the same power, integrated two ways
