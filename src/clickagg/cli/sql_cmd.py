"""`clickagg sql`: ad-hoc Spark SQL over the raw archive and the aggregate levels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clickagg import errors
from clickagg.cli import jobs_cmd

console = Console()
err = Console(stderr=True)


def sql(
    spec: jobs_cmd.SpecArg,
    query: Annotated[str, typer.Argument(help="Spark SQL, e.g. 'SELECT type, count(*) ...'.")],
    solr_url: jobs_cmd.SolrOption = None,
    data: jobs_cmd.DataOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the whole result to this directory instead.")
    ] = None,
    file_format: Annotated[
        str, typer.Option("--format", help="Format of --out: csv or parquet.")
    ] = "csv",
    max_rows: Annotated[int, typer.Option(help="Rows printed at most.")] = 100,
) -> None:
    """Tables: events, dead_letters, and level_<name> per level (e.g. level_15m)."""
    from clickagg.domain import specfile
    from clickagg.pipeline import archive
    from clickagg.pipeline import sql as spark_sql

    if file_format not in ("csv", "parquet"):
        err.print(f"--format: '{file_format}' is neither csv nor parquet")
        raise typer.Exit(2)
    aggregation = specfile.load(spec)
    paths = archive.JobPaths.of(jobs_cmd.data_root(data, aggregation.name), aggregation)
    solr = jobs_cmd.local_solr_url(solr_url, role="query")
    try:
        answer = spark_sql.ask(
            aggregation, paths, solr, query, max_rows=max_rows + 1, out=out, file_format=file_format
        )
    except errors.SqlError as exc:
        err.print(f"query failed: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    if answer is None:
        console.print(f"wrote {out} ({file_format})")
        return
    columns, rows = answer
    table = Table(*columns)
    for row in rows[:max_rows]:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)
    if len(rows) > max_rows:
        console.print(f"(first {max_rows} rows; --out writes them all)")
