"""The report and the comparison page in a real headless Chromium: they draw, quietly, and fast.

Chromium is Debian's ``chromium`` package. Where it is missing the test installs it (as root,
with apt-get) and skips, saying why, only where that is impossible. Screenshots are saved under
``EFFTRACE_SCREENSHOTS`` when set (else the test's temporary directory) so that people can look.
Any console output at all fails the test: the pages log nothing when they work.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.runs import ROOT
from helpers.synthetic_runs import HOSTILE, square_wave_run

SAMPLE_TRACES = sorted((ROOT / "sample_traces").glob("h100-*/trace"))
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MAX_REPORT_BYTES = 5_000_000
MAX_OPEN_MS = 2_000

pytestmark = pytest.mark.e2e


def _find_browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def _install_chromium() -> str:
    """Why it could not be installed ('' when it was)."""
    if shutil.which("apt-get") is None:
        return "no chromium and no apt-get to install it"
    if os.geteuid() != 0:
        return "no chromium, and installing it needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    for attempt in (command, ["apt-get", "update", "-q"], command):
        result = subprocess.run(attempt, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode == 0 and attempt is command and _find_browser():
            return ""
    return f"apt-get could not install chromium: {result.stderr.strip().splitlines()[-1:]}"


@pytest.fixture(scope="session")
def chromium() -> str:
    browser = _find_browser()
    if browser is None:
        reason = _install_chromium()
        browser = _find_browser()
        if browser is None:
            pytest.skip(reason)
    return browser


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    where = os.environ.get("EFFTRACE_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


def open_in_browser(browser: str, page: Path, screenshot: Path) -> dict[str, float]:
    """Load the page, check it drew every chart without a console message, screenshot it."""
    html = page.read_text()
    charts = html.count("data-time-chart=") + html.count("data-bar-chart=")
    started = time.perf_counter()
    loaded = _headless(browser, "--dump-dom", page.as_uri())
    wall_s = time.perf_counter() - started
    console = [line for line in loaded.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, f"{page.name}: console output: {console}"
    dom = loaded.stdout
    drawn = re.search(r'data-charts-drawn="(\d+)"', dom)
    assert drawn and int(drawn.group(1)) == charts > 0, f"{page.name}: {drawn and drawn.group(1)} of {charts} drew"
    states = re.findall(r'data-drawn="(\w+)"', dom)
    assert states == ["1"] * charts, f"{page.name}: chart states {states}"
    render_ms = float(re.search(r'data-render-ms="([\d.]+)"', dom).group(1))
    shot = _headless(browser, "--window-size=1300,2400", f"--screenshot={screenshot}", page.as_uri())
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-500:]
    return {"render_ms": render_ms, "wall_s": wall_s, "bytes": page.stat().st_size}


def effanalyze(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("trace", SAMPLE_TRACES, ids=[path.parent.name for path in SAMPLE_TRACES])
def test_the_sample_trace_report_draws_small_and_fast(chromium, screenshots, tmp_path, trace):
    page = tmp_path / f"{trace.parent.name}.html"
    effanalyze(str(trace), "-q", "--report", str(page))
    opened = open_in_browser(chromium, page, screenshots / f"report-{trace.parent.name}.png")
    print(f"{trace.parent.name}: {opened}")
    assert opened["bytes"] < MAX_REPORT_BYTES
    assert opened["render_ms"] < MAX_OPEN_MS, "from navigation start to every chart drawn"


def test_the_comparison_page_draws(chromium, screenshots, tmp_path):
    page = tmp_path / "compare.html"
    effanalyze("compare", *map(str, SAMPLE_TRACES), "-q", "--html", str(page))
    opened = open_in_browser(chromium, page, screenshots / "compare.png")
    print(f"compare: {opened}")
    assert opened["render_ms"] < MAX_OPEN_MS


def test_a_hostile_run_name_runs_no_script(chromium, tmp_path):
    run_dir = square_wave_run(tmp_path / "run", gpus=1, seconds=20.0, name=HOSTILE)
    page = tmp_path / "hostile.html"
    effanalyze(str(run_dir), "-q", "--report", str(page))
    loaded = _headless(chromium, "--dump-dom", page.as_uri())
    title = re.search(r"<title>(.*?)</title>", loaded.stdout, flags=re.S).group(1)
    assert title.startswith("efftrace: &lt;/script&gt;"), "the injected script would have set the title to pwned"
    assert 'data-drawn="1"' in loaded.stdout
    assert not [line for line in loaded.stderr.splitlines() if ":CONSOLE" in line]
