"""Deduplication keeps the first arrival, in the stream and in replay (issue 7's repro), and
an event later than the allowed lateness is a `too_late` dead letter, measured from the
newest event time of the earlier micro-batches rather than the clock."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import oracle
import streaming
from clickagg.domain import model, sessions
from clickagg.local import solr_security
from clickagg.pipeline import archive, replay
from clickagg.store import collections as solr_collections
from clickagg.store import solr_cells
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.e2e

HOUR_MS = streaming.HOUR_MS
MINUTE_MS = 60_000
DAY_START_MS = (int(time.time() * 1000) // (24 * HOUR_MS) - 1) * 24 * HOUR_MS


def event(event_id: str, ts_ms: int, visitor: str, page: str = "a", **fields: Any) -> bytes:
    record = {
        "event_id": event_id,
        "ts": ts_ms,
        "visitor_id": visitor,
        "type": "page_view",
        "page": page,
        "channel": "direct",
        "device_class": "desktop",
        "browser_family": "chrome",
        **fields,
    }
    return json.dumps(record).encode()


def deliver(landing: Path, name: str, lines: list[bytes]) -> None:
    (landing / f"{name}.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def prepare(work: Path, solr_url: str, name: str, **spec: Any) -> tuple[model.Aggregation, Any]:
    """The spec (the finest level only, unless `spec` names levels) and its collections."""
    spec.setdefault("levels", streaming.FINEST_ONLY)
    aggregation = streaming.aggregation_for(work / "landing", solr_url, name, **spec)
    (work / "landing").mkdir(parents=True, exist_ok=True)
    # The operator's part: only its user may create collections.
    with fixtures_solr.client_as(solr_url, solr_security.OPERATOR) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    return aggregation, archive.JobPaths(str(work / "data"))


def expected_cells(aggregation: model.Aggregation, lines: list[bytes], **options: Any) -> Any:
    """The oracle over `lines` in arrival order (`options`: oracle.compute's)."""
    return oracle.compute(
        lines,
        finest_granularity_s=int(aggregation.finest.granularity.approx_seconds),
        session_timeout_s=int(aggregation.session_timeout.approx_seconds),
        dimensions=streaming.oracle_dimensions(aggregation),
        cuboids=[c.dimensions for c in aggregation.cuboids],
        now_ms=int(time.time() * 1000),
        **options,
    )


def close_visits(
    spark: Any, aggregation: model.Aggregation, paths: Any, solr_url: str, sentinel_ms: int
) -> None:
    """Deliver a sentinel far ahead so the stream closes every visit before it."""
    landing = Path(aggregation.spec.source.files.path)  # type: ignore[union-attr]
    streaming.close_every_visit(
        spark,
        aggregation,
        paths,
        solr_url,
        lambda line: deliver(landing, "zz-sentinel", [line]),
        sentinel_ms,
    )


def test_the_first_copy_counts_in_stream_and_replay(
    spark: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    aggregation, paths = prepare(tmp_path, solr.base_url, "first-arrival")
    at_10 = DAY_START_MS + 10 * HOUR_MS
    lines = [event("d1", at_10, "u1")]
    lines += [event(f"v{i}", at_10 + 70 * MINUTE_MS + i * MINUTE_MS, f"w{i}") for i in range(20)]
    lines += [event("d1", at_10 + 61 * MINUTE_MS, "u1", page="b")]
    deliver(tmp_path / "landing", "a", lines)
    streaming.run_to_end(spark, aggregation, paths, solr.base_url)
    close_visits(spark, aggregation, paths, solr.base_url, at_10 + 5 * HOUR_MS)
    expected = expected_cells(aggregation, lines).cells
    assert expected[("totals", at_10, ())]["events"] == 1

    def problems() -> list[str]:
        actual = streaming.solr_cells(solr_client, aggregation, at_10 + 2 * HOUR_MS)
        return streaming.differences(expected, actual, sessions.FIELDS, sketch_tolerance=0.05)

    assert not problems(), "stream:\n" + "\n".join(problems()[:10])
    with solr_cells.SolrCellStore(solr.base_url) as store:
        replay.replay(
            spark,
            aggregation,
            paths,
            store,
            at_10,
            at_10 + 2 * HOUR_MS,
            history_ms=sessions.VISITOR_MEMORY_MS,
        )
    assert not problems(), "replay:\n" + "\n".join(problems()[:10])


def test_an_event_later_than_the_allowed_lateness_is_a_too_late_dead_letter(
    spark: Any, solr: Any, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F

    lateness = {"watermark": "10m", "allowedLateness": "2h"}
    aggregation, paths = prepare(tmp_path, solr.base_url, "too-late", lateness=lateness)
    newest = DAY_START_MS + 12 * HOUR_MS
    deliver(tmp_path / "landing", "a", [event("n1", newest, "u1")])
    streaming.run_to_end(spark, aggregation, paths, solr.base_url)
    # Days behind the clock but within 2h of the newest event: accepted; beyond: too_late.
    deliver(
        tmp_path / "landing",
        "b",
        [event("ok", newest - 2 * HOUR_MS, "u2"), event("late", newest - 2 * HOUR_MS - 1, "u3")],
    )
    streaming.run_to_end(spark, aggregation, paths, solr.base_url)
    rows = spark.read.parquet(paths.archive)
    dead = rows.where(F.col("kind") == archive.DEAD_LETTER).select("reason", "raw").collect()
    assert len(dead) == 1
    assert dead[0].reason.startswith("too_late: field 'ts': ")
    assert "more than 2 hours before the newest event" in dead[0].reason
    assert b'"late"' in bytes(dead[0].raw)
    kept = rows.where(F.col("kind") == archive.EVENT).select("event_id", "raw").collect()
    assert sorted(r.event_id for r in kept) == ["n1", "ok"]
    assert all(r.raw is None for r in kept)
