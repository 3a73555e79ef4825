"""Mutated traces through the loader and the whole analysis: bad input is a one-line error, never a crash.

Each example copies a small valid run and damages it the ways files really go wrong: cut at
any byte, bytes overwritten, a file emptied or removed, ``meta.json`` edited or cut. The
analyzer must then either analyse (exit 0) or refuse in one line (exit 2); exit 3, its
internal-error exit, or any exception is a failure. A few hundred examples run by default;
``pytest -m slow tests/analyzer/test_fuzz.py`` runs 10,000.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from efftrace.analyzer.cli import main
from helpers.runs import DATA

sys.path.insert(0, str(DATA))
from make_bad_traces import valid_run  # the corpus generator's base run

FILES = ("meta.json", "gpu-node.arrow", "power-node.arrow", "events-node-r0.arrow")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    return valid_run(tmp_path_factory.mktemp("base") / "run")


def _cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def _overwrite(data: bytes, fraction: float, junk: bytes) -> bytes:
    at = int(len(data) * fraction)
    return data[:at] + junk + data[at + len(junk) :]


def _edit_meta(data: bytes, key: str, value: object) -> bytes:
    meta = json.loads(data)
    meta[key] = value
    return json.dumps(meta).encode()


json_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8), st.just([]), st.just({})
)
damage = st.one_of(
    st.tuples(st.just("cut"), st.sampled_from(FILES), st.floats(0, 1)),
    st.tuples(st.just("overwrite"), st.sampled_from(FILES), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("remove"), st.sampled_from(FILES)),
    st.tuples(
        st.just("meta"),
        st.sampled_from(
            ["format_version", "started_ns", "ended_ns", "sampling", "model", "hosts", "ranks", "world_size", "status"]
        ),
        json_values,
    ),
)


def _apply(run: Path, mutation: tuple) -> None:
    kind, target = mutation[0], mutation[1]
    if kind == "meta":
        path = run / "meta.json"
        if not path.exists():
            return
        try:
            path.write_bytes(_edit_meta(path.read_bytes(), target, mutation[2]))
        except (ValueError, TypeError, AttributeError):  # meta.json already broken by an earlier mutation
            pass
        return
    path = run / target
    if not path.exists():
        return
    if kind == "remove":
        path.unlink()
    elif kind == "cut":
        path.write_bytes(_cut(path.read_bytes(), mutation[2]))
    else:
        path.write_bytes(_overwrite(path.read_bytes(), mutation[2], mutation[3]))


def _check(base: Path, work: Path, mutations: list[tuple]) -> None:
    run = work / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(base, run)
    for mutation in mutations:
        _apply(run, mutation)
    result = CliRunner().invoke(main, [str(run), "--json", str(work / "summary.json"), "--quiet"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{mutations}: {result.exception!r}") from result.exception
    assert result.exit_code in (0, 2), f"{mutations}: exit {result.exit_code}: {result.output}"
    if result.exit_code == 2:
        assert len(result.output.strip().splitlines()) == 1, result.output


MUTATIONS = st.lists(damage, min_size=1, max_size=3)
QUICK = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LONG = settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@QUICK
@given(mutations=MUTATIONS)
def test_damaged_traces_never_crash_the_analyzer(base_run, tmp_path, mutations):
    _check(base_run, tmp_path, mutations)


@pytest.mark.slow
@LONG
@given(mutations=MUTATIONS)
def test_damaged_traces_never_crash_the_analyzer_10k(base_run, tmp_path, mutations):
    _check(base_run, tmp_path, mutations)
