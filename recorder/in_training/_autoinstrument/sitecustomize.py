"""Loaded at start-up by every Python process that ``effrec`` runs (this folder leads ``PYTHONPATH``).

The same mechanism as ``ddtrace-run`` and ``opentelemetry-instrument``: Python imports the first
``sitecustomize`` on ``sys.path``. This one costs only the standard library: it registers an
import hook that patches ``transformers.trainer`` and ``transformers.generation.utils`` right
after they execute (see :mod:`efftrace.recorder.in_training.hf_instrument`), and then runs the ``sitecustomize`` the
environment already had, so nothing the user set up is lost.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# <site-packages>/efftrace/recorder/in_training/_autoinstrument: the folder that holds `efftrace`
_PACKAGE_PARENT = os.path.abspath(os.path.join(_HERE, os.pardir, os.pardir, os.pardir, os.pardir))
_PATCHES = {
    "transformers.trainer": "instrument_trainer",
    "transformers.generation.utils": "instrument_generation",
}


def _import_recorder():
    """Our package; from effrec's own installation when the command runs another Python env.

    That installation goes to the *end* of ``sys.path``, so the command's own packages win.
    """
    try:
        from efftrace.recorder.in_training import hf_instrument
    except ImportError:
        sys.path.append(_PACKAGE_PARENT)
        from efftrace.recorder.in_training import hf_instrument
    return hf_instrument


def _apply_patch(module_name, module):
    try:
        hf_instrument = _import_recorder()

        getattr(hf_instrument, _PATCHES[module_name])(module)
    except Exception as error:  # noqa: BLE001 - an unpatched module still works
        print(f"efftrace: warning: could not instrument {module_name} ({error}); no events from it", file=sys.stderr)


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds the modules to patch through the other finders and patches them once executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_module(module):
            execute(module)
            _apply_patch(fullname, module)

        loader.exec_module = exec_module
        return spec


def _run_next_sitecustomize():
    """Run the ``sitecustomize`` this one shadows, as Python would have without us."""
    search = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", search)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


if os.environ.get("EFFTRACE_RUN_DIR"):
    sys.meta_path.insert(0, _PatchAfterImport())
try:
    _run_next_sitecustomize()
except Exception as error:  # noqa: BLE001 - theirs failing must look as it would without us
    print(f"efftrace: warning: the environment's own sitecustomize failed: {error}", file=sys.stderr)
