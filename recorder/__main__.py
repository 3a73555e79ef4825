"""``python -m efftrace.recorder -- COMMAND ...`` is ``effrec -- COMMAND ...``."""

from efftrace.recorder.cli import main

main()
