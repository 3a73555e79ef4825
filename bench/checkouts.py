"""Running another checkout of efftrace side by side with this one, each importing its own code.

A checkout since the single ``efftrace`` import name maps its folders onto that name only when
installed; to import one without installing it, its folders are staged as ``pip install`` lays
them out (symbolic links in a scratch folder). A checkout from before that name is imported from
its root, as it was then.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def python_path(checkout: Path) -> str:
    """A ``PYTHONPATH`` under which ``import efftrace`` (or the old ``import analyzer``) is ``checkout``'s,
    ahead of this process's own ``PYTHONPATH`` (which may hold packages installed to a folder, not a venv)."""
    checkout = checkout.resolve()
    inherited = [part for part in os.environ.get("PYTHONPATH", "").split(os.pathsep) if part]
    facade = checkout / "analyzer" / "facade" / "__init__.py"
    if not facade.exists():
        return os.pathsep.join([str(checkout), *inherited])
    staged = Path(tempfile.mkdtemp(prefix="efftrace-checkout-"))
    package = staged / "efftrace"
    package.mkdir()
    (package / "__init__.py").symlink_to(facade)
    (package / "recorder").symlink_to(checkout / "recorder")
    (package / "analyzer").symlink_to(checkout / "analyzer")
    return os.pathsep.join([str(staged), str(checkout), *inherited])
