"""The layering DESIGN.md describes, checked so it cannot drift: import-linter contracts and mypy.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``): read -> compute -> present in
the analyzer, the analyzer importing nothing of the recorder but ``format``, code inside training
importing nothing of sampling. The public API modules are type-checked with mypy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.layout import PUBLIC_API, stage_installed_layout
from helpers.runs import ROOT

BIN = Path(sys.executable).parent


def lint_imports(staged: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(staged)}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=staged,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    return stage_installed_layout(tmp_path / "site")


def test_every_import_contract_is_kept(staged):
    result = lint_imports(staged)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 5 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden", "contract"),
    [
        ("analyzer/read/loader.py", "efftrace.analyzer.compute.metrics", "analyzer layers"),
        ("analyzer/compute/steps.py", "efftrace.recorder.writer", "imports nothing of the recorder but its format"),
        ("recorder/in_training/events.py", "efftrace.recorder.sampling.gpus", "code that runs inside training"),
        ("analyzer/present/console.py", "efftrace.analyzer.compute.metrics", "present reaches compute only"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(staged, module, forbidden, contract):
    with open(staged / "efftrace" / module, "a") as source:
        source.write(f"\nimport {forbidden}  # added by the test\n")
    result = lint_imports(staged)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken and forbidden in broken, result.stdout[-3000:]


def test_the_public_api_type_checks(staged, tmp_path):
    modules = [argument for name in PUBLIC_API for argument in ("-m", name)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy"),
            *modules,
        ],
        cwd=staged,
        env={**os.environ, "MYPYPATH": str(staged)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
