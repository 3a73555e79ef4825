"""The command-line face of :mod:`.ranges`: a click parameter type both ``effrec`` and ``effanalyze`` use.

Apart from ``ranges`` itself because it imports click, which the training processes (that import
``ranges`` through the recorder's settings) never need.
"""

from __future__ import annotations

from typing import Any

import click

from efftrace.recorder.format.ranges import Accepted, parse_step_range


class CheckedOption(click.ParamType):
    """An option checked against its range, refused in the words the environment variables and the
    Python API use: ``--interval=nan is not accepted: give a number from 0.001 to 3,600 (...)``."""

    def __init__(self, accepted: Accepted, option: str) -> None:
        self.accepted, self.option = accepted, option
        self.name = accepted.kind.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.accepted.check(self.option, value)
        except ValueError as error:
            raise click.UsageError(str(error), ctx) from None


class StepRange(click.ParamType):
    """``--profile-steps A-B``: first and last step, refused in the words of :func:`parse_step_range`."""

    name = "A-B"

    def __init__(self, option: str) -> None:
        self.option = option

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return parse_step_range(self.option, str(value))
        except ValueError as error:
            raise click.UsageError(str(error), ctx) from None
