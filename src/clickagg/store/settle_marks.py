"""The settle step's marks in the finest collection: where settling has got to
(`__settled__`), and one document per span of buckets a pass recomputed
(`__resettled__/<pass>/<start>`, its `bucket` and `bucket_end` the span), so a rollup finds
what was settled again since the pass it last read. They use the progress cuboid, so cell
reads and range replacements leave them alone. `domain.settle.Mark` says what they hold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clickagg.domain import buckets, cells, model, settle
from clickagg.store import client as solr

MARK_ID = "__settled__"
_RESETTLED = "__resettled__"
_SETTLED_END = "settled_end_ms_l"
_ARRIVED_THROUGH = "arrived_through_ms_l"
_WATERMARK = "watermark_ms_l"
_PASSES = "passes_l"
_PASS_NUMBER = "pass_l"  # noqa: S105 (a field name, no secret)
_KIND = "mark_s"
_MAX_SPANS = 100_000  # recompute_ranges joins buckets a day apart: far fewer in practice


def write(
    client: solr.SolrClient,
    level: model.Level,
    mark: settle.Mark,
    resettled: Sequence[buckets.Span],
) -> None:
    """Record one pass: its recomputed spans first, then the mark that says it ran."""
    at = buckets.iso(mark.settled_at_ms)
    spans = [
        {
            **_base(level, f"{_RESETTLED}/{mark.passes}/{span.start_ms}", at),
            _KIND: _RESETTLED,
            "bucket": buckets.iso(span.start_ms),
            "bucket_end": buckets.iso(span.end_ms),
            _PASS_NUMBER: mark.passes,
        }
        for span in resettled
    ]
    if spans:
        client.add(level.collection, spans)
    head = {
        **_base(level, MARK_ID, at),
        _KIND: MARK_ID,
        _SETTLED_END: mark.settled_end_ms,
        _ARRIVED_THROUGH: mark.arrived_through_ms,
        _WATERMARK: mark.watermark_ms,
        _PASSES: mark.passes,
    }
    client.add(level.collection, [head])
    client.commit(level.collection)


def read(client: solr.SolrClient, level: model.Level) -> settle.Mark | None:
    """The mark of the last pass (real-time get); None before the first pass."""
    stored = client.get(level.collection, [MARK_ID])
    if not stored:
        return None
    doc = stored[0]
    return settle.Mark(
        settled_end_ms=int(doc[_SETTLED_END]),
        arrived_through_ms=int(doc[_ARRIVED_THROUGH]),
        watermark_ms=int(doc[_WATERMARK]),
        passes=int(doc[_PASSES]),
        settled_at_ms=buckets.parse_iso(str(doc["updated_at"])),
    )


def resettled_since(
    client: solr.SolrClient, level: model.Level, after_pass: int
) -> list[settle.ResettledSpan]:
    """Spans recomputed by passes after `after_pass`, oldest pass first."""
    response = client.query(
        level.collection,
        {
            "q": f"{_KIND}:{_RESETTLED} AND {_PASS_NUMBER}:[{after_pass + 1} TO *]",
            "fl": f"bucket,bucket_end,{_PASS_NUMBER},updated_at",
            "sort": f"{_PASS_NUMBER} asc, bucket asc",
            "rows": _MAX_SPANS,
        },
    )
    return [
        settle.ResettledSpan(
            int(row[_PASS_NUMBER]),
            buckets.Span(_ms(row["bucket"]), _ms(row["bucket_end"])),
            _ms(row["updated_at"]),
        )
        for row in response["response"]["docs"]
    ]


def _ms(value: Any) -> int:
    return buckets.parse_iso(str(value))


def _base(level: model.Level, doc_id: str, at: str) -> dict[str, Any]:
    return {"id": doc_id, "level": level.name, "cuboid": cells.PROGRESS_CUBOID, "updated_at": at}
