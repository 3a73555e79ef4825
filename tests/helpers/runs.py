"""Where things are, and the small steps many tests take: running effrec, reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
DATA = TESTS / "data"
SCRIPTS = TESTS / "scripts"
HELPERS = TESTS / "helpers"
EXAMPLES = ROOT / "examples"


def read_stream(path: Path) -> pa.Table:
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def run_effrec(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600):
    """Run the installed ``effrec`` (as a user would) and return the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "efftrace.recorder", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_run_dir(out: Path) -> Path:
    runs = [path for path in out.iterdir() if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def load_meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())
