"""`python -m clickagg` is the `clickagg` command."""

import signal
import sys

from clickagg.cli.main import app


def _exit_on_sigterm(signum: int, _: object) -> None:
    # SystemExit runs the `finally` blocks that stop what a command started (Solr, Spark).
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _exit_on_sigterm)
app()
