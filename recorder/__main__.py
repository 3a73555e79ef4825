"""``python -m recorder -- COMMAND ...`` is ``effrec -- COMMAND ...``."""

from recorder.cli import main

main()
