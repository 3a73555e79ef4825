"""The package as ``pip install`` lays it out, staged from this checkout for tools that read files.

Static tools (import-linter's graph, mypy) read packages from disk and cannot follow setuptools'
editable-install finder, which maps ``efftrace`` onto ``analyzer/facade`` and its subpackages onto
``recorder/`` and ``analyzer/``. Copying the three folders into one ``efftrace/`` tree gives them
exactly what a wheel holds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers.runs import ROOT

PUBLIC_API = (
    "efftrace",
    "efftrace.recorder",
    "efftrace.analyzer",
    "efftrace.analyzer.api",
    "efftrace.analyzer.result",
    "efftrace.analyzer.errors",
    "efftrace.analyzer.compute.catalog",
    "efftrace.recorder.in_training.api",
    "efftrace.recorder.in_training.hf_callback",
    "efftrace.recorder.format.schema",
    "efftrace.recorder.log",
)
"""What users import: the notebook facade, the recorder's API and callback, the result and the format."""


def stage_installed_layout(into: Path) -> Path:
    """Copy the package into ``into/efftrace`` as installed; returns ``into`` (the folder for sys.path)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = into / "efftrace"
    package.mkdir(parents=True)
    shutil.copy(ROOT / "analyzer" / "facade" / "__init__.py", package / "__init__.py")
    shutil.copytree(ROOT / "recorder", package / "recorder", ignore=ignore)
    shutil.copytree(ROOT / "analyzer", package / "analyzer", ignore=shutil.ignore_patterns("facade", "__pycache__"))
    return into
