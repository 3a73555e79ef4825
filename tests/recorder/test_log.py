"""Warnings go through ``logging.getLogger("efftrace")``: routable, silenceable, and one stderr line by default."""

from __future__ import annotations

import subprocess
import sys


def _warn_in_a_fresh_process(setup: str) -> subprocess.CompletedProcess:
    script = f"import logging, sys\n{setup}\nfrom efftrace.recorder.log import warn\nwarn('the disk is full')\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_a_program_without_logging_sees_one_line_on_stderr():
    result = _warn_in_a_fresh_process("")
    assert result.stderr == "efftrace: warning: the disk is full\n"


def test_a_program_that_configures_logging_gets_the_record_in_its_own_format():
    result = _warn_in_a_fresh_process("logging.basicConfig(format='%(name)s|%(levelname)s|%(message)s')")
    assert result.stderr == "efftrace|WARNING|the disk is full\n"


def test_a_program_can_silence_the_recorder():
    result = _warn_in_a_fresh_process("logging.getLogger('efftrace').setLevel(logging.ERROR)")
    assert result.stderr == ""


def test_the_recorder_logs_on_the_efftrace_logger(caplog):
    from efftrace.recorder.log import warn

    warn("GPU 1 was lost")
    assert [(record.name, record.levelname, record.getMessage()) for record in caplog.records] == [
        ("efftrace", "WARNING", "GPU 1 was lost")
    ]
