"""The progress bar: fed by the loader, drawn only on a terminal after a moment, never in pipes or CI."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.present import progress
from efftrace.analyzer.read.loader import open_run
from helpers.runs import ROOT

LORA = ROOT / "sample_traces" / "h100-lora-sft" / "trace"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_loader_reports_every_file_it_reads_up_to_its_end():
    trace = open_run(LORA)
    seen: dict[str, list[tuple[int, int]]] = {}
    trace.progress = lambda name, done, total: seen.setdefault(name, []).append((done, total))
    analyze(trace)
    for path in (*trace.gpu_files, *trace.power_files):
        reports = seen[path.path.name]
        assert reports[-1] == (path.path.stat().st_size, path.path.stat().st_size)
        assert all(done <= total for done, total in reports)


def test_a_bar_only_on_a_terminal_outside_ci_and_only_after_a_moment(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert progress.wanted(Terminal()) and not progress.wanted(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not progress.wanted(Terminal())
    monkeypatch.delenv("CI")
    screen = Terminal()
    bar = progress.Progress(screen)
    bar.update("gpu-node.arrow", 10, 100)
    assert screen.getvalue() == "", "nothing in the first moment: quick analyses stay quiet"
    bar.started -= progress.DELAY_S
    bar.update("gpu-node.arrow", 45, 100)
    time.sleep(2 * progress.REFRESH_S)
    bar.update("gpu-node.arrow", 60, 100)
    drawn = screen.getvalue().split("\r")
    assert any(line.startswith("effanalyze: reading gpu-node.arrow:  60%") for line in drawn), drawn
    bar.update("power-node.arrow", 1, 100)  # the next file: a bar of its own, the last one erased
    assert screen.getvalue().split("\r")[-1].startswith("effanalyze: reading power-node.arrow:")
    bar.close()
    assert screen.getvalue().endswith("\r") and screen.getvalue().split("\r")[-2].strip() == "", "the bar is erased"


def test_piped_output_has_no_bar(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", str(LORA), "--report", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "\r" not in result.stderr + result.stdout
