"""Shared fixtures: a tiny offline Llama (helpers live in ``tests/helpers``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.runs import EXAMPLES


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama, its tokenizer and 40 alpaca examples of varied length, made offline."""
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny_llama")
    subprocess.run(
        [sys.executable, str(EXAMPLES / "make_random_llama.py"), str(folder), "--examples", "40"],
        check=True,
        capture_output=True,
    )
    return folder
