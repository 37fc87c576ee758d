"""`clickagg generate`: a realistic, deterministic clickstream into a landing directory or Kafka.

Demos, benchmarks and end-to-end tests all need traffic; this command makes it from
`sim.generate` (same seed, same lines) and hands it to a landing writer, as fast as
possible or paced like live traffic. The lead registers it on the main app with
`app.command("generate")(generate_cmd.generate)`.
"""

from __future__ import annotations

import collections
import datetime as dt
import time
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from clickagg import errors
from clickagg.domain import durations

if TYPE_CHECKING:  # loaded when the command runs: traffic pulls in ua-parser, landing Kafka
    from clickagg import sim
    from clickagg.sim import landing

console = Console()
err = Console(stderr=True)

_OUTPUT = "Output"
_PACING = "Pacing"
_FAULTS = "Faults (shares of events)"
#: The profile's visitors per day when --visitors is not given (TrafficProfile's default).
VISITORS_PER_DAY = 20_000
_PROGRESS_EVERY = 2048
_INTERRUPTED = 130


def generate(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            file_okay=False,
            rich_help_panel=_OUTPUT,
            help="Landing directory: JSON-lines files appear in it atomically.",
        ),
    ] = None,
    kafka: Annotated[
        str | None,
        typer.Option(
            "--kafka",
            metavar="BOOTSTRAP",
            rich_help_panel=_OUTPUT,
            help="Kafka bootstrap servers to produce to instead, e.g. 127.0.0.1:9092.",
        ),
    ] = None,
    topic: Annotated[str, typer.Option(rich_help_panel=_OUTPUT, help="Kafka topic.")] = "clicks",
    kafka_security: Annotated[
        str,
        typer.Option(
            "--kafka-security",
            metavar="PROTOCOL",
            rich_help_panel=_OUTPUT,
            help="Kafka security.protocol, as in spec.source.kafka.security: PLAINTEXT, SSL, "
            "SASL_PLAINTEXT or SASL_SSL. The user, password and CA come from the jobs' "
            "variables: $CLICKAGG_KAFKA_USERNAME, $CLICKAGG_KAFKA_PASSWORD_FILE (or "
            "$CLICKAGG_KAFKA_PASSWORD), $CLICKAGG_KAFKA_CA_FILE.",
        ),
    ] = "PLAINTEXT",
    kafka_sasl_mechanism: Annotated[
        str,
        typer.Option(
            "--kafka-sasl-mechanism",
            metavar="MECHANISM",
            rich_help_panel=_OUTPUT,
            help="SASL mechanism with a SASL protocol: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
        ),
    ] = "SCRAM-SHA-512",
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1,
            rich_help_panel=_OUTPUT,
            help="Create the Kafka topic with this many partitions unless it exists.",
        ),
    ] = None,
    lines_per_file: Annotated[
        int,
        typer.Option(
            min=1,
            rich_help_panel=_OUTPUT,
            help="Start a new file after this many lines.",
        ),
    ] = 10_000,
    file_span: Annotated[
        str,
        typer.Option(
            rich_help_panel=_OUTPUT,
            help="Start a new file once arrival times pass this span, e.g. 30s, 1m.",
        ),
    ] = "1m",
    prefix: Annotated[
        str | None,
        typer.Option(
            rich_help_panel=_OUTPUT,
            help="File name prefix (default: clicks-s<seed>).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="The same seed gives the same lines.")] = 1,
    start: Annotated[
        str | None,
        typer.Option(
            help="First event time, ISO 8601 (default: now minus --duration).",
        ),
    ] = None,
    duration: Annotated[
        str,
        typer.Option(
            help="Span of event times: 15m, 1h, 1d, P7D.",
        ),
    ] = "1d",
    visitors: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Distinct visitors (default: {VISITORS_PER_DAY:,} per day of --duration).",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            rich_help_panel=_PACING,
            help="Send at most this many lines per second.",
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            rich_help_panel=_PACING,
            help="Send on a clock this many times faster than real time (1 = live).",
        ),
    ] = None,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            rich_help_panel=_PACING,
            help="As fast as possible: the default unless --rate or --speed is given.",
        ),
    ] = False,
    duplicates: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="Resent with the same event_id.",
        ),
    ] = 0.01,
    late: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="Sent up to --late-max after the event.",
        ),
    ] = 0.02,
    late_max: Annotated[
        str,
        typer.Option(
            rich_help_panel=_FAULTS,
            help="Longest delay of a late line; keep it below the watermark.",
        ),
    ] = "2m",
    out_of_order: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="Sent up to 5 s after the event.",
        ),
    ] = 0.05,
    malformed: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="Malformed JSON.",
        ),
    ] = 0.001,
    wrong_type: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="A field of the wrong JSON type.",
        ),
    ] = 0.0005,
    missing_field: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="A required field missing.",
        ),
    ] = 0.0005,
    invalid_utf8: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="Bytes that are not UTF-8.",
        ),
    ] = 0.0002,
    oversized: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="Lines over the 64 KiB limit.",
        ),
    ] = 0.0001,
    far_past: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="ts over a year too early.",
        ),
    ] = 0.0002,
    far_future: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            rich_help_panel=_FAULTS,
            help="ts over a year too late.",
        ),
    ] = 0.0002,
    faults_off: Annotated[
        bool,
        typer.Option(
            "--faults-off",
            rich_help_panel=_FAULTS,
            help="Clean traffic: ignore every fault rate.",
        ),
    ] = False,
) -> None:
    """Generate a realistic clickstream (visits, funnels, bots, broken lines) and write it to
    a landing directory or a Kafka topic. Prints the lines by kind at the end.
    """
    from clickagg import sim
    from clickagg.sim import landing

    if (out is None) == (kafka is None):
        _usage("give exactly one of --out DIR and --kafka BOOTSTRAP")
    if fast and (rate is not None or speed is not None):
        _usage("--fast sends as fast as possible; leave it out with --rate or --speed")
    try:
        span_ms = _duration_ms(duration, "--duration")
        start_ms = start_ms_of(start, span_ms)
        faults = (
            sim.Faults.none()
            if faults_off
            else sim.Faults(
                duplicate=duplicates,
                late=late,
                out_of_order=out_of_order,
                malformed_json=malformed,
                wrong_type=wrong_type,
                missing_field=missing_field,
                invalid_utf8=invalid_utf8,
                oversized=oversized,
                ts_far_past=far_past,
                ts_far_future=far_future,
                late_max_ms=_duration_ms(late_max, "--late-max"),
            )
        )
        profile = sim.TrafficProfile(
            visitors=visitors or max(1, round(VISITORS_PER_DAY * span_ms / 86_400_000)),
        )
        rolling = landing.Rolling(lines_per_file, _duration_ms(file_span, "--file-span"))
    except ValueError as exc:
        _usage(str(exc))
    pacer = landing.Pacer(speed=speed, rate=rate) if rate or speed else None
    client = _kafka_client(kafka_security, kafka_sasl_mechanism) if kafka is not None else None

    counts: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    stopped = False
    delivered: landing.Delivered | None = None
    with _progress() as progress:
        task = progress.add_task("generating", total=span_ms, lines=0, rate=0.0)

        def report(lines: int, arrival_ms: int) -> None:
            elapsed = max(time.monotonic() - started, 1e-9)
            done = min(max(arrival_ms - start_ms, 0), span_ms)
            progress.update(task, completed=done, lines=lines, rate=lines / elapsed)

        stream = _tracked(sim.generate(profile, faults, start_ms, span_ms, seed), counts, report)
        try:
            if out is not None:
                delivered = landing.write_files(
                    stream,
                    out,
                    rolling=rolling,
                    prefix=prefix or f"clicks-s{seed}",
                    pacer=pacer,
                )
            else:
                assert kafka is not None  # one of the two, checked above
                if partitions is not None:
                    from clickagg.local import kafka as local_kafka

                    local_kafka.create_topic(kafka, topic, partitions, client=client)
                delivered = landing.send_to_kafka(stream, kafka, topic, pacer=pacer, client=client)
        except KeyboardInterrupt:
            stopped = True
        except errors.ClickaggError as exc:
            err.print(f"[red]generate failed:[/red] {exc}")
            raise typer.Exit(1) from None
        lines = sum(counts.values())
        progress.update(
            task,
            lines=lines,
            rate=lines / max(time.monotonic() - started, 1e-9),
            completed=None if stopped else span_ms,
        )
    _summary(counts, delivered, time.monotonic() - started, out, kafka, topic, stopped)
    if stopped:
        raise typer.Exit(_INTERRUPTED)


def _kafka_client(protocol: str, mechanism: str) -> dict[str, str]:
    """The producer's security settings; a bad choice or missing login is a usage error
    naming the option or variable, before any line is generated."""
    from clickagg.domain import spec
    from clickagg.store import credentials

    protocols = typing.get_args(spec.KafkaSecurity.model_fields["protocol"].annotation)
    if protocol not in protocols:
        _usage(f"--kafka-security {protocol!r}: use one of {', '.join(protocols)}")
    if mechanism not in credentials.LOGIN_MODULES:
        _usage(
            f"--kafka-sasl-mechanism {mechanism!r}: use one of "
            f"{', '.join(credentials.LOGIN_MODULES)}"
        )
    try:
        return credentials.kafka_client_settings(protocol, mechanism)
    except (errors.KafkaAuthError, errors.KafkaTlsError) as exc:
        _usage(str(exc))


def _usage(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _duration_ms(text: str, option: str) -> int:
    try:
        parsed = durations.parse(text)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None
    if parsed.is_zero:
        raise ValueError(f"{option}: must be longer than 0")
    return round(parsed.approx_seconds * 1000)


def start_ms_of(text: str | None, span_ms: int) -> int:
    if text is None:
        return int(time.time() * 1000) - span_ms
    try:
        moment = dt.datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--start: {text!r} is no ISO 8601 time, e.g. 2016-02-16T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # a time without offset is read as UTC
    return int(moment.timestamp() * 1000)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[lines]:>12,} lines"),
        TextColumn("{task.fields[rate]:>9,.0f} lines/s"),
        TimeElapsedColumn(),
        console=err,
    )


def _tracked(
    stream: Iterator[sim.Emitted],
    counts: collections.Counter[str],
    report: Callable[[int, int], None],
) -> Iterator[sim.Emitted]:
    """The stream, counting kinds and reporting progress every few thousand lines."""
    for lines, item in enumerate(stream, 1):
        counts[item.kind] += 1
        if lines % _PROGRESS_EVERY == 0:
            report(lines, item.arrival_ms)
        yield item


def _summary(
    counts: collections.Counter[str],
    delivered: landing.Delivered | None,
    seconds: float,
    out: Path | None,
    kafka: str | None,
    topic: str,
    stopped: bool,
) -> None:
    from clickagg import sim

    total = sum(counts.values())
    table = Table(title="lines by kind", box=box.SIMPLE)
    for column in ("kind", "lines", "share", "the pipeline"):
        table.add_column(column, justify="right" if column in ("lines", "share") else "left")
    for kind, count in counts.most_common():
        if kind in sim.REJECTED_REASONS:
            verdict = "rejects to the dead letters"
        elif kind == sim.DUPLICATE:
            verdict = "drops: event_id seen before"
        else:
            verdict = "counts"
        table.add_row(kind, f"{count:,}", f"{count / max(total, 1):.2%}", verdict)
    console.print(table)
    where = str(out) if out is not None else f"Kafka topic {topic!r} at {kafka}"
    files = f" in {len(delivered.files):,} files" if delivered and delivered.files else ""
    size = f" ({delivered.bytes / 1e6:,.1f} MB)" if delivered else ""
    verb = "stopped after" if stopped else ("wrote" if out is not None else "sent")
    console.print(
        f"{verb} {total:,} lines{size}{files} to {where} in {seconds:.1f}s "
        f"({total / max(seconds, 1e-9):,.0f} lines/s)"
    )
