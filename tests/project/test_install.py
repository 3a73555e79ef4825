"""What ``pip install .`` puts into an environment: one top-level import name, ``efftrace``, and the
files the package needs at run time (the auto-instrumentation hook, the report's assets)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from helpers.runs import ROOT


def test_installing_adds_exactly_one_top_level_import_name(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("efftrace-*.whl")
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    before = {path.name for path in site.iterdir()}
    installed = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    added = {path.name for path in site.iterdir()} - before
    importable = {name for name in added if not name.endswith((".dist-info", ".pth")) and name != "__pycache__"}
    assert importable == {"efftrace"}, added
    package = site / "efftrace"
    assert (package / "recorder" / "in_training" / "_autoinstrument" / "sitecustomize.py").is_file()
    assert (package / "analyzer" / "present" / "report_assets" / "charts.js").is_file()
    assert not (package / "analyzer" / "facade").exists(), "the facade is installed as efftrace itself, once"
