"""``python -m efftrace.analyzer RUN_DIR ...`` is ``effanalyze RUN_DIR ...``."""

from efftrace.analyzer.cli import main

main()
