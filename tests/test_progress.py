"""The progress bar: fed by the loader, drawn only on a terminal after a moment, never in pipes or CI."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.present import progress
from efftrace.analyzer.read.loader import open_run

LORA = Path(__file__).resolve().parent.parent / "sample_traces" / "h100-lora-sft" / "trace"


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
    assert screen.getvalue().startswith("\reffanalyze: reading gpu-node.arrow [") and " 45 %" in screen.getvalue()
    bar.close()
    assert screen.getvalue().endswith("\r") and screen.getvalue().count("\r") == 3


def test_piped_output_has_no_bar(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", str(LORA), "--report", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "\r" not in result.stderr + result.stdout
