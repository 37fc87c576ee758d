"""Helpers shared by the streaming tests: a spec for a test run, generated traffic, and
reading the finest level back from Solr in the oracle's shape."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from clickagg import sim
from clickagg.domain import model, progress, sessions, sketches, validation
from clickagg.pipeline import archive, stream
from clickagg.sim import landing
from clickagg.store import cell_reads, protocol
from clickagg.store import client as solr
from clickagg.store import solr_cells as solr_store

ROOT = Path(__file__).resolve().parents[1]
HOUR_MS = 3_600_000
#: Small files, read two per micro-batch, so late and duplicate lines cross batches.
ROLLING = landing.Rolling(lines_per_file=1500, arrival_ms_per_file=None)
#: For tests that read only the finest level (the stream, settle and replay write nothing
#: else): one collection to create instead of three, each ~1.6 s (2 shards).
FINEST_ONLY = [{"granularity": "15m", "retention": "30d"}]


def aggregation_for(landing: Path, solr_url: str, name: str, **spec: Any) -> model.Aggregation:
    """The reference spec, reading `landing`, writing to `solr_url`, with test-sized Solr."""
    document = yaml.safe_load((ROOT / "examples" / "shop-kpis.yaml").read_text())
    document["metadata"]["name"] = name
    document["spec"]["source"]["files"]["path"] = str(landing)
    document["spec"]["source"]["files"]["maxFilesPerTrigger"] = 2
    document["spec"]["solr"] = {"url": solr_url, "shards": 2, "replicationFactor": 1}
    for dimension in document["spec"]["dimensions"]:
        dimension["maxCardinality"] = 100_000  # nothing folds into __other__ here
    document["spec"]["limits"] = {"maxDocumentsPerDay": 10**15}
    document["spec"].update(spec)
    return validation.validate(document)


def with_solr(aggregation: model.Aggregation, target: Any) -> model.Aggregation:
    """The same aggregation with other Solr settings (e.g. more replicas)."""
    document = {
        "apiVersion": "clickagg.io/v1alpha1",
        "kind": "Aggregation",
        "metadata": {"name": aggregation.name},
        "spec": {
            **aggregation.spec.model_dump(by_alias=True, exclude_none=True),
            "solr": target.model_dump(by_alias=True, exclude_none=True),
        },
    }
    return validation.validate(document)


def write_spec(aggregation: model.Aggregation, path: Path) -> Path:
    body = aggregation.spec.model_dump(by_alias=True, exclude_none=True)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "clickagg.io/v1alpha1",
                "kind": "Aggregation",
                "metadata": {"name": aggregation.name},
                "spec": body,
            }
        )
    )
    return path


def traffic_lines(start_ms: int, hours: float, visitors: int, seed: int) -> list[sim.Emitted]:
    profile = sim.TrafficProfile(visitors=visitors)
    return list(sim.generate(profile, sim.Faults(), start_ms, int(hours * HOUR_MS), seed))


def sentinel(after_ms: int) -> bytes:
    """One valid event far enough after the traffic that the watermark closes every visit."""
    return json.dumps(
        {
            "event_id": "sentinel",
            "ts": after_ms,
            "visitor_id": "sentinel",
            "type": "page_view",
            "channel": "direct",
            "device_class": "desktop",
            "browser_family": "chrome",
        }
    ).encode()


def oracle_dimensions(aggregation: model.Aggregation) -> dict[str, tuple[str, str]]:
    return {d.name: (d.field, d.scope) for d in aggregation.dimensions}


def solr_cells(
    client: solr.SolrClient, aggregation: model.Aggregation, before_ms: int
) -> dict[tuple[str, int, tuple[str, ...]], dict[str, float]]:
    """Every finest-level cell with a bucket before `before_ms`, as the oracle keys them."""
    commit_the_streams_writes(client, aggregation)
    found: dict[tuple[str, int, tuple[str, ...]], dict[str, float]] = {}
    for cell in cell_reads.stored_cells(client, aggregation, aggregation.finest):
        if cell.bucket_ms < before_ms:
            state = {**cell.state, "unique_visitors": sketches.estimate(cell.sketch)}
            found[(cell.cuboid, cell.bucket_ms, cell.values)] = state
    return found


def bot_events(client: solr.SolrClient, aggregation: model.Aggregation) -> dict[int, int]:
    commit_the_streams_writes(client, aggregation)
    return cell_reads.bot_counts(client, aggregation.finest)


def commit_the_streams_writes(client: solr.SolrClient, aggregation: model.Aggregation) -> None:
    """The stream leaves its writes to Solr's soft commit (within a second); a test that
    reads them the moment the stream stops commits them as the writer would."""
    client.commit(aggregation.finest.collection)


def store_at(solr_url: str) -> Callable[[], protocol.CellStore]:
    """What the stream opens for each micro-batch: a store over the test's SolrCloud."""
    return lambda: solr_store.SolrCellStore(solr_url)


def differences(
    expected: dict[tuple[str, int, tuple[str, ...]], dict[str, float]],
    actual: dict[tuple[str, int, tuple[str, ...]], dict[str, float]],
    fields: Sequence[str],
    *,
    sketch_tolerance: float,
) -> list[str]:
    """What differs between oracle and Solr, for a readable failure (empty when equal).

    A cell only one side has is compared as if the other side held it with nothing in it:
    the stream's sketch may keep a visitor whose visit a later event moved to another cell
    (sketches cannot subtract; settle removes such cells), which is within the tolerance."""
    problems = []
    for key in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(key, {}), actual.get(key, {})
        side = (
            ""
            if key in expected and key in actual
            else f" (only in {'Solr' if key in actual else 'the oracle'})"
        )
        for name in fields:
            if abs(want.get(name, 0) - got.get(name, 0)) > 1e-6:
                problems.append(f"{key}{side} {name}: oracle {want.get(name)} Solr {got.get(name)}")
        exact = want.get("unique_visitors", 0)
        # 1e-6: an HLL estimate of a few visitors is exact up to float noise (4.00000003).
        allowed = max(1.0, sketch_tolerance * exact) + 1e-6
        if abs(exact - got.get("unique_visitors", 0)) > allowed:
            problems.append(f"{key}{side} unique_visitors: {exact} vs {got.get('unique_visitors')}")
    return problems


def run_to_end(
    spark: Any,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    solr_url: str,
    on_batch: Callable[[int, protocol.WriteReport], None] | None = None,
    on_ingest: Callable[[int, archive.IngestReport], None] | None = None,
) -> None:
    """Both queries with availableNow: everything that has arrived, then stop."""
    source = stream.source_of(aggregation)
    stream.ingest(
        spark, aggregation, paths, source, 1, available_now=True, on_batch=on_ingest
    ).awaitTermination()
    stream.aggregate(
        spark, aggregation, paths, store_at(solr_url), 1, available_now=True, on_batch=on_batch
    ).awaitTermination()


def close_every_visit(
    spark: Any,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    solr_url: str,
    deliver: Callable[[bytes], None],
    sentinel_ms: int,
    on_batch: Callable[[int, protocol.WriteReport], None] | None = None,
    on_ingest: Callable[[int, archive.IngestReport], None] | None = None,
) -> None:
    """Deliver the sentinel, then run twice: once to move the watermark past every visit,
    once more so the closing timers fire."""
    deliver(sentinel(sentinel_ms))
    for _ in range(2):
        run_to_end(spark, aggregation, paths, solr_url, on_batch, on_ingest)


def oracle_problems(
    client: solr.SolrClient,
    aggregation: model.Aggregation,
    lines: Sequence[bytes],
    before_ms: int,
) -> list[str]:
    """Where Solr's finest level differs from the oracle over the same lines."""
    import oracle

    expected = oracle.compute(
        lines,
        finest_granularity_s=int(aggregation.finest.granularity.approx_seconds),
        session_timeout_s=int(aggregation.session_timeout.approx_seconds),
        dimensions=oracle_dimensions(aggregation),
        cuboids=[c.dimensions for c in aggregation.cuboids],
        now_ms=int(time.time() * 1000),
    )
    actual = solr_cells(client, aggregation, before_ms)
    assert len(actual) > 100, "too few cells for a meaningful comparison"
    return differences(expected.cells, actual, sessions.FIELDS, sketch_tolerance=0.05)


def oracle_result(
    aggregation: model.Aggregation,
    lines: Sequence[bytes],
    granularity_s: int,
    *,
    with_visitors: bool = False,
) -> Any:
    """The oracle's cells of `lines` at a level of `granularity_s` (every visit closed)."""
    import oracle

    return oracle.compute(
        lines,
        finest_granularity_s=granularity_s,
        session_timeout_s=int(aggregation.session_timeout.approx_seconds),
        dimensions=oracle_dimensions(aggregation),
        cuboids=[c.dimensions for c in aggregation.cuboids],
        now_ms=int(time.time() * 1000),
        with_visitors=with_visitors,
    )


def rolled_up_problems(
    client: solr.SolrClient,
    aggregation: model.Aggregation,
    level: model.Level,
    expected: Any,
    end_ms: int,
    *,
    least: int,
) -> list[str]:
    """Where a coarser level's documents before `end_ms` differ from the oracle's
    `expected` at its granularity (bots included); at least `least` cells must be there."""
    want = {key: cell for key, cell in expected.cells.items() if key[1] < end_ms}
    got = {
        (c.cuboid, c.bucket_ms, c.values): {
            **c.state,
            "unique_visitors": sketches.estimate(c.sketch),
        }
        for c in cell_reads.stored_cells(client, aggregation, level)
        if c.bucket_ms < end_ms
    }
    assert len(got) > least, f"{level.name}: too few cells for a meaningful comparison"
    problems = differences(want, got, sessions.FIELDS, sketch_tolerance=0.05)
    bots = {b: n for b, n in cell_reads.bot_counts(client, level).items() if b < end_ms}
    want_bots = {b: n for b, n in expected.bot_events.items() if b < end_ms}
    if bots != want_bots:
        problems.append(f"bots: oracle {want_bots} Solr {bots}")
    return [f"{level.name}: {p}" for p in problems]


def report_watermark(solr_url: str, aggregation: model.Aggregation, newest_event_ms: int) -> None:
    """What the stream's progress reporter writes after a batch whose newest event is
    `newest_event_ms` (tests that run the queries directly have no reporter)."""
    with solr_store.SolrCellStore(solr_url) as store:
        report = progress.Report(
            lag_ms=0,
            reported_ms=int(time.time() * 1000),
            newest_event_ms=newest_event_ms,
            watermark_ms=newest_event_ms - int(aggregation.watermark.approx_seconds * 1000),
        )
        store.report_progress(aggregation.finest, report)


def deliver_to(landing_dir: Path) -> Callable[[bytes], None]:
    """Delivers one line (the sentinel) as the landing directory's last file."""

    def deliver(line: bytes) -> None:
        (landing_dir / "zz-sentinel.jsonl").write_bytes(line + b"\n")

    return deliver


def assert_equals_oracle(
    spark: Any,
    solr_url: str,
    client: solr.SolrClient,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    landing_dir: Path,
    lines: Sequence[sim.Emitted],
    start_ms: int,
) -> None:
    """Finish what a faulted run left, close every visit (a sentinel 5 h after `start_ms`),
    and compare Solr's finest level with the oracle over `lines`."""
    run_to_end(spark, aggregation, paths, solr_url)
    sentinel_ms = start_ms + 5 * HOUR_MS
    close_every_visit(
        spark,
        aggregation,
        paths,
        solr_url,
        deliver_to(landing_dir),
        sentinel_ms,
    )
    problems = oracle_problems(client, aggregation, [i.line for i in lines], sentinel_ms - HOUR_MS)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:15])
