"""Runs in object stores: ``effanalyze s3://...`` and ``gs://...`` give the local figures.

Each store is a real server on 127.0.0.1, started as its own process: moto's S3 server and
gcp-storage-emulator's Google Cloud Storage server. The run is uploaded with the store's own fsspec
filesystem (s3fs, gcsfs), and ``effanalyze`` runs as a user runs it, a process whose environment
points fsspec at the server (``FSSPEC_S3_ENDPOINT_URL``; ``STORAGE_EMULATOR_HOST``, which gcsfs reads),
in one process and on a local cluster, whose workers read their partitions from the store themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers.figures import assert_same, document
from helpers.ports import free_port

pytest.importorskip("upath")
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "sample_traces" / "h100-lora-sft" / "trace"
BIN = Path(sys.executable).parent
READY_S = 30  # a server that has not answered by then will not


@contextmanager
def _serving(command: list[str], url: str, log: Path) -> Iterator[None]:
    """A server process, once it answers HTTP at ``url`` (any status), killed afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        deadline = time.monotonic() + READY_S
        while not _answers(url):
            if time.monotonic() > deadline:
                raise AssertionError(f"{command[0]} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield
    finally:
        process.kill()
        process.wait()


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:  # it answered
        return True
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def s3_environment(tmp_path_factory) -> Iterator[dict[str, str]]:
    s3fs = pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with _serving(command, endpoint, tmp_path_factory.mktemp("s3") / "moto.log"):
        store = s3fs.S3FileSystem(endpoint_url=endpoint, key="test", secret="test")
        store.mkdir("runs")
        store.put(f"{TRACE}/", "runs/sft/", recursive=True)
        credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        yield {**credentials, "FSSPEC_S3_ENDPOINT_URL": endpoint}


@pytest.fixture(scope="module")
def gcs_environment(tmp_path_factory, monkeypatch_module) -> Iterator[dict[str, str]]:
    gcsfs = pytest.importorskip("gcsfs")
    pytest.importorskip("gcp_storage_emulator")
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    command = [str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    with _serving(command, host, tmp_path_factory.mktemp("gcs") / "emulator.log"):
        monkeypatch_module.setenv("STORAGE_EMULATOR_HOST", host)  # read by gcsfs when its filesystem is made
        store = gcsfs.GCSFileSystem(token="anon", project="test")
        store.mkdir("runs")
        store.put(f"{TRACE}/", "runs/sft/", recursive=True)
        yield {"STORAGE_EMULATOR_HOST": host, "FSSPEC_GCS_TOKEN": "anon", "FSSPEC_GCS_PROJECT": "test"}


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _effanalyze(url: str, environment: dict[str, str], out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "effanalyze"), url, "--json", str(out), *options],
        capture_output=True,
        text=True,
        env={**os.environ, **environment},
        timeout=300,
    )


def _same_as_local(out: Path) -> None:
    expected, _ = document(TRACE)
    got = json.loads(out.read_text())
    assert_same(
        {key: value for key, value in expected.items() if key != "run_dir"},
        {key: value for key, value in got.items() if key != "run_dir"},
    )


@pytest.mark.parametrize("options", [(), ("--workers", "2")], ids=["one process", "two workers"])
def test_effanalyze_reads_a_run_in_s3(s3_environment, tmp_path, options):
    result = _effanalyze("s3://runs/sft", s3_environment, tmp_path / "s3.json", *options)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    _same_as_local(tmp_path / "s3.json")
    assert json.loads((tmp_path / "s3.json").read_text())["run_dir"] == "s3://runs/sft"


@pytest.mark.parametrize("options", [(), ("--workers", "2")], ids=["one process", "two workers"])
def test_effanalyze_reads_a_run_in_google_cloud_storage(gcs_environment, tmp_path, options):
    result = _effanalyze("gs://runs/sft", gcs_environment, tmp_path / "gs.json", *options)
    assert result.returncode == 0, result.stderr[-3000:]
    _same_as_local(tmp_path / "gs.json")


def test_a_missing_bucket_is_one_line_and_no_traceback(s3_environment, tmp_path):
    result = _effanalyze("s3://no-such-bucket/sft", s3_environment, tmp_path / "none.json")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["effanalyze: error: s3://no-such-bucket/sft: no such directory"], result.stderr
    assert not (tmp_path / "none.json").exists()
