"""Are two checkouts of efftrace giving the same figures? One JSON summary per run, from each.

    python bench/same_figures.py --baseline CHECKOUT [RUN_DIR ...] [--bench-trace DIR]

For every run directory (by default every committed trace: ``sample_traces/*/trace`` and the
fidelity recordings under ``bench/fidelity/results``, plus ``--bench-trace`` if given, e.g. the
24-h, 8-GPU trace of ``bench/analyzer_speed.py``), runs ``effanalyze RUN --json`` with this
checkout and with the baseline checkout (a ``git worktree`` of an older commit), each in a fresh
process, and compares the two documents key by key and the two console texts line by line. Run
directories are passed as given, so the ``run_dir`` field matches. The HTML report of each sample
trace and their comparison page are compared byte for byte too. Exits 1 and prints every
difference when anything differs.

The baseline may predate the single ``efftrace`` import name: its entry point is then the old
top-level ``analyzer.cli``, imported from the baseline's own folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from checkouts import python_path

REPO = Path(__file__).resolve().parent.parent
_ENTRY = "import importlib, sys; module = importlib.import_module(sys.argv.pop(1)); sys.argv[0] = 'effanalyze'; " + (
    "module.main()"
)


def cli_module(checkout: Path) -> str:
    """The checkout's command-line module: under the one ``efftrace`` name since it has
    ``analyzer/facade``, the top-level ``analyzer`` before (never the installed copy of this one)."""
    return "efftrace.analyzer.cli" if (checkout / "analyzer" / "facade").is_dir() else "analyzer.cli"


def committed_runs() -> list[Path]:
    runs = sorted(REPO.glob("sample_traces/*/trace"))
    runs += sorted(meta.parent for meta in (REPO / "bench" / "fidelity" / "results").glob("**/runs/*/meta.json"))
    return runs


def summary(checkout: Path, run_dir: Path, out: Path) -> tuple[dict[str, Any] | str, str]:
    """The JSON summary made by ``checkout``'s analyzer (or the error it printed), and its console text."""
    env = {**os.environ, "PYTHONPATH": python_path(checkout), "NO_COLOR": "1"}
    command = [sys.executable, "-c", _ENTRY, cli_module(checkout), str(run_dir), "--json", str(out)]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"exit {done.returncode}: {done.stderr.strip()[-400:]}", done.stdout
    return json.loads(out.read_text()), done.stdout.replace(str(out), "SUMMARY.json")


def page(checkout: Path, arguments: list[str], out: Path) -> bytes | str:
    """The HTML page ``checkout``'s analyzer writes with ``arguments`` (``--report`` or ``compare --html``)."""
    env = {**os.environ, "PYTHONPATH": python_path(checkout)}
    command = [sys.executable, "-c", _ENTRY, cli_module(checkout), *arguments, "-q"]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    return out.read_bytes() if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-400:]}"


def same_pages(baseline: Path, scratch: Path) -> list[str]:
    """The report of each sample trace and their comparison page, byte for byte: the same bytes render the same."""
    traces = [str(path) for path in sorted(REPO.glob("sample_traces/*/trace"))]
    asked = [(f"report of {Path(trace).parent.name}", [trace, "--report"]) for trace in traces]
    asked.append(("comparison page", ["compare", *traces, "--html"]))
    found = []
    for number, (name, arguments) in enumerate(asked):
        old = page(baseline, [*arguments, str(scratch / f"old-{number}.html")], scratch / f"old-{number}.html")
        new = page(REPO, [*arguments, str(scratch / f"new-{number}.html")], scratch / f"new-{number}.html")
        print(f"{'same' if old == new else 'DIFFERENT'}  {name}")
        found += [] if old == new else [name]
    return found


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            if key not in new:
                found.append(f"{where}.{key}: only in the baseline")
            elif key not in old:
                found.append(f"{where}.{key}: only in this checkout")
            else:
                found += differences(old[key], new[key], f"{where}.{key}")
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            line for at, pair in enumerate(zip(old, new, strict=True)) for line in differences(*pair, f"{where}[{at}]")
        ]
    return [] if old == new else [f"{where}: {old!r:.120} != {new!r:.120}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of efftrace")
    parser.add_argument("--bench-trace", type=Path, action="append", default=[])
    args = parser.parse_args()
    runs = [path.resolve() for path in (args.runs or committed_runs()) + args.bench_trace]
    failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        for number, run in enumerate(runs):
            old, old_console = summary(args.baseline.resolve(), run, Path(scratch) / f"old-{number}.json")
            new, new_console = summary(REPO, run, Path(scratch) / f"new-{number}.json")
            found = differences(old, new)
            if old_console != new_console:
                changed = [
                    pair
                    for pair in zip(old_console.splitlines(), new_console.splitlines(), strict=False)
                    if pair[0] != pair[1]
                ]
                found.append(f"console text differs, first: {changed[0] if changed else 'in length'}")
            failed += bool(found)
            print(f"{'same' if not found else 'DIFFERENT'}  {run}")
            for line in found[:20]:
                print(f"    {line}")
        print(f"{len(runs) - failed} of {len(runs)} runs give identical JSON summaries and console text")
        pages_differing = same_pages(args.baseline.resolve(), Path(scratch))
    return 1 if failed or pages_differing else 0


if __name__ == "__main__":
    sys.exit(main())
