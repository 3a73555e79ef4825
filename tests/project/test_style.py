"""Lint is part of the suite, so the README's one test command is the whole check CI runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.runs import ROOT


@pytest.mark.parametrize("check", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff_is_clean(check):
    pytest.importorskip("ruff", reason="ruff comes with the dev extra")
    result = subprocess.run([sys.executable, "-m", "ruff", *check], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
