"""The HTML report and the comparison, without a browser: what they hold, how small, how escaped.

The browser half (the pages really draw, with no console errors, fast enough) is in
``test_report_browser.py``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from efftrace.analyzer.compute.timeline import build_timeline
from efftrace.analyzer.present import report
from efftrace.analyzer.read.loader import open_run
from helpers.runs import ROOT
from helpers.synthetic_runs import HOSTILE, square_wave_run
from helpers.trace_builder import TraceBuilder, ns

SAMPLE_TRACES = sorted((ROOT / "sample_traces").glob("h100-*/trace"))


def effanalyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args], capture_output=True, text=True, timeout=300
    )


def payload_of(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="efftrace-data">(.*?)</script>', page, flags=re.S)
    assert block, "the page has no data block"
    return json.loads(block.group(1))


def digest(run_dir: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(run_dir.iterdir())}


def test_timeline_buckets_keep_every_samples_min_max_and_mean(tmp_path):
    trace = open_run(square_wave_run(tmp_path / "run", gpus=1, seconds=600.0))
    timeline = build_timeline(trace, int(ns(0)), int(ns(600)), max_buckets=60)  # 10-s buckets
    assert timeline.buckets == 60 and timeline.bucket_s == 10.0
    power = timeline.series["GPU 0"]["power_instant_mw"]
    assert power.samples == 6001
    low, high = power.envelope()
    assert np.all(low == 100) and np.all(high == 300)  # every 0.5-s swing survives a 10-s bucket
    assert np.allclose(power.mean()[:-1], 200, atol=10)  # 100 samples a bucket, half of each level


def test_report_holds_each_gpus_charts_and_stays_within_its_display_budget(tmp_path):
    run_dir = square_wave_run(tmp_path / "run", gpus=2, seconds=60.0)
    before = digest(run_dir)
    result = effanalyze(str(run_dir), "-q", "--report", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr
    assert digest(run_dir) == before, "the report must not touch the recording"
    page = (tmp_path / "report.html").read_text()
    data = payload_of(page)
    assert set(data["time_charts"]) == {"GPU 0/power", "GPU 0/memory", "GPU 0/activity"} | {
        "GPU 1/power",
        "GPU 1/memory",
        "GPU 1/activity",
        "steps",
    }
    for key in data["time_charts"]:
        assert f'data-time-chart="{key}"' in page
    assert len(data["step_ends_s"]) == 58 and "ranks" not in data["bar_charts"], "one rank: no one-bar skew chart"
    assert "One rank: no skew between ranks." in page
    assert sum(data["bar_charts"]["latency_histogram"]["values"]) == 58
    assert "Energy: trapezoid vs the GPU's counter" in page and "Run metadata" in page
    assert "<script src" not in page and "http://" not in page and "https://" not in page, "no network"


def test_a_long_many_gpu_run_is_downsampled_for_display(tmp_path):
    run_dir = square_wave_run(tmp_path / "run", gpus=8, seconds=3600.0)
    trace = open_run(run_dir)
    from efftrace.analyzer.compute.metrics import analyze

    page = report.report_html(trace, analyze(trace))
    data = payload_of(page)
    mean = data["time_charts"]["GPU 7/power"]["series"][0]["mean"]
    assert len(mean) <= report.max_buckets_for(8) < 36000
    assert len(page.encode()) < 5_000_000


def test_everything_a_trace_says_is_escaped(tmp_path):
    run_dir = square_wave_run(tmp_path / "run", gpus=1, seconds=20.0, name=HOSTILE)
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["command"] = ["python", HOSTILE]
    meta["training_config"] = {"path": HOSTILE, "text": f"finetuning_type: {HOSTILE}\n"}
    (run_dir / "meta.json").write_text(json.dumps(meta))
    for args in ([str(run_dir), "-q", "--report", str(tmp_path / "r.html")],):
        assert effanalyze(*args).returncode == 0
    assert effanalyze("compare", str(run_dir), str(run_dir), "-q", "--html", str(tmp_path / "c.html")).returncode == 0
    for page in ((tmp_path / "r.html").read_text(), (tmp_path / "c.html").read_text()):
        assert "<script>document.title" not in page and "<img src=x" not in page
        assert page.count("<script") == 2, "only the data block and the chart script"
        assert payload_of(page)  # the data block still parses: nothing closed it early


def test_compare_prints_and_writes_the_side_by_side_table(tmp_path):
    first = square_wave_run(tmp_path / "a", gpus=1, seconds=30.0, name="run-a")
    second = square_wave_run(tmp_path / "b", gpus=2, seconds=40.0, name="run-b")
    outputs = {name: tmp_path / name for name in ("t.md", "t.csv", "t.html")}
    result = effanalyze(
        "compare",
        str(first),
        str(second),
        "--markdown",
        str(outputs["t.md"]),
        "--csv",
        str(outputs["t.csv"]),
        "--html",
        str(outputs["t.html"]),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "run-a" in lines[0] and "run-b" in lines[0]
    gpus = next(line for line in lines if line.startswith("GPUs"))
    assert "1 x NVIDIA H100" in gpus and "2 x NVIDIA H100" in gpus
    rows = list(csv.reader(io.StringIO(outputs["t.csv"].read_text())))
    assert rows[0] == ["row", "unit", "run-a", "run-b"]
    latency = next(row for row in rows if row[0] == "AL (Seconds)")
    assert latency[1] == "s" and float(latency[2]) == pytest.approx(0.9, rel=1e-12) == float(latency[3])
    aec = next(row for row in rows if row[0] == "AEC (Watts)")
    assert float(aec[3]) / float(aec[2]) == pytest.approx(2.0, rel=1e-12)  # two GPUs draw twice the power
    assert outputs["t.md"].read_text().splitlines()[1].startswith("| --- |")
    data = payload_of(outputs["t.html"].read_text())
    assert {series["label"] for series in data["time_charts"]["power"]["series"]} == {"run-a", "run-b"}
    assert all(series["t0"] < 0 for series in data["time_charts"]["power"]["series"]), "aligned at step 1"


def test_compare_errors_are_one_line(tmp_path):
    result = effanalyze("compare", str(tmp_path / "missing"), str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "missing" in result.stderr


def test_the_step_latency_line_joins_across_a_long_step(tmp_path):
    """A 10-s step after 1-s steps lands 10 s after the previous point: not a gap in the recording."""
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    times = np.arange(0, 40.001, 0.1)
    builder.gpu_samples(0, times, power_instant_mw=np.full(times.size, 200e3))
    for step in range(1, 11):
        builder.step(0, step, float(step), step + 0.9)
    builder.step(0, 11, 11.0, 21.0)  # the long one
    for step in range(12, 20):
        builder.step(0, step, float(step + 10), step + 10.9)
    page = tmp_path / "r.html"
    assert effanalyze(str(builder.write(end_s=40.0)), "-q", "--report", str(page)).returncode == 0
    steps = payload_of(page.read_text())["time_charts"]["steps"]
    assert steps["gap_s"] >= 10.0 + 1.0, "joined up to the longest step plus the samples' gap bound"


def test_every_time_chart_has_its_unit_and_a_run_without_gpu_samples_explains_itself(tmp_path):
    run = square_wave_run(tmp_path / "run", gpus=1, seconds=20.0)
    for stream in run.glob("gpu-*.arrow"):
        stream.unlink()
    page = tmp_path / "r.html"
    assert effanalyze(str(run), "-q", "--report", str(page)).returncode == 0
    text = page.read_text()
    data = payload_of(text)
    assert all(chart["unit"] for chart in data["time_charts"].values())
    assert "No GPU samples in this run:" in text and "gpu-node.arrow is missing" in text
    assert "Energy: trapezoid vs the GPU's counter" not in text, "no empty energy table"
    assert "this.spec.unit, 4, PAD.top" in (ROOT / "analyzer" / "present" / "report_assets" / "charts.js").read_text()
