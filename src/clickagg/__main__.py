"""`python -m clickagg` is the `clickagg` command."""

from clickagg.cli.main import app

app()
