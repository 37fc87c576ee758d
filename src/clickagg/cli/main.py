"""The `clickagg` command: validate specs, generate the CRD, run the local stack and demo."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from clickagg import errors
from clickagg.cli import generate_cmd, jobs_cmd, local_cmd, render, serve_cmd, sql_cmd
from clickagg.domain import crd, plan, spec_doc, specfile, validation

app = typer.Typer(
    help="clickagg: real-time clickstream analytics on Spark and SolrCloud.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(local_cmd.app, name="local")
app.command("generate")(generate_cmd.generate)
app.command()(jobs_cmd.stream)
app.command()(jobs_cmd.replay)
app.command()(jobs_cmd.settle)
app.command()(jobs_cmd.backfill)
app.command()(jobs_cmd.rollup)
app.command()(jobs_cmd.retention)
app.command()(serve_cmd.serve)
app.command()(sql_cmd.sql)
console = Console()
err = Console(stderr=True)

CRD_PATH = Path("charts/clickagg/crds") / f"{crd.CRD_NAME}.yaml"
SPEC_DOC_PATH = Path("docs/spec.md")
REFERENCE_SPEC = Path("examples/shop-kpis.yaml")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Aggregation YAML files.", exists=True)],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only, no plan.")] = False,
) -> None:
    """Check Aggregation files; print every error with file, line and field, or the plan."""
    failed = False
    for path in files:
        try:
            aggregation = specfile.load(path)
        except errors.SpecFileError as exc:
            failed = True
            err.print(f"[red]{path}: invalid, {len(exc.located)} problem(s)[/red]")
            for item in exc.located:
                err.print(f"  {item}", markup=False, highlight=False, soft_wrap=True)
            continue
        console.print(f"[green]{path}: valid[/green]")
        for advisory in validation.advisories(aggregation):
            err.print(f"  warning: {advisory}", markup=False, highlight=False, soft_wrap=True)
        if not quiet:
            render.plan_tables(console, aggregation, plan.build(aggregation))
    if failed:
        raise typer.Exit(1)


@app.command("crd")
def crd_command(
    write: Annotated[bool, typer.Option(help="Write the CRD and docs/spec.md.")] = False,
    check: Annotated[bool, typer.Option(help="Exit 1 when the files are stale.")] = False,
) -> None:
    """Print the Aggregation CRD generated from the spec model (or write/check the files)."""
    outputs = {CRD_PATH: render_crd(), SPEC_DOC_PATH: spec_doc.render()}
    if not (write or check):
        sys.stdout.write(outputs[CRD_PATH])
        return
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
    if check:
        for path in stale:
            err.print(f"{path} is stale: run `make crd`")
        raise typer.Exit(1 if stale else 0)
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        console.print(f"wrote {path}")


def render_crd() -> str:
    header = "# Generated from clickagg.domain.spec by `make crd`; do not edit.\n"
    return header + yaml.safe_dump(crd.definition(), sort_keys=False, width=100)


@app.command()
def demo(
    spec_file: Annotated[Path, typer.Option("--spec", help="Aggregation to run.")] = REFERENCE_SPEC,
    visitors: Annotated[int, typer.Option(help="Visitors in the generated day.")] = 5_000,
    duration: Annotated[str, typer.Option(help="Span of generated traffic.")] = "1d",
    start: Annotated[
        str | None,
        typer.Option(help="Traffic start, ISO 8601 (UTC if no offset); default: ends now."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 42,
    keep: Annotated[bool, typer.Option(help="Leave Solr running afterwards.")] = False,
    serve: Annotated[
        bool, typer.Option(help="End by serving the dashboard until Ctrl-C (--no-serve: exit).")
    ] = True,
    port: Annotated[int, typer.Option(help="Loopback port of the dashboard.")] = 8080,
) -> None:
    """Generate a day of shop traffic, stream it into a local SolrCloud, show the KPIs, then
    serve the dashboard."""
    from clickagg.cli import demo_cmd
    from clickagg.domain import durations

    started = time.monotonic()
    try:
        span_ms = int(durations.parse(duration).approx_seconds * 1000)
        start_ms = generate_cmd.start_ms_of(start, span_ms) if start is not None else None
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    options = demo_cmd.DemoOptions(visitors, span_ms, seed, keep, start_ms, port if serve else None)
    try:
        demo_cmd.run(console, spec_file, options)
    except errors.SpecFileError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None
    except errors.ClickaggError as exc:
        err.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")
